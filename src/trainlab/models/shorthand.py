"""The built-ins' options as plain settings: ``--hidden 64`` for ``--model-arg hidden=[64]``.

Example:
    >>> fold_options({"model": "mlp", "hidden": [64]})
    {'model': 'mlp', 'model_options': {'hidden': [64]}}

The flags and settings named after a built-in model's or dataset's option are folded into
``model_options``/``data_options`` here, for the planner and for checkpoints written before the
registries (version 1), whose configs name every such option at the top level.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from trainlab.config import TrainConfig
from trainlab.errors import ConfigError

# The fields a version-1 config (trainlab before the registries) had for one model or dataset;
# such a config names them all, also those its model or dataset did not use.
V1_OPTION_FIELDS = frozenset(
    {
        "hidden",
        "widths",
        "log_softmax",
        "samples",
        "features",
        "num_classes",
        "true_w",
        "true_b",
        "noise",
    }
)


def shorthand_options() -> dict[str, tuple[str, dict[str, Any]]]:
    """Option name -> ("model_options" or "data_options", {built-in name: its option}) for the
    built-ins' options, which may be given as plain settings (``hidden=[64]``, ``--hidden 64``)."""
    from trainlab.data.registry import registered as datasets
    from trainlab.models.registry import builtin_specs

    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for field_name, specs in (
        ("model_options", builtin_specs()),
        ("data_options", {k: v for k, v in datasets().items() if v.source["kind"] == "builtin"}),
    ):
        for spec in specs.values():
            for option in spec.options.values():
                out.setdefault(option.name, (field_name, {}))[1][spec.name] = option
    return out


def fold_options(
    values: dict[str, Any], source: str = "config", context: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Move built-in options given as plain settings into ``model_options``/``data_options``.

    A version-1 config (all of ``V1_OPTION_FIELDS`` present) keeps those its model and dataset
    use and drops the rest; elsewhere an option its model or dataset lacks is refused by name.
    ``context`` gives the model and dataset when ``values`` (a layer of settings) names none.
    """
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    extra = [k for k in values if k not in known]
    if not extra:
        return values
    shorthand = shorthand_options()
    legacy = set(values) >= V1_OPTION_FIELDS
    out = {k: v for k, v in values.items() if k in known or k not in shorthand}
    from trainlab.data.registry import spec_name

    context = context or {}
    owner = {
        "model_options": values.get("model", context.get("model", "cnn")),
        "data_options": spec_name(values.get("dataset", context.get("dataset", "mnist"))),
    }
    for key in extra:
        if key not in shorthand:
            continue
        field_name, specs = shorthand[key]
        if owner[field_name] in specs:
            out[field_name] = {**(out.get(field_name) or {}), key: values[key]}
        elif not legacy:
            what = "model" if field_name == "model_options" else "dataset"
            raise ConfigError(
                f"{source}: {key} is an option of {what} {', '.join(sorted(specs))}, not of "
                f"{what} '{owner[field_name]}'{_read_as(values, context, specs)}. Drop it, or "
                f"choose that {what}."
            )
    return out


def _read_as(values: dict[str, Any], context: dict[str, Any], specs: dict[str, Any]) -> str:
    """For a dataset given by a path: how it was read, and how the others read a path."""
    from trainlab.data.registry import DATASETS, by_path

    given = values.get("dataset", context.get("dataset", ""))
    found = by_path(given)
    if found is None:
        return ""
    others = [DATASETS.lookup(name) for name in specs]
    others = [f"{s.name}: --dataset {s.shown_as}" for s in others if s and s.shown_as]
    return f" (it reads {given} as {found.summary}" + "".join(f"; {o}" for o in others) + ")"
