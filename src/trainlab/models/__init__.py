"""Models by name: ``build_model`` sizes a registered model (or your own) for the data.

Example:
    >>> from trainlab.models import build_model, record_of
    >>> model = build_model("mlp", data, hidden=[64])          # a built-in, with an option
    >>> model = build_model("nets.py:SmallResNet", data, width=12)   # your own nn.Module
    >>> record_of(model)["options"]
    {'width': 12}

The data side adapts to what a model states it wants (``ModelSpec.size``, ``channels``): images
are resized and channels repeated per batch, on the device. What it takes to build the model
again (name, source, options, input) is a plain value, its *record*, kept beside the module
(``record_of``) and stored in every checkpoint; nothing is attached to the module itself.
"""

from __future__ import annotations

import weakref
from typing import Any

from torch import nn

from trainlab.errors import ConfigError, unknown_name
from trainlab.models import efficientnet, resnet, zoo  # noqa: F401 - the built-ins register
from trainlab.models.registry import ModelSpec, lookup, register_model, registered

__all__ = [
    "ModelSpec",
    "build_model",
    "describe_models",
    "get_spec",
    "init_weights",
    "parameter_count",
    "record_of",
    "register_model",
    "registered",
]

_RECORDS: weakref.WeakKeyDictionary[nn.Module, dict[str, Any]] = weakref.WeakKeyDictionary()


def get_spec(name: str, *, trust_code: bool = True) -> ModelSpec:
    """The spec of a registry name, or of a code reference (``file.py:Class``,
    ``package.module:factory``), which is imported only with ``trust_code``."""
    if name.startswith("torchvision:"):
        from trainlab.models import tv

        return tv.spec(name)
    if ":" in name:
        from trainlab.models.usercode import reference_spec

        return reference_spec(name, trust_code=trust_code)
    spec = lookup(name)
    if spec is None:
        known = [*registered(), "FILE.py:Class", "package.module:factory"]
        raise unknown_name("model", name, known)
    return spec


def build_model(
    name: str,
    data: Any = None,
    *,
    input_shape: tuple[int, ...] | None = None,
    outputs: int | None = None,
    init: str = "default",
    trust_code: bool = True,
    **options: Any,
) -> nn.Module:
    """Build a registered model, or your own (``file.py:Class``, ``package.module:factory``),
    sized for ``data`` (or an explicit input shape and output size).

    Args:
        name: a registry name (``trainlab models``) or a code reference.
        data: a ``Dataset``; gives the input shape and number of classes.
        input_shape: the data's input shape, when no dataset is given.
        outputs: number of classes (or regression outputs), when no dataset is given.
        init: "default" (PyTorch's) or "xavier" (uniform, on Linear and Conv2d, as d2l's train_ch6).
        trust_code: import a code reference (the default here: you named it).
        **options: the model's options, checked against its signature, e.g. ``hidden=[512]``.
    """
    from trainlab.options import validate

    spec = get_spec(name, trust_code=trust_code)
    if data is not None:
        input_shape, outputs = data.input_shape, data.output_size
        _check_task(spec, data)
    if input_shape is None or outputs is None:
        raise ConfigError("build_model needs a dataset or both input_shape and outputs")
    values = validate(spec.options, options, f"model '{spec.name}'")
    model_input = spec.input_for(tuple(input_shape), values)
    model = spec.builder(model_input, outputs, **values)
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"model '{spec.name}': the builder returned {type(model).__name__}, not an nn.Module."
        )
    init_weights(model, init)
    _RECORDS[model] = {
        "name": spec.name,
        "source": dict(spec.source),
        "options": values,
        "init": init,
        "input_shape": list(input_shape),
        "outputs": int(outputs),
        "output": spec.output_for(values),
        "size": list(model_input[1:]) if spec.size else None,
        "channels": spec.channels,
        **({"mean": list(spec.mean), "std": list(spec.std)} if spec.mean else {}),
    }
    return model


def _check_task(spec: ModelSpec, data: Any) -> None:
    wants_regression = spec.output_for({}) == "regression"
    if spec.source["kind"] not in ("builtin", "torchvision") and not wants_regression:
        return  # a user's model says nothing of its task; the loss follows the data
    if wants_regression == data.kind_entry.task.has_classes:
        kind = "regression" if wants_regression else "classification"
        raise ConfigError(
            f"model '{spec.name}' is for {kind}, dataset '{data.name}' is {data.task}. "
            + ("Use dataset 'linear'." if wants_regression else "Use a classifier model.")
        )


def record_of(model: nn.Module) -> dict[str, Any] | None:
    """How ``build_model`` built this module (None for a module built otherwise)."""
    return _RECORDS.get(model)


def set_record(model: nn.Module, record: dict[str, Any]) -> None:
    _RECORDS[model] = record


def record_for(model: nn.Module, data: Any) -> dict[str, Any]:
    """The record of any module trained on ``data``: ``build_model``'s, or for a module built
    otherwise its class as ``module:Class`` when that class, called with what trainlab fills
    in (``num_classes``, ``in_channels``, ``input_shape``), rebuilds the same parameters; else
    a record that says why the model cannot be loaded back (and how to make it loadable)."""
    record = record_of(model)
    if record is not None:
        return record
    from trainlab.models.usercode import class_reference, source_of

    reference, why = class_reference(model)
    if reference is not None and reference.startswith("torch."):
        name = type(model).__name__
        why = (
            f"it is torch's own nn.{name}, built in your code: trainlab cannot know its layers. "
            f"Put the code that builds it in a function in a .py file (def make(num_classes): "
            f"return nn.{name}(...)) and train that with --model FILE.py:make, or "
            f"trainlab.build_model('FILE.py:make', data)"
        )
    elif reference is not None:
        why = _rebuild_problem(reference, model, data)
    if why is None:
        record = {
            "name": reference,
            "source": source_of(reference),
            "options": {},
            "init": "default",
            "input_shape": list(data.input_shape),
            "outputs": int(data.output_size),
            "output": "logits" if data.kind_entry.task.has_classes else "regression",
            "size": None,
            "channels": None,
        }
    else:
        record = {"name": None, "class": type(model).__qualname__, "why": why}
    set_record(model, record)
    return record


def _rebuild_problem(reference: str, model: nn.Module, data: Any) -> str | None:
    """None when ``reference`` rebuilds a module with ``model``'s parameter shapes."""
    import torch

    from trainlab.options import validate

    try:
        spec = get_spec(reference)
        with torch.random.fork_rng(devices=[]):  # the run's random draws stay as they were
            values = validate(spec.options, {}, f"model '{reference}'")
            with torch.device("meta"):
                built = spec.builder(tuple(data.input_shape), data.output_size, **values)
    except Exception as e:  # noqa: BLE001 - any failure means "cannot rebuild it alone"
        first = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        return (
            f"{reference} cannot be rebuilt without the arguments it was made with ({first}); "
            f"build it with trainlab.build_model('{reference}', data, **options) so the run "
            "records them"
        )
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    again = {k: tuple(v.shape) for k, v in built.state_dict().items()}
    if own != again:
        return (
            f"{reference}() with default arguments builds other layers than the model trained; "
            f"build it with trainlab.build_model('{reference}', data, **options) so the run "
            "records its arguments"
        )
    return None


def init_weights(model: nn.Module, init: str) -> nn.Module:
    """ "default" keeps PyTorch's initialisation; "xavier" draws xavier-uniform weights for every
    Linear and Conv2d (as d2l's ``train_ch6``)."""
    if init == "xavier":
        for module in model.modules():
            if isinstance(module, nn.Linear | nn.Conv2d):
                nn.init.xavier_uniform_(module.weight)
    elif init != "default":
        raise unknown_name("init", init, ["default", "xavier"])
    return model


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def describe_models() -> list[dict[str, Any]]:
    """One row per model: name, summary, options, expected input and parameters for MNIST-shaped
    data (counted on the meta device: nothing is allocated or initialised)."""
    import torch

    rows = []
    for spec in registered().values():
        regression = spec.output_for({}) == "regression"
        shape, outputs = ((2,), 1) if regression else ((1, 28, 28), 10)
        values = {k: o.default for k, o in spec.options.items() if not o.required}
        parameters = None
        if len(values) == len(spec.options):
            with torch.device("meta"):
                parameters = parameter_count(
                    spec.builder(spec.input_for(shape, values), outputs, **values)
                )
        if spec.flat:
            wants = "any shape, flattened" + (" (2 features here)" if regression else "")
        else:
            c = spec.channels or "C"
            size = "×".join(map(str, spec.size)) if spec.size else "H×W (any)"
            wants = f"{c}×{size}"
        rows.append(
            {
                "name": spec.name,
                "summary": spec.summary,
                "input": wants,
                "options": {k: o.default for k, o in spec.options.items()},
                "parameters": parameters,
                "params_for": "linear data, 2 features" if regression else "MNIST",
                "source": spec.source["kind"],
            }
        )
    return rows
