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


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def image_folders(root: Path) -> str | None:
    """If ``root`` looks like a folder of photos sorted into class folders (``cats/``,
    ``dogs/``), a short description of it; else None."""
    if not root.is_dir():
        return None
    classes = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if folder.name in ("MNIST", "FashionMNIST", "KMNIST"):
            return None  # a data root that holds datasets
        images = sum(1 for f in folder.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        if images:
            classes[folder.name] = images
    if not classes:
        return None
    shown = ", ".join(f"{name}/ ({n})" for name, n in list(classes.items())[:4])
    more = f" and {len(classes) - 4} more" if len(classes) > 4 else ""
    return f"{len(classes)} folder(s) of images: {shown}{more}"
