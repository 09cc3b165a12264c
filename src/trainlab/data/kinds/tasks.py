"""Task families: what a model's outputs mean, and so its loss, metrics and best.pt monitor.

A kind of data names its task family; the engine asks the family, never the kind's name.
"""

from __future__ import annotations

from dataclasses import dataclass

# a multi-label split's figures: F1 over all (sample, label) pairs and averaged over labels,
# mean average precision over labels, the share of samples whose whole label set is right
MULTILABEL_METRICS = ("micro_f1", "macro_f1", "map", "subset_acc", "loss")


@dataclass(frozen=True)
class Task:
    """A task family.

    Args:
        name: recorded with every run ("classification", "regression").
        has_classes: outputs are scores over named classes (accuracy, confusion, predict).
        metric: the metric that chooses best.pt and that --early-stop watches by default,
            without the split prefix ("acc", "loss"), and whether higher is better.
        losses: the --loss values that fit its targets.
        bf16_auto: --amp auto may pick bf16 (measured to keep accuracy for classifiers;
            regression targets need float32's mantissa).
        multi_label: each sample has a set of the classes (multi-hot float targets N×K): one
            sigmoid per class, scored by F1 and average precision at per-label thresholds.
    """

    name: str
    has_classes: bool
    metric: str
    higher_is_better: bool
    losses: tuple[str, ...]
    bf16_auto: bool
    multi_label: bool = False

    def default_loss(self, output: str) -> str:
        """The loss --loss auto means for a model whose output is ``output``."""
        if not self.has_classes:
            return "mse"
        if self.multi_label:
            return "bce"
        return "nll" if output == "log_probs" else "cross-entropy"

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metric names a split gets in metrics.jsonl (``val_`` + each)."""
        if self.multi_label:
            return MULTILABEL_METRICS
        return ("acc", "loss", *BALANCED) if self.has_classes else ("loss",)

    def higher_is_better_for(self, metric: str) -> bool:
        """Whether ``metric`` (one of ``metrics``) improves upwards: every score but a loss."""
        return metric != "loss"


# single-label scores where each class counts the same (engine.metrics.class_balanced), for
# data where one class is rare: --monitor val_macro_f1 or val_balanced_acc
BALANCED = ("macro_f1", "balanced_acc")


CLASSIFICATION = Task(
    "classification",
    has_classes=True,
    metric="acc",
    higher_is_better=True,
    losses=("cross-entropy", "nll", "focal"),
    bf16_auto=True,
)
REGRESSION = Task(
    "regression",
    has_classes=False,
    metric="loss",
    higher_is_better=False,
    losses=("mse",),
    bf16_auto=False,
)
MULTILABEL = Task(
    "multi-label",
    has_classes=True,
    metric="micro_f1",
    higher_is_better=True,
    losses=("bce",),
    bf16_auto=True,
    multi_label=True,
)
