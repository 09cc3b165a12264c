"""Classes of very different sizes: class weights, the focal loss and the balanced sampler.

Example:
    $ trainlab train --dataset photos/ --sampler balanced --monitor val_balanced_acc --val-split 0.1
    $ trainlab train --dataset photos/ --class-weights cat=1,dog=3 --loss focal --focal-gamma 2

``--class-weights`` takes ``none``, ``balanced`` (n / (K · n_c), as scikit-learn's), explicit
weights by class name (``cat=1,dog=3``; a class not named keeps weight 1) or ``@FILE``, a text
file of ``NAME=WEIGHT`` lines (``#`` starts a comment). config.toml records the spec as given and,
under ``[data]``, each class's training count and the weight it trained with.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from trainlab.errors import ConfigError


def class_counts(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """How many samples each class has (int64, one entry per class, zeros included)."""
    return torch.bincount(labels.reshape(-1).long().cpu(), minlength=num_classes)


def balanced_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """n / (K · n_c) for each class c (scikit-learn's ``class_weight="balanced"``)."""
    counts = class_counts(labels, num_classes).double()
    return (len(labels) / (num_classes * counts.clamp(min=1))).float()


def sample_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Each sample's chance of being drawn by ``--sampler balanced``: 1 / (its class's count),
    so every class is drawn equally often in expectation."""
    counts = class_counts(labels, num_classes).double().clamp(min=1)
    return (1.0 / counts)[labels.reshape(-1).long().cpu()]


def _entries(spec: str) -> list[str]:
    """The ``NAME=WEIGHT`` entries of an inline spec (comma-separated) or of ``@FILE`` (one a
    line, so a class name may hold a comma there)."""
    if not spec.startswith("@"):
        return [entry.strip() for entry in spec.split(",")]
    path = Path(spec[1:]).expanduser()
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(
            f"--class-weights {spec}: cannot read {path} ({e.__class__.__name__}). Give a text "
            "file with one NAME=WEIGHT line per class, e.g. 'dog=3'."
        ) from None
    entries = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    if not any(entries):
        raise ConfigError(f"--class-weights {spec}: {path} holds no NAME=WEIGHT line.")
    return [entry for entry in entries if entry]


def parse_class_weights(spec: str, classes: Sequence[str], labels: torch.Tensor):
    """The per-class weights ``--class-weights`` asks for, or None for ``none``.

    Args:
        spec: ``none``, ``balanced``, ``NAME=W,...`` or ``@FILE``.
        classes: the dataset's class names, in index order.
        labels: the training labels (for ``balanced``).
    """
    if spec == "none":
        return None
    classes = [str(c) for c in classes]
    if spec == "balanced":
        return balanced_weights(labels, len(classes))
    known = ", ".join(classes)
    weights = torch.ones(len(classes))
    for entry in _entries(spec):
        name, eq, value = (part.strip() for part in entry.rpartition("="))
        if not eq or not name:
            raise ConfigError(
                f"--class-weights {spec}: '{entry}' is not NAME=WEIGHT. Give none, balanced, "
                f"NAME=WEIGHT pairs such as {classes[0]}=1,{classes[-1]}=3, or @FILE. "
                f"The classes: {known}."
            )
        if name not in classes:
            raise ConfigError(
                f"--class-weights {spec}: no class named '{name}'. The classes: {known}."
            )
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if not 0 < weight < float("inf"):
            raise ConfigError(
                f"--class-weights {spec}: the weight of '{name}' is {value!r}; a weight must be a "
                f"positive number (1 leaves a class as it is). The classes: {known}."
            )
        weights[classes.index(name)] = weight
    return weights


def focal_loss(gamma: float, weight: torch.Tensor | None = None):
    """The focal loss (Lin et al. 2017), summed over the batch: -(1 - p_y)^gamma · log p_y,
    times the class weight of y if given. With gamma 0 it is cross-entropy. Works on logits or
    log-probabilities alike (log-softmax of log-probabilities is the identity)."""

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(out.float(), dim=1).gather(1, y.long().unsqueeze(1)).squeeze(1)
        # clamped off 0 so that a gamma below 1 keeps a finite gradient at p = 1
        miss = (-torch.expm1(log_p)).clamp(min=torch.finfo(torch.float32).tiny)
        term = -miss.pow(gamma) * log_p
        if weight is not None:
            term = term * weight.to(out.device)[y]
        return term.sum()

    return loss


def imbalance_record(data, weights: torch.Tensor | None) -> dict:
    """What config.toml and every checkpoint say of the classes' sizes (the report shows the
    training counts beside each class's recall) and, when the loss weighs them, the weights."""
    record = {"class_counts": {"train": class_counts(data.train_y, data.num_classes).tolist()}}
    if data.val_y is not None:
        record["class_counts"]["val"] = class_counts(data.val_y, data.num_classes).tolist()
    if weights is not None:
        record["class_weights"] = [round(float(w), 6) for w in weights]
    return record
