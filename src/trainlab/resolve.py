"""One plan per run: the config resolved once, and the checkpoint a resume continues loaded once.

Example:
    >>> from trainlab.resolve import plan_run
    >>> plan_run({"recipe": "seed-mlp", "epochs": 2}).config.optimizer
    'adam'
    >>> plan = plan_run({"epochs": 4}, resume="runs/<id>")
    >>> plan.changed, plan.checkpoint["epoch"]
    ({'epochs': (2, 4)}, 2)

Which value wins: defaults < ``--recipe`` < ``--config FILE.toml`` < the saved run (on resume) <
the settings given (flags, keyword arguments). The CLI, ``Trainer`` and ``workflow`` all go
through ``plan_run``, so a setting means the same wherever it is given.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainlab.config import TrainConfig, flag_name
from trainlab.errors import CheckpointError, ConfigError
from trainlab.models.shorthand import fold_options, shorthand_options

_LOG = logging.getLogger(__name__)

OPTION_FIELDS = {"model": "model_options", "dataset": "data_options"}


# What a resume cannot change: the weights in the checkpoint were made for this model and input.
FROZEN_ON_RESUME = {
    "dataset": "the dataset",
    "data_options": "the dataset's options",
    "model": "the model",
    "model_options": "the model's options",
    "subset": "the data split",
    "test_subset": "the data split",
    "val_split": "the data split that chooses best.pt",
    "data_seed": "the data split",
    "folds": "the data split that chooses best.pt",
    "fold": "the data split that chooses best.pt",
}


@dataclass
class Plan:
    """What a run will do: its config, what a resume changed, and the checkpoint it continues."""

    config: TrainConfig
    changed: dict[str, tuple[Any, Any]]  # on resume: field -> (saved value, new value)
    checkpoint: dict[str, Any] | None = None  # the resumed last.pt, as loaded
    chosen: frozenset[str] = frozenset()  # settings someone chose (flag, file, recipe, saved run)
    notes: dict[str, str] = field(default_factory=dict)  # what the plan adjusted, and why

    def fit_processes(self, world: int) -> None:
        """Under torchrun: a default --batch-size that does not split evenly among ``world``
        processes is rounded to a multiple of it (and said so); a chosen one stays (and a
        mismatch is an error where the batches are made)."""
        size = self.config.batch_size
        if world <= 1 or size % world == 0 or "batch_size" in self.chosen:
            return
        rounded = max(world, round(size / world) * world)
        note = (
            f"the default --batch-size {size} rounded to {rounded}, a multiple of the {world} "
            "processes (a global batch splits evenly); pass --batch-size to choose another"
        )
        self.config = self.config.replace(batch_size=rounded)
        self.notes["batch_size"] = note
        _LOG.info(f"note: {note}")


def describe_changes(changed: dict[str, tuple[Any, Any]]) -> str:
    """One line saying which settings a resume changed against the saved run."""
    if not changed:
        return "resume: no setting changed"
    return "resume: changed " + ", ".join(
        f"{flag_name(k)} {_show(old)} -> {_show(new)}" for k, (old, new) in changed.items()
    )


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k}={_show(v)}" for k, v in value.items()) or "{}"
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def read_toml(path: Path, label: str, missing: str) -> dict[str, Any]:
    """A TOML file's tables; a missing or unreadable file is a ConfigError starting ``label``."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{label}: {missing}.") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{label}: not a readable TOML file ({e}).") from None


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A run's settings from a TOML file: a ``[config]`` table (a run's own config.toml works
    as it is) or the settings at the top level (``best.toml``, hand-written)."""
    path = Path(path)
    values = read_toml(path, f"--config {path}", "no such file")
    values = values.get("config", values)
    if not isinstance(values, dict):
        raise ConfigError(f"--config {path}: [config] must be a table of settings.")
    return values


def merge_layers(*layers: dict[str, Any], source: str = "settings") -> dict[str, Any]:
    """Settings from low to high priority. Option tables merge key by key; a layer that names
    another model (or dataset) drops the options of the one below."""
    merged: dict[str, Any] = {}
    for layer in layers:
        layer = fold_options(layer, source, context=merged)
        for owner, options in OPTION_FIELDS.items():
            if owner in layer and layer[owner] != merged.get(owner, layer[owner]):
                merged.pop(options, None)
        layer = dict(layer)
        for options in OPTION_FIELDS.values():
            if options in layer and not isinstance(layer[options], dict):
                raise ConfigError(
                    f"{source}: {options} must be a table of options (NAME = value), got "
                    f"{layer[options]!r}."
                )
            if options in layer:
                layer[options] = {**merged.get(options, {}), **layer[options]}
        merged.update(layer)
    return merged


def resolve_config(
    given: dict[str, Any] | None = None,
    *,
    saved: dict[str, Any] | None = None,
    config_file: str | Path | None = None,
    source: str = "settings",
) -> Plan:
    """The config of a run (see the module docstring for which value wins).

    Raises:
        ConfigError: an unknown field, a bad value, or, on resume, a change of something the
            checkpoint's weights depend on (``FROZEN_ON_RESUME``).
    """
    given = dict(given or {})
    if saved is None:
        file_values = read_config_file(config_file) if config_file else {}
        recipe = given.get("recipe") or file_values.get("recipe")
        layers: list[dict[str, Any]] = []
        if recipe:
            from trainlab.recipes import recipe_settings

            layers.append(recipe_settings(recipe))
        merged = merge_layers(*layers, file_values, given, source=source)
        return Plan(TrainConfig.from_dict(merged, source=source), {}, chosen=frozenset(merged))
    if config_file:
        raise ConfigError(
            f"--config {config_file} with --resume: a resume continues its run's own saved "
            "settings. Drop --config, or start a new run from it."
        )
    base = TrainConfig.from_dict(saved, source="the saved run config")
    if given.get("recipe") not in (None, base.recipe):
        raise ConfigError(
            f"{source}: recipe '{given['recipe']}' differs from the resumed run's "
            f"('{base.recipe}'). A resume continues its own run; drop --recipe."
        )
    given.pop("recipe", None)
    base_values = base.to_dict()
    new = TrainConfig.from_dict(merge_layers(base_values, given, source=source), source=source)
    new = new.to_dict()
    changed = {
        k: (base_values[k], new[k]) for k in new if _normal(base_values[k]) != _normal(new[k])
    }
    refuse_owned_changes(changed, source, by_flags=True)
    return Plan(TrainConfig.from_dict(new, source=source), changed, chosen=frozenset(new))


def refuse_owned_changes(
    changed: dict[str, tuple[Any, Any]], source: str, *, by_flags: bool
) -> None:
    """The one rule of what a checkpoint owns: a resume may not change what its weights were
    made for (``FROZEN_ON_RESUME``). ``changed`` maps fields to (saved, new); ``by_flags``
    says whether the user asked by flags (named back as flags) or by the model and data
    objects given to ``Trainer.fit``."""
    frozen = [k for k in changed if k in FROZEN_ON_RESUME]
    for owner, options in OPTION_FIELDS.items():  # a new model or dataset brings its options
        if owner in frozen and options in frozen:
            frozen.remove(options)
    if not frozen:
        return
    had = "; ".join(f"{_as_setting(k, changed[k][0])} ({FROZEN_ON_RESUME[k]})" for k in frozen)
    if by_flags:
        asked = ", ".join(_as_flag(k, changed[k]) for k in frozen)
        raise ConfigError(
            f"cannot resume with {asked}: the run trained with {had}, and its checkpoint holds "
            f"weights for that. Drop {'it' if len(frozen) == 1 else 'them'}, or start a new "
            f"run ({source})."
        )
    now = "; ".join(_as_setting(k, changed[k][1]) for k in frozen)
    raise CheckpointError(
        f"{source}: the run trained with {had}; this fit has {now}. Resume with the run's own "
        "model and data, or start a new run."
    )


def check_resumable(checkpoint: dict[str, Any], cfg: TrainConfig) -> None:
    """Refuse a resume that would change what the weights depend on (the model and data a fit
    was given must be the run's), or that has nothing left to do."""
    saved = TrainConfig.from_dict(checkpoint["config"], source=checkpoint["path"])
    old, new = saved.to_dict(), cfg.to_dict()
    old["model_options"] = _with_new_defaults(saved.model, old.get("model_options") or {})
    changed = {k: (old[k], new[k]) for k in FROZEN_ON_RESUME if _normal(old[k]) != _normal(new[k])}
    refuse_owned_changes(changed, checkpoint["path"], by_flags=False)
    stopped = checkpoint.get("stopped")
    if stopped and cfg.early_stop == saved.early_stop:
        raise ConfigError(
            f"{checkpoint['path']}: the run is finished: it stopped early after epoch "
            f"{stopped['epoch']} ({stopped['reason']}). To train it further anyway, resume "
            f"with another --early-stop (0 turns it off) and a larger --epochs."
        )
    if checkpoint["epoch"] >= cfg.epochs and not checkpoint["batch"]:
        raise ConfigError(
            f"{checkpoint['path']}: the run already finished {checkpoint['epoch']} epoch(s) "
            f"and --epochs is {cfg.epochs}. Pass a larger --epochs to train further, e.g. "
            f"--epochs {checkpoint['epoch'] + 1}."
        )


def _with_new_defaults(model: str, options: dict[str, Any]) -> dict[str, Any]:
    """A built-in model's recorded options with the defaults of options added to it since
    (an older run's network is what the defaults build: resnet-small's stem_pool)."""
    from trainlab.models.registry import builtin_specs

    spec = builtin_specs().get(model)
    if spec is None:
        return options
    added = {k: o.default for k, o in spec.options.items() if k not in options and not o.required}
    return {**added, **options}


def settings_of(config: TrainConfig) -> dict[str, Any]:
    """A full config as the settings it gives a resume: what the weights depend on is the
    saved run's (the model and data objects decide it), and unresolved defaults stay unset."""
    given = {k: v for k, v in config.to_dict().items() if k not in FROZEN_ON_RESUME}
    for key in ("data_dir", "label_smoothing"):  # defaults the run resolved
        if given.get(key) is None:
            given.pop(key, None)
    return given


def recipe_config(name: str, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """A recipe's config with ``overrides`` (explicit settings) applied on top."""
    return resolve_config({**(overrides or {}), "recipe": name}).config


def _as_setting(name: str, value: Any) -> str:
    """A field's value as a person reads it: ``model cnn``, ``model options widths=16 24``."""
    return f"{name.replace('_', ' ')} {_show(value)}"


def _as_flag(name: str, change: tuple[Any, Any]) -> str:
    """A change as the flag that asked for it (``--hidden 32``, ``--model-arg width=8``)."""
    if name not in OPTION_FIELDS.values():
        return f"{flag_name(name)} {_show(change[1])}"
    old, new = change
    flag = "--model-arg" if name == "model_options" else "--data-arg"
    keys = [k for k in new if old.get(k) != new.get(k)] or list(new)
    readable = shorthand_options()
    return ", ".join(
        f"{flag_name(k)} {_show(new.get(k))}" if k in readable else f"{flag} {k}={new.get(k)!r}"
        for k in keys
    )


def plan_run(
    given: dict[str, Any] | None = None,
    *,
    resume: str | Path | dict[str, Any] | None = None,
    config_file: str | Path | None = None,
    source: str = "settings",
) -> Plan:
    """The plan of a run: on resume the checkpoint is read here, once, and kept in the plan."""
    checkpoint = None
    if isinstance(resume, dict):
        checkpoint = resume
    elif resume is not None:
        from trainlab.engine.checkpoint import load_checkpoint

        checkpoint = load_checkpoint(resume, which="last")
    if checkpoint is not None:
        from trainlab.engine.checkpoint import validate_payload

        validate_payload(checkpoint, resume=True)
    plan = resolve_config(
        given,
        saved=checkpoint["config"] if checkpoint else None,
        config_file=config_file,
        source=source,
    )
    plan.checkpoint = checkpoint
    return plan


def _normal(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
