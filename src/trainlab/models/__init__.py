"""Model registry: a name -> a constructor, with the input each model expects.

Example:
    >>> from trainlab.models import build_model
    >>> model = build_model("lenet", data)        # sized for data's input and classes

The data side adapts to what a model states it wants (``ModelSpec.size``, ``channels``): images
are resized and channels repeated per batch, on the device. Nothing else needs the architecture.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from trainlab.errors import ConfigError, unknown_name
from trainlab.models import zoo


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[..., nn.Module]
    summary: str
    size: tuple[int, int] | None = None  # spatial input size it needs; None: any
    channels: int | None = None  # input channels it needs; None: any
    output: str = "logits"  # "logits", "log_probs" or "regression"
    min_size: int = 1  # smallest spatial size it accepts when size is None
    flat: bool = False  # flattens its input (any shape)

    def input_for(self, data_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The input shape the model is built for, given the data's."""
        if self.flat or len(data_shape) != 3:
            if not self.flat:
                raise ConfigError(
                    f"model '{self.name}' needs images (C×H×W), the data has shape {data_shape}. "
                    "Use a flat model: linreg, softmax or mlp."
                )
            return data_shape
        c, h, w = data_shape
        c = self.channels or c
        h, w = self.size or (h, w)
        if min(h, w) < self.min_size:
            raise ConfigError(
                f"model '{self.name}' needs images of at least {self.min_size}×{self.min_size}, "
                f"got {h}×{w}."
            )
        return (c, h, w)


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec("linreg", zoo.linreg, "linear regression (MSE)", output="regression", flat=True),
        ModelSpec("softmax", zoo.softmax, "softmax regression (one linear layer)", flat=True),
        ModelSpec("mlp", zoo.mlp, "MLP with ReLU, hidden sizes from --hidden", flat=True),
        ModelSpec("lenet", zoo.lenet, "LeNet-5 as in d2l (sigmoid, avg-pool)", size=(28, 28)),
        ModelSpec(
            "lenet-relu", zoo.lenet_relu, "LeNet-5 with ReLU, max-pool, batch norm", size=(28, 28)
        ),
        ModelSpec(
            "alexnet",
            zoo.alexnet,
            "torchvision's AlexNet with the seeds' 10-way head",
            size=(96, 96),
            channels=3,
        ),
        ModelSpec("cnn", zoo.cnn, "fast 2-stage batch-norm CNN (default)", min_size=4),
    ]
}


def get_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise unknown_name("model", name, list(MODELS))
    return MODELS[name]


def build_model(
    name: str,
    data: Any = None,
    *,
    input_shape: tuple[int, ...] | None = None,
    outputs: int | None = None,
    init: str = "default",
    **options: Any,
) -> nn.Module:
    """Build a registered model sized for ``data`` (or an explicit input shape and output size).

    Args:
        name: registry name (see ``MODELS``).
        data: a ``Dataset``; gives the input shape and number of classes.
        input_shape: the data's input shape, when no dataset is given.
        outputs: number of classes (or regression outputs), when no dataset is given.
        init: "default" (PyTorch's) or "xavier" (uniform, on Linear and Conv2d, as d2l's train_ch6).
        **options: builder options, e.g. ``hidden=[512, 256]`` for mlp.
    """
    spec = get_spec(name)
    if data is not None:
        input_shape, outputs = data.input_shape, data.output_size
        wants_regression = spec.output == "regression"
        if wants_regression != (data.task == "regression"):
            kind = "regression" if wants_regression else "classification"
            raise ConfigError(
                f"model '{name}' is for {kind}, dataset '{data.name}' is {data.task}. "
                + ("Use dataset 'linear'." if wants_regression else "Use a classifier model.")
            )
    if input_shape is None or outputs is None:
        raise ConfigError("build_model needs a dataset or both input_shape and outputs")
    model_input = spec.input_for(tuple(input_shape))
    model = spec.builder(model_input, outputs, **options)
    init_weights(model, init)
    # What a checkpoint needs to rebuild this model, and what the data side must adapt to.
    model.trainlab_record = {
        "name": name,
        "options": {**builder_defaults(spec.builder), **options},
        "init": init,
        "input_shape": list(input_shape),
        "outputs": int(outputs),
        "output": output_kind(name, options),
        "size": list(model_input[1:]) if spec.size else None,
        "channels": spec.channels,
    }
    return model


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


def builder_defaults(builder: Callable[..., nn.Module]) -> dict[str, Any]:
    """A builder's own option defaults, so a record names every option the model was built with."""
    import inspect

    return {
        name: list(p.default) if isinstance(p.default, tuple) else p.default
        for name, p in list(inspect.signature(builder).parameters.items())[2:]
        if p.default is not inspect.Parameter.empty
    }


def output_kind(name: str, options: dict[str, Any] | None = None) -> str:
    """What the model outputs: "logits", "log_probs" or "regression"."""
    if (options or {}).get("log_softmax"):
        return "log_probs"
    return get_spec(name).output


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def describe_models() -> list[dict[str, Any]]:
    """One row per model: name, summary, expected input and parameters for MNIST-shaped data."""
    rows = []
    for spec in MODELS.values():
        shape = (2,) if spec.output == "regression" else (1, 28, 28)
        outputs = 1 if spec.output == "regression" else 10
        model = build_model(spec.name, input_shape=shape, outputs=outputs)
        if spec.flat:
            wants = "any shape, flattened" + (" (2 features here)" if shape == (2,) else "")
        else:
            c = spec.channels or "C"
            size = "×".join(map(str, spec.size)) if spec.size else "H×W (any)"
            wants = f"{c}×{size}"
        rows.append(
            {
                "name": spec.name,
                "summary": spec.summary,
                "input": wants,
                "parameters": parameter_count(model),
                "params_for": "linear data, 2 features" if shape == (2,) else "MNIST",
            }
        )
        del model
    return rows
