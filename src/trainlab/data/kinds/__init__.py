"""Kinds of data, one module each: what a kind's inputs are and what every step does with them.

Example:
    >>> from trainlab.data.kinds import get_kind
    >>> digits = get_kind("digits")
    >>> digits.task.name, digits.page.input
    ('classification', 'draw')
    >>> digits.augmentation((28, 28)).describe()
    'rotations (±10°) and shifts (±10%)'

A dataset records its kind (``Dataset.kind``, and every checkpoint's ``data.kind``). Everything
that depends on it asks the kind, never the kind's name: how a person's input becomes the
model's input (``reader``) and the per-batch preprocessing (``input_transform``), which
augmentations and test-time flips make sense, the task family (loss, metrics, the monitor that
chooses best.pt), what predict and serve answer and the page shows, and what an exported graph
expects. A new kind is one new module that subclasses ``Kind`` and registers an instance.

Other packages add kinds through the entry-point group ``trainlab.kinds``.
"""

from __future__ import annotations

from trainlab.data.kinds.base import Kind, Page
from trainlab.data.kinds.tasks import CLASSIFICATION, MULTILABEL, REGRESSION, Task
from trainlab.registry import Registry

KINDS: Registry[Kind] = Registry("kind of data", Kind, group="trainlab.kinds")


def register_kind(kind: Kind) -> Kind:
    """Register ``kind`` under its name; a name registered twice is refused."""
    return KINDS.add(kind.name, kind)


def get_kind(name: str) -> Kind:
    """The kind registered as ``name`` (a ConfigError lists the known ones)."""
    return KINDS.get(name)


def infer_kind(holds_images: bool, has_classes: bool) -> str:
    """The kind of a dataset made in Python without one: images or tabular features, classes
    or regression targets."""
    if not has_classes:
        return "regression"
    return "images" if holds_images else "tabular"


from trainlab.data.kinds import (  # noqa: E402, F401
    digits,
    images,
    multilabel_images,
    regression,
    table,
    tabular,
    tensors,
)

__all__ = [
    "CLASSIFICATION",
    "KINDS",
    "MULTILABEL",
    "REGRESSION",
    "Kind",
    "Page",
    "Task",
    "get_kind",
    "infer_kind",
    "register_kind",
]
