"""The report of a multi-label run: a label co-occurrence matrix instead of the confusion matrix
(a label set has no single "predicted class"), the per-label scores at the recorded thresholds,
and the images whose predicted set is furthest from the true one.

Example:
    >>> parts = multilabel_parts(load_predictions("runs/<id>/predictions.npz"), "runs/<id>")
    >>> parts["figures"]["cooccurrence"]
    PosixPath('runs/<id>/cooccurrence.png')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trainlab.engine.multilabel import co_occurrence, scores
from trainlab.report.figures import save_png
from trainlab.report.live import pyplot


def multilabel_parts(pred: dict[str, np.ndarray], run_dir: str | Path, top_k: int = 16):
    """The figures (co-occurrence, mistakes), per-label scores and the co-occurrence counts of
    the test split's true label sets, from a multi-label run's predictions.npz."""
    run_dir = Path(run_dir)
    classes = [str(c) for c in pred["classes"]]
    matrix = co_occurrence(pred["labels"])
    figures = {
        "cooccurrence": save_png(
            co_occurrence_figure(matrix, classes), run_dir / "cooccurrence.png"
        ),
        "mistakes": save_png(mistakes_figure(pred, classes, top_k), run_dir / "mistakes.png"),
    }
    figures_of = scores(pred["probs"].astype(np.float32), pred["labels"], pred["thresholds"])
    return {
        "figures": figures,
        "classes": classes,
        "per_label": figures_of["per_label"],
        "cooccurrence": matrix.tolist(),
        "scores": {k: figures_of[k] for k in ("micro_f1", "macro_f1", "map", "subset_acc")},
    }


def co_occurrence_figure(matrix: np.ndarray, classes: list[str]):
    """How many test images hold both labels (the diagonal: each label's count)."""
    plt = pyplot()
    k = len(classes)
    size = max(4.5, 0.45 * k + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    shown = np.log1p(matrix)
    ax.imshow(shown, cmap="Purples")
    ax.set_title("label co-occurrence (test images with both)")
    ax.set_xticks(range(k), classes, rotation=45 if max(map(len, classes)) > 2 else 0, ha="right")
    ax.set_yticks(range(k), classes)
    middle = shown.max() / 2 if shown.max() > 0 else 1
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7 if k > 10 else 8,
                    color="white" if shown[i, j] > middle else "black")  # fmt: skip
    fig.tight_layout()
    return fig


def mistakes_figure(pred: dict[str, Any], classes: list[str], k: int = 16):
    """The k images whose label set is wrong with the highest loss: true and predicted sets."""
    plt = pyplot()
    index = pred["mistakes"][:k]
    images = pred.get("mistake_images")
    cols = min(8, max(len(index), 1))
    rows = max(1, -(-len(index) // cols))
    fig, axes = plt.subplots(
        rows, cols, figsize=(1.8 * cols, 2.2 * rows), squeeze=False, layout="constrained"
    )
    for ax in axes.flat:
        ax.axis("off")

    def named(hot) -> str:
        return " ".join(c for c, on in zip(classes, hot, strict=True) if on) or "(none)"

    for slot, i in enumerate(index):
        ax = axes.flat[slot]
        if images is not None:
            image = images[slot]
            if image.shape[0] == 1:
                ax.imshow(image[0], cmap="gray_r", vmin=0, vmax=255)
            else:
                ax.imshow(np.transpose(image, (1, 2, 0)))
        ax.set_title(
            f"true {named(pred['labels'][i])}\npred {named(pred['pred'][i])}"
            f"\nloss {pred['loss'][i]:.2f}",
            fontsize=7,
        )
    if not len(index):
        axes.flat[0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    return fig
