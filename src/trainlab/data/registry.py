"""The dataset registry: names -> ``DatasetSpec`` (loader, options, kind of input).

Example:
    >>> from trainlab.data.registry import register_dataset, LoadContext
    >>> @register_dataset("blobs", kind="tabular", summary="Gaussian blobs")
    ... def blobs(ctx: LoadContext, centers: int = 3) -> Dataset:
    ...     ...

A loader takes a ``LoadContext`` (the data root, seed, sources; ``ctx.say`` for progress) and
its options as keyword parameters (typed and validated by ``trainlab.options``, the same
mechanism as models). The *kind* of input it yields picks what every later step does with it:

- ``digits``: the MNIST family; predict, export and serve make people's images look like MNIST
  digits (polarity, crop, centre of mass);
- ``images``: other images; they are resized to the model's input;
- ``tabular``: float features; ``regression``: float targets.

Built-ins register from their own modules (``mnist_family``, ``synthetic``), which the package
imports first, so the registry is filled before anyone can ask it; other packages add theirs
through the entry-point group ``trainlab.datasets``, read on the first miss or listing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from trainlab.data.kinds import get_kind
from trainlab.errors import unknown_name
from trainlab.options import Schema, options_of, validate
from trainlab.registry import Registry

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadContext:
    """What every loader may use besides its options."""

    data_dir: str | Path | None = None  # as given: None means $TRAINLAB_DATA or the cache
    seed: int = 0
    sources: tuple[str, ...] | None = None  # for datasets fetched from several places
    verify: bool = False  # hash files again instead of trusting a verification stamp
    path: str = ""  # what a dataset read from a path was given (--dataset PATH)

    def say(self, line: str) -> None:
        """A line of progress (the ``trainlab.data`` logger)."""
        logging.getLogger("trainlab.data").info(line)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    loader: Callable[..., Any]
    kind: str
    summary: str = ""
    options: Schema = field(default_factory=dict)
    files: bool = False  # read from files in the data root (so `trainlab data fetch` applies)
    # A dataset given by a path (a folder of images): which --dataset values it claims, and how
    # to name them in listings. Its registry name is never a --dataset value itself.
    claims: Callable[[str], bool] | None = None
    shown_as: str = ""
    # the validation split a run holds out when it names none (--val-split 0 turns it off):
    # a folder of your own images has no other honest way to choose best.pt
    val_split: float = 0.0
    source: dict[str, Any] = field(default_factory=lambda: {"kind": "builtin"})


def _adopt(name: str, obj: Any) -> DatasetSpec | None:
    """A plugin's entry point that loads a plain loader function: registered under its name."""
    if not callable(obj):
        return None
    summary = (obj.__doc__ or "").strip().split("\n")[0]
    kind = getattr(obj, "kind", "images")
    return DatasetSpec(name, obj, kind, summary, options_of(obj, skip=1))


DATASETS: Registry[DatasetSpec] = Registry(
    "dataset", DatasetSpec, group="trainlab.datasets", adopt=_adopt
)


def register_dataset(
    name: str,
    *,
    kind: str,
    summary: str = "",
    files: bool = False,
    claims: Callable[[str], bool] | None = None,
    shown_as: str = "",
    val_split: float = 0.0,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``loader(ctx, **options) -> Dataset`` under ``name``; a name twice is refused.

    ``claims`` makes it a dataset given by a path: ``--dataset VALUE`` loads it when
    ``claims(VALUE)`` is true, with the value in ``ctx.path``; ``shown_as`` says so in listings
    (e.g. "PATH/ (a folder of your own images)"). ``val_split`` is the validation split a run
    of it holds out unless it names one."""
    get_kind(kind)  # an unknown kind is refused by name

    def decorate(loader: Callable[..., Any]) -> Callable[..., Any]:
        options = options_of(loader, skip=1)
        spec = DatasetSpec(name, loader, kind, summary, options, files, claims, shown_as, val_split)
        add(spec)
        return loader

    return decorate


def add(spec: DatasetSpec) -> DatasetSpec:
    return DATASETS.add(spec.name, spec)


def registered() -> dict[str, DatasetSpec]:
    """Every dataset: the built-ins, then the installed plugins."""
    return DATASETS.all()


def by_path(name: str) -> DatasetSpec | None:
    """The dataset read from a path that claims ``name`` (a folder of images), or None."""
    if not isinstance(name, str) or not name:
        return None
    for spec in DATASETS.all().values():
        if spec.claims is not None and spec.claims(name):
            return spec
    return None


def names() -> list[str]:
    """What ``--dataset`` takes: the registered names, then the path forms."""
    specs = DATASETS.all().values()
    return [s.name for s in specs if s.claims is None] + [s.shown_as for s in specs if s.claims]


def get_dataset_spec(name: str) -> DatasetSpec:
    """The spec behind a ``--dataset`` value: a registered name, or a path one claims."""
    spec = DATASETS.lookup(name)
    if spec is not None and spec.claims is None:
        return spec
    found = by_path(name)
    if found is None:
        raise unknown_name("dataset", name, names())
    return found


def load(name: str, ctx: LoadContext, options: dict[str, Any]) -> Any:
    """Load a registered dataset with its options checked; the result records both."""
    spec = get_dataset_spec(name)
    values = validate(spec.options, dict(options), f"dataset '{name}'")
    if spec.claims is not None:  # the path is its name (the loader makes it absolute)
        data = spec.loader(replace(ctx, path=name), **values)
        return replace(data, kind=_kind_of(data, spec), options=values)
    data = spec.loader(ctx, **values)
    return replace(data, name=name, kind=_kind_of(data, spec), options=values)


def _kind_of(data: Any, spec: DatasetSpec) -> str:
    """The registered kind, or the one a loader's options chose and recorded in
    ``info["kind"]`` (a labels CSV read with --multi-label yields images with label sets), or
    a narrower one the loader set on the data (a table of numeric targets is a
    ``table-regression``, a subclass of the spec's ``table``)."""
    if data.info.get("kind"):
        return data.info["kind"]
    chosen = getattr(data, "kind", "")
    if chosen and chosen != spec.kind:
        try:
            if isinstance(get_kind(chosen), type(get_kind(spec.kind))):
                return chosen
        except Exception:  # noqa: BLE001 - an unknown kind: the spec's
            return spec.kind
    return spec.kind


def spec_name(name: str) -> str:
    """The registry name behind a ``--dataset`` value (for a path, the dataset claiming it)."""
    spec = DATASETS.lookup(name)
    if spec is not None and spec.claims is None:
        return name
    found = by_path(name)
    return found.name if found is not None else name


def kind_of_record(data: dict[str, Any]) -> str:
    """The kind of data a checkpoint's ``data`` record was trained on. Records before kinds
    were recorded (format version 1) name their dataset: its registered kind, else the kind its
    task and input shape make."""
    if data.get("kind"):
        return data["kind"]
    spec = DATASETS.lookup(data.get("name", ""))
    if spec is not None:
        return spec.kind
    from trainlab.data.kinds import infer_kind

    return infer_kind(len(data.get("input_shape") or []) == 3, bool(data.get("classes")))
