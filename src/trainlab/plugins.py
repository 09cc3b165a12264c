"""Other packages' models and datasets, found through entry points (``trainlab.models``,
``trainlab.datasets``): one way to find them and to say which one failed, for both registries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from trainlab.errors import ConfigError


def installed(group: str) -> Iterator[tuple[Any, dict[str, Any]]]:
    """Each entry point of ``group``, with the source a run records for what it registers."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=group):
        dist = getattr(ep, "dist", None)
        yield (
            ep,
            {
                "kind": "plugin",
                "entry_point": f"{ep.name} = {ep.value}",
                **({"package": dist.name, "version": dist.version} if dist else {}),
            },
        )


def load(ep: Any, what: str) -> Any:
    """Import an entry point; a failing plugin is named, with what to do about it."""
    try:
        return ep.load()
    except Exception as e:  # noqa: BLE001 - a plugin's import failure is the plugin's
        raise ConfigError(
            f"the {what} plugin '{ep.name}' ({ep.value}) failed to load: "
            f"{type(e).__name__}: {e}. Fix or uninstall that package."
        ) from None
