"""Typed options of a model or a dataset, read from the signature of the function that builds it.

Example:
    >>> def mlp(input_shape, outputs, hidden: Annotated[list[int], Opt("hidden sizes")] = (512,)):
    ...     ...
    >>> schema = options_of(mlp, skip=2)
    >>> schema["hidden"].default, schema["hidden"].help
    ([512], 'hidden sizes')
    >>> validate(schema, {"hiden": [8]}, "model 'mlp'")
    Traceback (most recent call last):
    ConfigError: model 'mlp' has no option 'hiden'. Did you mean 'hidden'? ...

One mechanism for built-ins, plugins and a user's own ``nn.Module`` factories: an option is a
keyword parameter of the builder. Its type comes from the annotation (or the default's type),
its help and bounds from an ``Annotated[..., Opt(...)]`` marker. Adding an option to a model is
adding a parameter to its builder; the CLI flag, the validation and the record follow from it.
"""

from __future__ import annotations

import difflib
import inspect
import math
import re
import tomllib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trainlab.errors import ConfigError


@dataclass(frozen=True)
class Opt:
    """Help text and bounds of an option, given as ``Annotated[type, Opt(...)]``.

    ``low``/``high`` are inclusive bounds, ``gt``/``lt`` exclusive ones, ``pattern`` a regular
    expression a string must match in full (``shape`` says what it looks like in the error),
    ``cap`` the largest magnitude that can finish on any machine.
    """

    help: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] | None = None
    metavar: str | None = None
    gt: float | None = None
    lt: float | None = None
    pattern: str | None = None
    shape: str = ""
    cap: float | None = None  # a sanity limit on the magnitude (a typo that added zeros)

    def bounds(self) -> str:
        """The accepted range in words: "at least 1", "in [0, 1)", "positive"."""
        low = f"[{_num(self.low)}" if self.low is not None else None
        low = f"({_num(self.gt)}" if self.gt is not None else low
        high = f"{_num(self.high)}]" if self.high is not None else None
        high = f"{_num(self.lt)})" if self.lt is not None else high
        if low and high:
            return f"in {low}, {high}"
        if low:
            if self.gt == 0:
                return "positive"
            return "0 or more" if self.low == 0 else f"at least {low[1:]}"
        return f"at most {high[:-1]}" if high else ""

    def holds(self, item: Any) -> bool:
        return not (
            (self.low is not None and item < self.low)
            or (self.gt is not None and item <= self.gt)
            or (self.high is not None and item > self.high)
            or (self.lt is not None and item >= self.lt)
        )


def _num(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) and abs(value) >= 100_000 else f"{value:g}"


@dataclass(frozen=True)
class Option:
    name: str
    kind: type | None  # element type (int, float, str, bool, dict); None: any TOML value
    is_list: bool
    default: Any
    required: bool
    meta: Opt

    def check(self, value: Any, owner: str = "") -> Any:
        """The value as this option's type, or a ConfigError naming the option (``owner``
        empty: a setting of the run itself, named as such)."""
        if self.kind is None or (value is None and self.default is None):
            return value
        who = f"{owner}: option '{self.name}'" if owner else self.name
        if self.kind is dict:
            if not isinstance(value, dict):
                raise ConfigError(f"{who} must be a table of options, got {value!r}")
            bad = [k for k in value if not isinstance(k, str) or not k.isidentifier()]
            if bad:
                raise ConfigError(f"{who}: option names must be identifiers, got {bad[0]!r}")
            return dict(value)
        items = value if self.is_list else [value]
        if self.is_list and not isinstance(value, list | tuple):
            hint = f" (on the command line: {self.name}=[...])" if owner else ""
            raise ConfigError(f"{who} takes a list of {self.kind.__name__}, got {value!r}{hint}.")
        out = [self._one(item, who, owner) for item in items]
        return out if self.is_list else out[0]

    def _one(self, item: Any, who: str, owner: str) -> Any:
        kind, meta = self.kind, self.meta
        ok = isinstance(item, kind) and not (kind is not bool and isinstance(item, bool))
        if kind is float and isinstance(item, int) and not isinstance(item, bool):
            item, ok = float(item), True
        if not ok:
            raise ConfigError(f"{who} must be {kind.__name__}, got {type(item).__name__} {item!r}.")
        if kind in (int, float) and not math.isfinite(item):
            raise ConfigError(f"{who} must be a finite number, got {item}.")
        if kind in (int, float) and not meta.holds(item):
            raise ConfigError(f"{who} must be {meta.bounds()}, got {item}.")
        if kind in (int, float) and meta.cap is not None and abs(item) > meta.cap:
            raise ConfigError(
                f"{who} = {item} is beyond what trainlab accepts (at most {_num(meta.cap)}): "
                "it would exhaust memory or time long before it finished."
            )
        if meta.choices is not None and item not in meta.choices:
            if not owner:
                from trainlab.errors import unknown_name

                raise unknown_name(self.name, item, list(meta.choices))
            raise ConfigError(
                f"{who} must be one of {', '.join(map(str, meta.choices))}, got {item!r}."
            )
        if meta.pattern is not None and not re.fullmatch(meta.pattern, item):
            raise ConfigError(f"{who} must be {meta.shape or meta.pattern}; got {item!r}.")
        return item


Schema = dict[str, Option]


def options_of(fn: Callable[..., Any], skip: int = 0, fill: tuple[str, ...] = ()) -> Schema:
    """The keyword options of ``fn``: every parameter after the first ``skip`` and not in
    ``fill`` (what trainlab supplies from the data), with its type, default and help."""
    signature = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # noqa: BLE001 - a user's annotations may not resolve; types are optional
        hints = {}
    schema: Schema = {}
    for i, (name, param) in enumerate(signature.parameters.items()):
        if i < skip or name in fill or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        kind, is_list, meta = _kind(hints.get(name), param.default)
        default = param.default if param.default is not param.empty else None
        if isinstance(default, tuple):
            default = list(default)
        schema[name] = Option(name, kind, is_list, default, param.default is param.empty, meta)
    return schema


def _kind(annotation: Any, default: Any) -> tuple[type | None, bool, Opt]:
    meta = Opt()
    if typing.get_origin(annotation) is typing.Annotated:
        args = typing.get_args(annotation)
        annotation = args[0]
        meta = next((a for a in args[1:] if isinstance(a, Opt)), meta)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = rest[0] if len(rest) == 1 else None
    if typing.get_origin(annotation) in (list, tuple):
        inner = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return (inner[0] if inner and inner[0] in (int, float, str, bool) else None), True, meta
    if annotation in (int, float, str, bool):
        return annotation, False, meta
    if annotation is None and default not in (None, inspect.Parameter.empty):
        if isinstance(default, list | tuple):
            kinds = {type(v) for v in default}
            return (kinds.pop() if len(kinds) == 1 else None), True, meta
        if type(default) in (int, float, str, bool):
            return type(default), False, meta
    return None, False, meta


def validate(schema: Schema, given: dict[str, Any], owner: str) -> dict[str, Any]:
    """Every option with its value: the given ones checked, the rest at their defaults.

    Raises:
        ConfigError: an unknown option (with a did-you-mean), a wrong type, a value out of
            bounds, or a required option not given.
    """
    unknown = [k for k in given if k not in schema]
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, list(schema), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        known = ", ".join(schema) or "none"
        raise ConfigError(f"{owner} has no option '{name}'.{hint} Its options: {known}.")
    missing = [k for k, opt in schema.items() if opt.required and k not in given]
    if missing:
        raise ConfigError(
            f"{owner} needs option(s) {', '.join(missing)}: give them as "
            + " ".join(f"--model-arg {k}=VALUE" for k in missing)
            + "."
        )
    values = {k: opt.default for k, opt in schema.items() if not opt.required}
    values.update({k: schema[k].check(v, owner) for k, v in given.items()})
    return values


def parse_assignment(text: str, flag: str) -> tuple[str, Any]:
    """``name=value`` with the value read as TOML (``widths=[8,16]``, ``p=0.1``, ``act="relu"``);
    a bare word that is not TOML is taken as a string (``act=relu``)."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise ConfigError(
            f"{flag} {text!r}: expected NAME=VALUE, e.g. {flag} width=12 or {flag} widths=[8,16]."
        )
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        if not raw.strip() or any(c in raw for c in "[]{}\"'=,"):
            raise ConfigError(
                f"{flag} {text!r}: the value {raw!r} is not valid TOML (a number, true/false, "
                '"text" or [a, list]).'
            ) from None
        value = raw.strip()
    return name, value


def base_type(annotation: Any) -> tuple[type, bool, bool]:
    """Return (element type, is_list, is_optional) for a field annotation."""
    optional = False
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional, annotation = True, args[0]
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0], True, optional
    if typing.get_origin(annotation) is dict:
        return dict, False, optional
    return annotation, False, optional
