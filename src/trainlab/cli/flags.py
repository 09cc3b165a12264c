"""The run settings as flags: one per ``TrainConfig`` field and one per option of the built-in
models and datasets, generated from the config and the registries so they never drift apart;
and back again, from the parsed flags to the settings ``plan_run`` takes."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from trainlab.cli.common import shown as _shown
from trainlab.config import TrainConfig, field_types, flag_name
from trainlab.options import base_type


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, and one per option of the built-in models and datasets
    (``--hidden``, ``--samples``), defaults suppressed so only given flags are seen."""
    types = field_types()
    groups: dict[str, Any] = {}  # title -> argument group
    titles = {"data": "data", "model": "model", "optim": "optimisation", "run": "run"}
    for f in dataclasses.fields(TrainConfig):
        meta = f.metadata
        group = groups.setdefault(meta["group"], parser.add_argument_group(titles[meta["group"]]))
        if meta.get("cli") is False:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kind, is_list, _ = base_type(types[f.name])
        help_text = meta["help"]
        if f.name == "dataset":
            from trainlab.data import dataset_names

            help_text += f": {', '.join(dataset_names())}"
        shown = meta.get("shown", _shown(default))
        action = _add_flag(group, f.name, kind, is_list, help_text, shown, meta.get("metavar"))
        if "bare" in meta:  # the flag alone is a value too (--augment: basic)
            action.nargs, action.const = "?", meta["bare"]
            action.metavar = "|".join(meta["opt"].choices)
    _add_option_flags(groups["model"], groups["data"])


def _add_flag(group, name, kind, is_list, help_text, shown, metavar=None) -> argparse.Action:
    kwargs: dict[str, Any] = {
        "default": argparse.SUPPRESS,
        "dest": name,
        # argparse %-formats help strings: escape the texts' own percent signs.
        "help": (f"{help_text} (default: {shown})" if str(shown).strip() else help_text).replace(
            "%", "%%"
        ),  # an empty default (found from the data) is said by the help text itself
    }
    if kind is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif name == "lr":  # a number, or auto: the learning-rate range test chooses it
        kwargs["type"] = _lr_value
        kwargs["metavar"] = "LR|auto"
    else:
        kwargs["type"] = kind
        kwargs["metavar"] = metavar or name.upper()
        if is_list:
            kwargs["nargs"] = "+"
    return group.add_argument(flag_name(name), **kwargs)


def _lr_value(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: a number (e.g. 0.1) or auto (trainlab lr-find chooses it)"
        ) from None


def _add_option_flags(model_group, data_group) -> None:
    """The built-ins' options as flags of their own, generated from the registries' specs."""
    from trainlab.models.shorthand import shorthand_options

    for name, (field_name, specs) in shorthand_options().items():
        option = next(iter(specs.values()))
        group = model_group if field_name == "model_options" else data_group
        defaults = {owner: _shown(o.default) for owner, o in specs.items()}
        shown = next(iter(defaults.values()))
        text = option.meta.help or name
        if len(specs) > 1:  # one flag for several models' option of that name
            shown = ", ".join(f"{owner} {value}" for owner, value in defaults.items())
            text = f"{', '.join(specs)}: {text.split(': ', 1)[-1]}"
        _add_flag(group, name, option.kind, option.is_list, text, shown, option.meta.metavar)
    model_group.add_argument(
        "--model-arg",
        action="append",
        metavar="NAME=VALUE",
        help="an option of the model, its value read as TOML (--model-arg width=12, "
        "--model-arg widths=[8,16]); repeat for more. Checked against the model's signature",
    )
    data_group.add_argument(
        "--data-arg",
        action="append",
        metavar="NAME=VALUE",
        help="an option of the dataset, as --model-arg (see `trainlab data info NAME`)",
    )


def given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings a user typed: config fields, the built-ins' option flags and the
    NAME=VALUE options, as ``plan_run`` takes them."""
    from trainlab.models.shorthand import shorthand_options
    from trainlab.options import parse_assignment

    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainConfig)
        if hasattr(args, f.name)
    }
    given.update({k: getattr(args, k) for k in shorthand_options() if hasattr(args, k)})
    for flag, field_name in (("model_arg", "model_options"), ("data_arg", "data_options")):
        pairs = [parse_assignment(text, flag_name(flag)) for text in getattr(args, flag) or []]
        if pairs:
            given[field_name] = dict(pairs)
    if "model" in given:
        from trainlab.models.usercode import normalise

        given["model"] = normalise(given["model"])
    return given


def as_flags(message: str) -> str:
    """Name settings as the flags a command-line user typed (``batch_size`` -> ``--batch-size``)."""
    import re

    # only the names with an underscore: "model" or "epochs" are also plain words in a message
    fields = [f.name for f in dataclasses.fields(TrainConfig) if "_" in f.name]
    names = "|".join(sorted(fields, key=len, reverse=True))
    return re.sub(rf"(?<![\w-])({names})(?![\w-])", lambda m: flag_name(m.group(1)), message)
