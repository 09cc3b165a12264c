"""Where data lives: ``--data-dir``, else ``$TRAINLAB_DATA``, else a per-user cache directory."""

from __future__ import annotations

import os
from pathlib import Path

from trainlab.errors import DataError


def default_root() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "trainlab"


def resolve_root(
    data_dir: str | Path | None = None, create: bool = False, dataset: str = "mnist"
) -> Path:
    """The data root to use.

    An explicit root (flag or ``$TRAINLAB_DATA``) must exist unless ``create`` is set, so that a
    mistyped path is reported instead of silently filled with a fresh download. The default
    cache directory is always created. ``dataset`` names the one to fetch in the error.
    """
    if data_dir is None and os.environ.get("TRAINLAB_DATA"):
        data_dir, origin = os.environ["TRAINLAB_DATA"], "$TRAINLAB_DATA"
    else:
        origin = "--data-dir"
    if data_dir is None:
        root = default_root()
        root.mkdir(parents=True, exist_ok=True)
        return root
    root = Path(data_dir).expanduser()
    if root.is_dir():
        return root
    if root.exists():
        raise DataError(f"data root {root} (from {origin}) is a file, expected a directory.")
    if create:
        root.mkdir(parents=True, exist_ok=True)
        return root
    raise DataError(
        f"data root {root} (from {origin}) does not exist. Create it, point {origin} at the "
        f"folder that holds your datasets (e.g. MNIST/raw/), or fetch into it: "
        f"`trainlab data fetch {dataset} --data-dir {root}`."
    )
