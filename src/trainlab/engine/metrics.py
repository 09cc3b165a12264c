"""Metrics kept as counts on the device and read once per epoch.

Loss is accumulated as Σ loss·n and accuracy as a confusion matrix, so every figure is weighted by
samples, never a mean of batch means, and nothing forces a host sync inside the loop.

The one place that makes a confusion matrix from labels and predictions (``confusion_matrix``)
and precision, recall, F1 and support from a confusion matrix (``per_class``), for training,
eval, the report and TensorBoard alike:

    >>> confusion = confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], num_classes=3)
    >>> confusion.tolist()
    [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    >>> per_class(confusion)["recall"]
    [1.0, 0.5, 1.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from trainlab.engine.multilabel import scores


def confusion_matrix(labels, predictions, num_classes: int) -> torch.Tensor:
    """Counts of (true, predicted) pairs: a K×K int64 matrix, rows true, columns predicted.

    Args:
        labels, predictions: class indices, as tensors (kept on their device: no host sync)
            or anything numpy reads.
        num_classes: K; classes that never occur get rows and columns of zeros.
    """
    labels, predictions = _as_index(labels), _as_index(predictions)
    k = num_classes
    pairs = labels * k + predictions.to(labels.device)
    return torch.bincount(pairs, minlength=k * k).view(k, k)


def _as_index(values) -> torch.Tensor:
    if not isinstance(values, torch.Tensor):
        values = torch.from_numpy(np.asarray(values))
    return values.reshape(-1).long()


class Counts:
    """Running sums for one pass over a split."""

    def __init__(self, num_classes: int | None, device: torch.device):
        """``num_classes`` None: taken from the first batch's outputs (0 for regression)."""
        self.num_classes = num_classes
        self.device = device
        dtype = torch.float32 if device.type == "mps" else torch.float64
        self.loss_sum = torch.zeros((), dtype=dtype, device=device)
        self.confusion = self._zeros(num_classes or 0)
        self.n = 0  # known on the host: the batch sizes

    def _zeros(self, k: int) -> torch.Tensor:
        return torch.zeros(k, k, dtype=torch.int64, device=self.device)

    def add(self, loss_sum: torch.Tensor, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Add one batch: its summed loss, the model outputs and the targets."""
        self.loss_sum += loss_sum.detach().to(self.loss_sum.dtype)
        self.n += len(targets)
        if self.num_classes is None:
            wide = outputs.dim() == 2 and outputs.shape[1] > 1 and not targets.is_floating_point()
            self.num_classes = outputs.shape[1] if wide else 0
            self.confusion = self._zeros(self.num_classes)
        if self.num_classes:
            pred = outputs.detach().argmax(dim=1)
            self.confusion += confusion_matrix(targets, pred, self.num_classes)

    def copy(self) -> Counts:
        out = Counts(self.num_classes, self.device)
        out.loss_sum = self.loss_sum.clone()
        out.confusion = self.confusion.clone()
        out.n = self.n
        return out

    def state(self) -> dict:
        return {"loss_sum": float(self.loss_sum), "n": self.n, "confusion": self.confusion.cpu()}

    def load_state(self, state: dict) -> None:
        self.loss_sum.fill_(state["loss_sum"])
        self.n = int(state["n"])
        self.confusion.copy_(state["confusion"])

    def read(self, thresholds=None) -> EpochMetrics:  # noqa: ARG002 - multi-label's
        """The one host sync: copy the sums and derive the metrics."""
        confusion = self.confusion.cpu()
        loss_sum = float(self.loss_sum)
        n = max(self.n, 1)
        correct = int(confusion.trace())
        return EpochMetrics(
            loss=loss_sum / n,
            accuracy=correct / n if self.num_classes else None,
            n=self.n,
            correct=correct,
            confusion=confusion,
        )


class MultiLabelCounts(Counts):
    """A multi-label split's sums: the loss, and each sample's label probabilities and targets
    (kept on the device, read once), since average precision and the thresholds tuned on the
    validation split need the scores, not counts at one threshold."""

    def __init__(self, num_classes: int | None, device: torch.device):
        super().__init__(num_classes, device)
        self.probs: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []

    def add(self, loss_sum: torch.Tensor, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.loss_sum += loss_sum.detach().to(self.loss_sum.dtype)
        self.n += len(targets)
        self.probs.append(outputs.detach().float().sigmoid())
        self.targets.append(targets.detach().float())

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, targets) as float32 N×K arrays, on the host."""
        k = self.num_classes or 0
        if not self.probs:
            return np.zeros((0, k), np.float32), np.zeros((0, k), np.float32)
        return torch.cat(self.probs).cpu().numpy(), torch.cat(self.targets).cpu().numpy()

    def copy(self) -> MultiLabelCounts:
        out = MultiLabelCounts(self.num_classes, self.device)
        out.loss_sum, out.n = self.loss_sum.clone(), self.n
        out.probs, out.targets = list(self.probs), list(self.targets)
        return out

    def state(self) -> dict:
        """Tensors on the host (a checkpoint loads with ``weights_only``)."""
        probs, targets = (torch.from_numpy(a) for a in self.arrays())
        return {"loss_sum": float(self.loss_sum), "n": self.n, "probs": probs, "targets": targets}

    def load_state(self, state: dict) -> None:
        self.loss_sum.fill_(state["loss_sum"])
        self.n = int(state["n"])
        self.probs = [torch.as_tensor(state["probs"], device=self.device)]
        self.targets = [torch.as_tensor(state["targets"], device=self.device)]

    def merge(self, states: list[dict]) -> MultiLabelCounts:
        """The ranks' states (``state()``, in rank order) as one."""
        out = MultiLabelCounts(self.num_classes, self.device)
        out.loss_sum.fill_(sum(s["loss_sum"] for s in states))
        out.n = sum(s["n"] for s in states)
        out.probs = [torch.as_tensor(s["probs"], device=self.device) for s in states]
        out.targets = [torch.as_tensor(s["targets"], device=self.device) for s in states]
        return out

    def read(self, thresholds=None) -> EpochMetrics:
        """The loss and the multi-label scores at ``thresholds`` (one per label; None: 0.5)."""
        probs, targets = self.arrays()
        k = probs.shape[1]
        thresholds = list(thresholds) if thresholds is not None else [0.5] * k
        figures = scores(probs, targets, thresholds)
        return EpochMetrics(
            loss=float(self.loss_sum) / max(self.n, 1),
            accuracy=None,
            n=self.n,
            correct=0,
            confusion=torch.zeros(k, k, dtype=torch.int64),
            scores={name: figures[name] for name in ("micro_f1", "macro_f1", "map", "subset_acc")},
            per_label=figures["per_label"],
            thresholds=thresholds,
        )


def counts_for(task, num_classes: int | None, device: torch.device) -> Counts:
    """The running sums a split of ``task``'s family needs (``trainlab.data.kinds.Task``)."""
    kind = MultiLabelCounts if task.multi_label else Counts
    return kind(num_classes, device)


@dataclass
class EpochMetrics:
    loss: float
    accuracy: float | None
    n: int
    correct: int
    confusion: torch.Tensor
    # multi-label: micro_f1, macro_f1, map, subset_acc; per-label P/R/F1/support; thresholds
    scores: dict[str, float] = field(default_factory=dict)
    per_label: dict[str, list] = field(default_factory=dict)
    thresholds: list[float] | None = None

    def as_row(self, prefix: str) -> dict:
        row = {f"{prefix}_loss": self.loss}
        if self.accuracy is not None:
            row[f"{prefix}_acc"] = self.accuracy
            if not self.scores:  # single-label: each class counting the same
                row.update({f"{prefix}_{k}": v for k, v in class_balanced(self.confusion).items()})
        row.update({f"{prefix}_{name}": value for name, value in self.scores.items()})
        return row


def class_balanced(confusion) -> dict[str, float]:
    """Figures where every class counts the same, however few its samples, as scikit-learn
    computes them from labels and predictions: ``macro_f1`` (``f1_score(average="macro")``:
    the mean F1 over the classes that occur or are predicted) and ``balanced_acc``
    (``balanced_accuracy_score``: the mean recall over the classes that occur).

        >>> class_balanced([[8, 2], [1, 1]])["balanced_acc"]
        0.65
    """
    scores = per_class(confusion)
    support = np.asarray(scores["support"])
    present = (support > 0) | (np.asarray(_predicted(confusion)) > 0)
    f1, recall = np.asarray(scores["f1"]), np.asarray(scores["recall"])
    return {
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "balanced_acc": float(recall[support > 0].mean()) if (support > 0).any() else 0.0,
    }


def _predicted(confusion) -> list[int]:
    if not isinstance(confusion, torch.Tensor):
        confusion = torch.from_numpy(np.asarray(confusion))
    return confusion.sum(0).tolist()


def per_class(confusion) -> dict[str, list[float]]:
    """Precision, recall, F1 and support per class from a confusion matrix (rows: true), as
    scikit-learn's ``precision_recall_fscore_support(..., zero_division=0)`` gives them: a class
    never predicted has precision 0, a class that never occurs has recall 0.

    Args:
        confusion: from ``confusion_matrix`` or ``Counts``: a tensor or a nested list/array.
    """
    if not isinstance(confusion, torch.Tensor):
        confusion = torch.from_numpy(np.asarray(confusion))
    confusion = confusion.double()
    tp = confusion.diag()
    predicted = confusion.sum(0)
    support = confusion.sum(1)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    recall = torch.where(support > 0, tp / support.clamp(min=1), torch.zeros_like(tp))
    denom = precision + recall
    f1 = torch.where(
        denom > 0, 2 * precision * recall / denom.clamp(min=1e-12), torch.zeros_like(tp)
    )
    return {
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": [int(s) for s in support.tolist()],
    }
