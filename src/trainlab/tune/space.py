"""A search space from TOML: ranges, choices and fixed values for any train setting.

Example (``space.toml``):
    [space]
    lr = { low = 0.01, high = 0.5, log = true }
    weight_decay = { low = 1e-5, high = 1e-2, log = true }
    hidden = { choices = [[64], [128], [256, 128]] }
    epochs = 2            # a fixed value

A range with an integer low and high is searched over integers (``step`` optional); any float
makes it a float range. ``log = true`` searches on a log scale. ``choices`` may hold lists
(Optuna's categorical values are plain scalars, so a list is kept as its JSON text there and
decoded for the run).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainlab.errors import ConfigError, unknown_name


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "float", "int", "choice" or "fixed"
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    value: Any = None

    def suggest(self, trial) -> Any:
        if self.kind == "fixed":
            return self.value
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)
        if self.kind == "int":
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), log=self.log, step=int(self.step or 1)
            )
        shown = [_as_scalar(c) for c in self.choices]
        return _from_scalar(trial.suggest_categorical(self.name, shown))

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"{self.name} = {self.value!r} (fixed)"
        if self.kind == "choice":
            return f"{self.name} in {list(self.choices)}"
        scale = ", log scale" if self.log else ""
        return f"{self.name} in [{self.low}, {self.high}] ({self.kind}{scale})"


def _as_scalar(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | dict) else value


def _from_scalar(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return value


def decode(params: dict[str, Any]) -> dict[str, Any]:
    """A trial's parameters as settings (list choices decoded)."""
    return {k: _from_scalar(v) for k, v in params.items()}


def shown(params: dict[str, Any]) -> str:
    """Parameters as a person reads them, ``lr=0.04165 hidden=[64]``: floats to 4 significant
    digits (files keep them whole)."""
    return " ".join(f"{name}={_short(value)}" for name, value in params.items())


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)


def settings_names() -> list[str]:
    """What a space may search: the config's fields and the built-ins' option names."""
    import dataclasses

    from trainlab.config import TrainConfig
    from trainlab.models.shorthand import shorthand_options

    return [f.name for f in dataclasses.fields(TrainConfig)] + list(shorthand_options())


def read_space(path: str | Path) -> dict[str, Param]:
    """The ``[space]`` table of ``path``, checked: every name a setting, every range sound. An
    error names the file, the line and the setting."""
    from trainlab.resolve import read_toml

    path = Path(path)
    table = read_toml(path, str(path), "no such search-space file")
    text = path.read_text(encoding="utf-8")
    space = table.get("space", table)
    if not isinstance(space, dict) or not space:
        raise ConfigError(
            f"{path}: expected a [space] table of settings, e.g. "
            "lr = { low = 0.01, high = 0.5, log = true }."
        )
    known = settings_names()
    params = {}
    for name, spec in space.items():
        key = name.replace("-", "_")
        where = _where(path, text, name)
        if key not in known and not key.startswith(("model_options.", "data_options.")):
            raise unknown_name(f"setting at {where}", name, known)
        if key in ("runs_dir", "run_name", "resume"):
            raise ConfigError(f"{where}: {key} is set by the sweep (each trial is a run).")
        params[key] = _param(key, spec, f"{where}: {name}")
    return params


def _where(path: Path, text: str, name: str) -> str:
    """``path:line`` of the line that sets ``name`` (bare or quoted), else ``path``."""
    found = re.search(rf"^[ \t]*([\"']?){re.escape(name)}\1[ \t]*=", text, re.MULTILINE)
    return f"{path}:{text.count(chr(10), 0, found.start()) + 1}" if found else str(path)


def _param(name: str, spec: Any, where: str) -> Param:
    if not isinstance(spec, dict):
        return Param(name, "fixed", value=spec)
    keys = set(spec)
    if "choices" in keys:
        extra = keys - {"choices"}
        choices = spec["choices"]
        if extra or not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: choices = [...] takes a non-empty list and nothing else.")
        return Param(name, "choice", choices=tuple(choices))
    if "value" in keys and keys == {"value"}:
        return Param(name, "fixed", value=spec["value"])
    if not {"low", "high"} <= keys or keys - {"low", "high", "log", "step"}:
        raise ConfigError(
            f"{where}: a range is {{ low = ..., high = ... }} (optional log = true, step = ...), "
            f"choices is {{ choices = [...] }}; got keys {sorted(keys)}."
        )
    low, high = spec["low"], spec["high"]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)):
        raise ConfigError(f"{where}: low and high must be numbers; got {low!r} and {high!r}.")
    if low >= high:
        raise ConfigError(f"{where}: low ({low}) must be below high ({high}).")
    log = bool(spec.get("log", False))
    if log and low <= 0:
        raise ConfigError(f"{where}: a log scale needs low > 0; got {low}.")
    step = spec.get("step")
    if log and step is not None:
        raise ConfigError(f"{where}: step and log = true cannot be combined (Optuna's rule).")
    kind = "int" if all(isinstance(v, int) for v in (low, high, step or 1)) else "float"
    return Param(name, kind, low, high, log, step)
