"""Multi-label scores and thresholds: what a set of labels per sample is judged by.

Example:
    >>> import numpy as np
    >>> probs = np.array([[0.9, 0.2], [0.6, 0.7], [0.1, 0.8]], np.float32)
    >>> targets = np.array([[1, 0], [0, 1], [0, 1]], np.float32)
    >>> tune_thresholds(probs, targets)
    [0.75, 0.45]
    >>> scores(probs, targets, [0.75, 0.45])["micro_f1"]
    1.0

Each label has its own threshold, tuned on the validation split to maximise that label's F1
(half-way between the lowest probability it counts as present and the next one below, so a
new sample close to the edge is not decided by chance). A label with no positives in the
validation split keeps 0.5. ``--threshold T`` sets every label's to T instead.

The figures are scikit-learn's: micro and macro F1 (``f1_score``), mean average precision over
the labels that occur (``average_precision_score`` per label), subset accuracy (the whole set
right), and per-label precision, recall, F1 and support (``precision_recall_fscore_support``),
all with ``zero_division=0``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT_THRESHOLD = 0.5


def tune_thresholds(probs: np.ndarray, targets: np.ndarray) -> list[float]:
    """One threshold per label maximising its F1 on these samples (0.5 without positives)."""
    return [_best_threshold(probs[:, k], targets[:, k]) for k in range(probs.shape[1])]


def _best_threshold(prob: np.ndarray, target: np.ndarray) -> float:
    positives = int(target.sum())
    if positives == 0:
        return DEFAULT_THRESHOLD
    order = np.argsort(-prob, kind="stable")
    sorted_prob, hits = prob[order], target[order]
    true_pos = np.cumsum(hits)
    predicted = np.arange(1, len(prob) + 1)
    last = np.r_[sorted_prob[1:] != sorted_prob[:-1], True]  # cut only between distinct values
    f1 = np.where(last, 2 * true_pos / (predicted + positives), -1.0)
    cut = int(np.argmax(f1))  # the first best: the highest threshold among equals
    below = sorted_prob[cut + 1] if cut + 1 < len(prob) else 0.0
    return round(float((sorted_prob[cut] + below) / 2), 6)


def scores(probs: np.ndarray, targets: np.ndarray, thresholds) -> dict[str, Any]:
    """micro_f1, macro_f1, map, subset_acc and per_label (precision, recall, f1, support,
    average_precision) of probabilities N×K against multi-hot targets at ``thresholds``."""
    from sklearn.metrics import average_precision_score, f1_score, precision_recall_fscore_support

    k = probs.shape[1]
    if not len(probs):
        zeros = {name: [0.0] * k for name in ("precision", "recall", "f1", "average_precision")}
        per_label = {**zeros, "support": [0] * k}
        return {"micro_f1": 0.0, "macro_f1": 0.0, "map": 0.0, "subset_acc": 0.0,
                "per_label": per_label}  # fmt: skip
    truth = targets.astype(bool)
    pred = probs >= np.asarray(thresholds, np.float32)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, pred, average=None, zero_division=0
    )
    ap = [
        float(average_precision_score(truth[:, j], probs[:, j])) if truth[:, j].any() else 0.0
        for j in range(k)
    ]
    present = [a for a, s in zip(ap, support, strict=True) if s]
    return {
        "micro_f1": float(f1_score(truth, pred, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(truth, pred, average="macro", zero_division=0)),
        "map": float(np.mean(present)) if present else 0.0,
        "subset_acc": float((pred == truth).all(1).mean()),
        "per_label": {
            "precision": [float(v) for v in precision],
            "recall": [float(v) for v in recall],
            "f1": [float(v) for v in f1],
            "support": [int(v) for v in support],
            "average_precision": ap,
        },
    }


def split_thresholds(counts, fixed: float | None) -> list[float]:
    """The thresholds a validation split's counts (``MultiLabelCounts``) give: tuned per
    label, or ``fixed`` for every label (``--threshold``)."""
    probs, targets = counts.arrays()
    if fixed is not None:
        return [float(fixed)] * probs.shape[1]
    return tune_thresholds(probs, targets)


def default_thresholds(num_labels: int, fixed: float | None) -> list[float]:
    """Without a validation split: ``--threshold``, else 0.5 for every label."""
    return [float(fixed if fixed is not None else DEFAULT_THRESHOLD)] * num_labels


def co_occurrence(targets: np.ndarray) -> np.ndarray:
    """K×K counts of samples holding both labels (the diagonal: each label's count)."""
    hot = targets.astype(np.int64)
    return hot.T @ hot


def label_sets(probs: np.ndarray, thresholds, classes: list[str]) -> list[list[tuple[str, float]]]:
    """Each sample's labels over their thresholds, most probable first, with probabilities."""
    out = []
    limits = np.asarray(thresholds, np.float32)
    for row in probs:
        chosen = np.nonzero(row >= limits)[0]
        chosen = chosen[np.argsort(-row[chosen], kind="stable")]
        out.append([(classes[j], float(row[j])) for j in chosen])
    return out


def recorded_thresholds(checkpoint: dict[str, Any]) -> list[float]:
    """A multi-label checkpoint's thresholds, one per label: those its epoch recorded (tuned on
    the validation split, or --threshold), else 0.5 for every label."""
    found = (checkpoint.get("metrics") or {}).get("thresholds")
    if found:
        return [float(t) for t in found]
    fixed = (checkpoint.get("config") or {}).get("threshold")
    return default_thresholds(len(checkpoint["data"]["classes"]), fixed)
