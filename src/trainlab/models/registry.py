"""The model registry: names -> ``ModelSpec`` (builder, options, input contract).

Example:
    >>> from trainlab.models.registry import register_model
    >>> @register_model("tiny", summary="one conv, for tests")
    ... def tiny(input_shape, outputs, width: int = 8):
    ...     ...

Three ways in, one spec:
- the built-ins (``models/zoo.py``) and any package's ``@register_model``;
- an entry point in the group ``trainlab.models`` (a ``ModelSpec``, a decorated builder's
  module, or a plain factory registered under the entry point's name);
- a user's own code by reference, ``path/to/file.py:Class`` or ``package.module:factory``
  (``trainlab.models.usercode``), never registered globally and imported only when trusted.

The package imports ``zoo`` first, so the built-ins are registered before anyone can ask.
A builder takes ``(input_shape, outputs, **options)``. A factory (a class or function with any
other signature) may declare ``num_classes``, ``in_channels`` or ``input_shape``; trainlab fills
those from the data. Either way the other keyword parameters are the model's options.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trainlab.errors import ConfigError
from trainlab.options import Schema, options_of
from trainlab.registry import Registry

# What trainlab fills in for a factory that declares it.
FILLED = ("num_classes", "in_channels", "input_shape")


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: how to build it and what input it needs.

    Args:
        name: the registry name (or the code reference for a user's model).
        builder: ``builder(input_shape, outputs, **options) -> nn.Module``.
        options: the options' schema (``trainlab.options``), from the builder's signature.
        size: the spatial input size it needs (the data is resized per batch); None: any.
        size_option: the option that sets that size's side, if it can be chosen (e.g.
            ``resolution``: a pretrained backbone at 96×96 costs a sixth of 224×224).
        channels: the input channels it needs (grey is repeated); None: any.
        output: "logits", "log_probs" or "regression", or a function of the options.
        min_size: the smallest spatial size it accepts when ``size`` is None.
        flat: it flattens its input, so it takes any shape (tabular data too).
        source: where the code comes from, recorded with every run ("builtin", "plugin", ...).
    """

    name: str
    builder: Callable[..., Any]
    summary: str = ""
    options: Schema = field(default_factory=dict)
    size: tuple[int, int] | None = None
    size_option: str | None = None
    channels: int | None = None
    output: str | Callable[[dict[str, Any]], str] = "logits"
    min_size: int = 1
    flat: bool = False
    source: dict[str, Any] = field(default_factory=lambda: {"kind": "builtin"})
    mean: tuple[float, ...] | None = None  # the normalisation its weights expect, if any
    std: tuple[float, ...] | None = None

    def output_for(self, options: dict[str, Any]) -> str:
        return self.output(options) if callable(self.output) else self.output

    def size_for(self, options: dict[str, Any] | None = None) -> tuple[int, int] | None:
        """The spatial size the model takes with these options."""
        if self.size_option and options and options.get(self.size_option):
            side = int(options[self.size_option])
            return (side, side)
        return self.size

    def input_for(
        self, data_shape: tuple[int, ...], options: dict[str, Any] | None = None
    ) -> tuple[int, ...]:
        """The input shape the model is built for, given the data's (and the options)."""
        if self.flat or len(data_shape) != 3:
            if not self.flat and (self.size or self.channels or self.source["kind"] == "builtin"):
                raise ConfigError(
                    f"model '{self.name}' needs images (C×H×W), the data has shape "
                    f"{list(data_shape)}. Use a flat model: linreg, softmax or mlp."
                )
            return data_shape
        c, h, w = data_shape
        c = self.channels or c
        h, w = self.size_for(options) or (h, w)
        if min(h, w) < self.min_size:
            raise ConfigError(
                f"model '{self.name}' needs images of at least {self.min_size}×{self.min_size}, "
                f"got {h}×{w}. For a folder of images, --image-size {self.min_size} (or more) "
                "resizes them when they are read; or choose a model made for small images (cnn)."
            )
        return (c, h, w)


def spec_for(name: str, fn: Callable[..., Any], **contract: Any) -> ModelSpec:
    """A spec for ``fn``: a builder ``(input_shape, outputs, **options)`` as it is, any other
    callable (an ``nn.Module`` class, a factory) wrapped so trainlab fills ``FILLED``."""
    import inspect

    target = fn.__init__ if isinstance(fn, type) else fn
    params = list(inspect.signature(target).parameters)
    if isinstance(fn, type):
        params = params[1:]  # self
    if params[:2] == ["input_shape", "outputs"]:
        return ModelSpec(name, fn, options=options_of(fn, skip=2), **contract)
    fills = tuple(p for p in FILLED if p in params)

    def builder(input_shape: tuple[int, ...], outputs: int, **options: Any) -> Any:
        given = {"num_classes": outputs, "input_shape": tuple(input_shape)}
        given["in_channels"] = input_shape[0]
        return fn(**{k: given[k] for k in fills}, **options)

    builder.__name__ = getattr(fn, "__name__", name)
    skip = 1 if isinstance(fn, type) else 0
    options = options_of(target, skip=skip, fill=fills)
    return ModelSpec(name, builder, options=options, **contract)


def _adopt(name: str, obj: Any) -> ModelSpec | None:
    """A plugin's entry point that loads a plain class or factory: registered under its name."""
    if not callable(obj):
        return None
    return spec_for(name, obj, summary=(obj.__doc__ or "").strip().split("\n")[0])


MODELS: Registry[ModelSpec] = Registry("model", ModelSpec, group="trainlab.models", adopt=_adopt)


def register_model(
    name: str | None = None, **contract: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a builder, an ``nn.Module`` class or a factory under ``name`` (default: its
    own name). ``contract`` takes ``ModelSpec``'s fields: summary, size, channels, output,
    min_size, flat. A name registered twice is refused (a silent overwrite hides mistakes)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        add(spec_for(name or fn.__name__, fn, **contract))
        return fn

    return decorate


def add(spec: ModelSpec) -> ModelSpec:
    if ":" in spec.name:
        raise ConfigError(f"model name '{spec.name}': ':' is kept for code references.")
    return MODELS.add(spec.name, spec)


def registered() -> dict[str, ModelSpec]:
    """Every registered model: the built-ins and the installed plugins."""
    return MODELS.all()


def builtin_specs() -> dict[str, ModelSpec]:
    return MODELS.builtins()


def lookup(name: str) -> ModelSpec | None:
    """The registered spec of ``name`` (the plugins are read on the first miss), or None."""
    return MODELS.lookup(name)
