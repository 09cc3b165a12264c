"""The dataset registry: names -> ``DatasetSpec`` (loader, options, kind of input).

Example:
    >>> from trainlab.data.registry import register_dataset, LoadContext
    >>> @register_dataset("blobs", kind="tabular", summary="Gaussian blobs")
    ... def blobs(ctx: LoadContext, centers: int = 3) -> Dataset:
    ...     ...

A loader takes a ``LoadContext`` (the data root, seed, log, sources) and its options as keyword
parameters (typed and validated by ``trainlab.options``, the same mechanism as models). The
*kind* of input it yields picks what every later step does with it:

- ``digits``: the MNIST family; predict, export and serve make people's images look like MNIST
  digits (polarity, crop, centre of mass);
- ``images``: other images; they are resized to the model's input;
- ``tabular``: float features; ``regression``: float targets.

Built-ins register from their own modules (``mnist_family``, ``synthetic``), which the package
imports first, so the registry is filled before anyone can ask it; other packages add theirs
through the entry-point group ``trainlab.datasets``, read on the first miss or listing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from trainlab.errors import ConfigError, unknown_name
from trainlab.options import Schema, options_of, validate

KINDS = ("digits", "images", "tabular", "regression")


@dataclass(frozen=True)
class LoadContext:
    """What every loader may use besides its options."""

    data_dir: str | Path | None = None  # as given: None means $TRAINLAB_DATA or the cache
    seed: int = 0
    log: Callable[[str], None] | None = None
    sources: tuple[str, ...] | None = None  # for datasets fetched from several places
    verify: bool = False  # hash files again instead of trusting a verification stamp
    path: str = ""  # the folder of a folder dataset (--dataset PATH)

    def say(self, line: str) -> None:
        if self.log is not None:
            self.log(line)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    loader: Callable[..., Any]
    kind: str
    summary: str = ""
    options: Schema = field(default_factory=dict)
    files: bool = False  # read from files in the data root (so `trainlab data fetch` applies)
    source: dict[str, Any] = field(default_factory=lambda: {"kind": "builtin"})


_REGISTRY: dict[str, DatasetSpec] = {}
_PLUGINS_LOADED = False


def register_dataset(
    name: str, *, kind: str, summary: str = "", files: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``loader(ctx, **options) -> Dataset`` under ``name``; a name twice is refused."""
    if kind not in KINDS:
        raise ConfigError(f"dataset '{name}': kind must be one of {', '.join(KINDS)}, got {kind}")

    def decorate(loader: Callable[..., Any]) -> Callable[..., Any]:
        add(DatasetSpec(name, loader, kind, summary, options_of(loader, skip=1), files))
        return loader

    return decorate


def add(spec: DatasetSpec) -> DatasetSpec:
    if spec.name in _REGISTRY:
        raise ConfigError(f"dataset '{spec.name}' is registered already; choose another name.")
    _REGISTRY[spec.name] = spec
    return spec


def _load_plugins() -> None:
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    from trainlab import plugins

    for ep, source in plugins.installed("trainlab.datasets"):
        before = set(_REGISTRY)
        obj = plugins.load(ep, "dataset")
        if isinstance(obj, DatasetSpec) and obj.name not in _REGISTRY:
            add(obj)
        elif ep.name not in _REGISTRY and callable(obj):
            summary = (obj.__doc__ or "").strip().split("\n")[0]
            kind = getattr(obj, "kind", "images")
            add(DatasetSpec(ep.name, obj, kind, summary, options_of(obj, skip=1)))
        for name in set(_REGISTRY) - before:
            _REGISTRY[name] = replace(_REGISTRY[name], source=source)


def registered() -> dict[str, DatasetSpec]:
    """Every dataset: the built-ins, then the installed plugins."""
    _load_plugins()
    return dict(_REGISTRY)


def is_folder(name: str) -> bool:
    """A ``--dataset`` value that names a folder of images rather than a registered dataset."""
    import os

    if not isinstance(name, str) or not name:
        return False
    return name not in _REGISTRY and ("/" in name or os.sep in name or os.path.isdir(name))


def spec_name(name: str) -> str:
    """The registry entry behind a dataset name (a folder path is the ``folder`` dataset)."""
    return "folder" if is_folder(name) else name


def get_dataset_spec(name: str) -> DatasetSpec:
    name = spec_name(name)
    if name not in _REGISTRY:
        registered()
    if name not in _REGISTRY:
        raise unknown_name("dataset", name, list(_REGISTRY))
    return _REGISTRY[name]


def load(name: str, ctx: LoadContext, options: dict[str, Any]) -> Any:
    """Load a registered dataset with its options checked; the result records both."""
    spec = get_dataset_spec(name)
    values = validate(spec.options, dict(options), f"dataset '{name}'")
    if spec.name == "folder":  # the folder's path is its name (made absolute by the loader)
        data = spec.loader(replace(ctx, path=name), **values)
        return replace(data, kind=spec.kind, options=values)
    data = spec.loader(ctx, **values)
    return replace(data, name=name, kind=spec.kind, options=values)
