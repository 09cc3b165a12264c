"""The one resolution of a run's config: defaults < recipe < saved run < the settings given.

Example:
    >>> from trainlab.resolve import resolve_config
    >>> resolve_config({"recipe": "seed-mlp", "epochs": 2}).config.optimizer
    'adam'
    >>> saved = TrainConfig(epochs=2).to_dict()
    >>> resolve_config({"epochs": 4}, saved=saved).changed
    {'epochs': (2, 4)}

The CLI (flags given), ``Trainer`` (keyword arguments on resume) and ``workflow.resumed_config``
all call ``resolve_config``, so a setting means the same wherever it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trainlab.config import FROZEN_ON_RESUME, TrainConfig, flag_name, relevant_settings
from trainlab.errors import ConfigError


@dataclass
class Resolved:
    """A resolved config and where its values came from."""

    config: TrainConfig
    changed: dict[str, tuple[Any, Any]]  # on resume: field -> (saved value, new value)


def describe_changes(changed: dict[str, tuple[Any, Any]]) -> str:
    """One line saying which settings a resume changed against the saved run."""
    if not changed:
        return "resume: no setting changed"
    return "resume: changed " + ", ".join(
        f"{flag_name(k)} {_show(old)} -> {_show(new)}" for k, (old, new) in changed.items()
    )


def _show(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def resolve_config(
    given: dict[str, Any] | None = None,
    *,
    saved: dict[str, Any] | None = None,
    source: str = "settings",
    log: Any = None,
) -> Resolved:
    """The one resolution of a run's config: defaults < recipe < saved run < ``given``.

    Args:
        given: the fields set explicitly (flags on the command line, keyword arguments).
        saved: the config of the run being resumed, if any.
        source: what ``given`` came from, for error messages.
        log: callable for notes (which dataset a recipe chose).

    Raises:
        ConfigError: an unknown field, a bad value, or, on resume, a change of something the
            checkpoint's weights depend on (``FROZEN_ON_RESUME``).
    """
    given = dict(given or {})
    TrainConfig.from_dict({k: v for k, v in given.items() if k != "recipe"}, source=source)
    if saved is None:
        if given.get("recipe"):
            from trainlab.recipes import recipe_config

            recipe = given.pop("recipe")
            return Resolved(recipe_config(recipe, given, log=log), {})
        return Resolved(TrainConfig.from_dict(given, source=source), {})
    base = TrainConfig.from_dict(saved, source="the saved run config")
    if given.get("recipe") not in (None, base.recipe):
        raise ConfigError(
            f"{source}: recipe '{given['recipe']}' differs from the resumed run's "
            f"('{base.recipe}'). A resume continues its own run; drop --recipe."
        )
    changed = {
        k: (getattr(base, k), v)
        for k, v in given.items()
        if k != "recipe" and _normal(getattr(base, k)) != _normal(v)
    }
    relevant = relevant_settings(base.to_dict())
    frozen = [k for k in changed if k in FROZEN_ON_RESUME and k in relevant]
    if frozen:
        asked = ", ".join(f"{flag_name(k)} {_show(changed[k][1])}" for k in frozen)
        had = "; ".join(f"{FROZEN_ON_RESUME[k]}: {k} = {_show(changed[k][0])}" for k in frozen)
        raise ConfigError(
            f"cannot resume with {asked}: the run trained with {had}, and its checkpoint holds "
            f"weights for that. Drop {', '.join(flag_name(k) for k in frozen)}, or start a new "
            f"run ({source})."
        )
    return Resolved(base.replace(**{k: new for k, (_, new) in changed.items()}), changed)


def _normal(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [
            float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in value
        ]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
