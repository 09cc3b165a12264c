"""The report's figures: curves, confusion matrix, most confident mistakes (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trainlab.report.live import pyplot

SPLIT_STYLE = {"train": ("tab:blue", "-"), "val": ("tab:orange", "--"), "test": ("tab:green", "-.")}


def curves_figure(rows: list[dict[str, Any]], title: str = ""):
    """Loss and accuracy per epoch for train / val / test: one point per epoch and split."""
    plt = pyplot()
    has_acc = any("train_acc" in r for r in rows)
    fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(10 if has_acc else 5, 3.6))
    axes = list(np.atleast_1d(axes))
    epochs = [r["epoch"] for r in rows]
    for metric, ax in zip(("loss", "acc"), axes, strict=False):
        for split, (color, style) in SPLIT_STYLE.items():
            key = f"{split}_{metric}"
            if any(key in r for r in rows):
                points = [(r["epoch"], r[key]) for r in rows if key in r]
                ax.plot(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    style,
                    color=color,
                    marker="o",
                    label=f"{split} {metric}",
                )
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy" if metric == "acc" else "loss")
        ax.set_xticks(epochs if len(epochs) <= 20 else ax.get_xticks())
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_figure(confusion: np.ndarray, classes: list[str]):
    """Counts (left) and row-normalised rates (right), every cell annotated."""
    plt = pyplot()
    confusion = np.asarray(confusion)
    k = len(classes)
    size = max(4.5, 0.45 * k + 2)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size))
    rows = confusion.sum(1, keepdims=True)
    normalised = np.divide(
        confusion, rows, out=np.zeros_like(confusion, dtype=float), where=rows > 0
    )
    panels = (
        (axes[0], confusion, "counts", "d"),
        (axes[1], normalised, "row-normalised (recall)", ".2f"),
    )
    for ax, values, title, fmt in panels:
        shown = np.log1p(values) if fmt == "d" else values
        ax.imshow(shown, cmap="Blues")
        ax.set_title(title)
        ax.set_xticks(
            range(k), classes, rotation=45 if max(map(len, classes)) > 2 else 0, ha="right"
        )
        ax.set_yticks(range(k), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        threshold = shown.max() / 2 if shown.max() > 0 else 1
        for i in range(k):
            for j in range(k):
                text = format(values[i, j], fmt)
                if fmt != "d" and values[i, j] == 0:
                    text = "0"
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=7 if k > 10 else 8,
                    color="white" if shown[i, j] > threshold else "black",
                )
    fig.tight_layout()
    return fig


def mistakes_figure(predictions: dict[str, np.ndarray], k: int = 16):
    """The k most confident mistakes: image, true and predicted class, probability, loss."""
    plt = pyplot()
    classes = [str(c) for c in predictions["classes"]]
    index = predictions["mistakes"][:k]
    images = predictions.get("mistake_images")
    n = len(index)
    cols = min(8, max(n, 1))
    rows = max(1, -(-n // cols))
    # constrained layout sizes each row's space for its three-line titles, so a title never
    # runs into the images of the row above (tight_layout let them overlap)
    fig, axes = plt.subplots(
        rows, cols, figsize=(1.6 * cols, 2.1 * rows), squeeze=False, layout="constrained"
    )
    for ax in axes.flat:
        ax.axis("off")
    for slot, i in enumerate(index):
        ax = axes.flat[slot]
        if images is not None:
            image = images[slot]
            if image.shape[0] == 1:
                ax.imshow(image[0], cmap="gray_r", vmin=0, vmax=255)
            else:
                ax.imshow(np.transpose(image, (1, 2, 0)))
        true, pred = int(predictions["labels"][i]), int(predictions["pred"][i])
        ax.set_title(
            f"true {classes[true]}\npred {classes[pred]} {predictions['confidence'][i]:.2f}"
            f"\nloss {predictions['loss'][i]:.2f}",
            fontsize=7,
        )
    if n == 0:
        axes.flat[0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    return fig


def save_png(fig, path: str | Path) -> Path:
    from trainlab.fsutil import atomic_write

    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    pyplot().close(fig)
    return path


def most_confused(confusion: np.ndarray, classes: list[str], top: int = 10) -> list[dict[str, Any]]:
    """Off-diagonal (true, predicted) pairs by count, largest first (fastai's most_confused)."""
    confusion = np.asarray(confusion)
    pairs = [
        (int(confusion[i, j]), i, j)
        for i in range(len(classes))
        for j in range(len(classes))
        if i != j and confusion[i, j] > 0
    ]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    return [{"true": classes[i], "predicted": classes[j], "count": c} for c, i, j in pairs[:top]]
