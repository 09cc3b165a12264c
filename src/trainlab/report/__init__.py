"""Reports made from a run directory: figures, an HTML page, and comparisons of runs.

Example:
    >>> from trainlab.report import make_report
    >>> paths = make_report("runs/20261122-134116-cnn")
    >>> paths["html"]
    PosixPath('runs/20261122-134116-cnn/report.html')
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from trainlab.errors import TrainlabError


def read_run(run_dir: str | Path) -> tuple[Path, dict[str, Any], list[dict[str, Any]]]:
    from trainlab.runs import read_metrics

    run_dir = Path(run_dir)
    config_path = run_dir / "config.toml"
    if not config_path.is_file():
        raise TrainlabError(
            f"{run_dir}: not a run directory (no config.toml). Give a directory "
            "made by `trainlab train`, e.g. runs/<id>."
        )
    return run_dir, tomllib.loads(config_path.read_text()), read_metrics(run_dir)


def make_report(run_dir: str | Path, top_k: int = 16) -> dict[str, Path]:
    """Write curves.png, confusion.png, mistakes.png, reliability.png and energy.png (a run
    calibrated on a validation split) and report.html into the run directory."""
    from trainlab.engine.predictions import load_predictions
    from trainlab.fsutil import atomic_write_text
    from trainlab.report import figures
    from trainlab.report.html import render
    from trainlab.report.trust import trust_parts

    run_dir, config, rows = read_run(run_dir)
    if not rows:
        raise TrainlabError(f"{run_dir}: no finished epoch in metrics.jsonl, nothing to report.")
    paths = {
        "curves": figures.save_png(
            figures.curves_figure(rows, run_dir.name), run_dir / "curves.png"
        )
    }
    predictions_path = run_dir / "predictions.npz"
    parts: dict[str, Any] = {"classes": [], "per_label": {}, "checkpoint": ""}
    if predictions_path.exists():
        pred = load_predictions(predictions_path)
        if pred["labels"].ndim == 2:  # a set of labels per image
            from trainlab.report.multilabel import multilabel_parts

            parts = multilabel_parts(pred, run_dir, top_k)
        else:
            parts = _single_label_parts(pred, run_dir, top_k)
        parts["checkpoint"] = str(pred["checkpoint"])
        paths.update(parts["figures"])
    trust = trust_parts(config.get("calibration"), run_dir)
    paths.update(trust["figures"])
    page = render(
        run_dir,
        config=config,
        rows=rows,
        figures=paths,
        per_class=parts["per_label"],
        classes=parts["classes"],
        confused=parts.get("confused", []),
        confusion=parts.get("confusion", []),
        accuracy=parts.get("accuracy"),
        checkpoint=parts["checkpoint"],
        cooccurrence=parts.get("cooccurrence"),
        gallery=parts.get("gallery") or {"items": [], "note": ""},
        trust=trust,
    )
    paths["html"] = atomic_write_text(run_dir / "report.html", page)
    return paths


def _single_label_parts(pred: dict[str, np.ndarray], run_dir: Path, top_k: int) -> dict:
    """A classifier's confusion matrix, per-class scores, mistakes and their heat maps."""
    from trainlab.engine.metrics import confusion_matrix, per_class
    from trainlab.report import figures
    from trainlab.report.explain import mistakes_gallery

    classes = [str(c) for c in pred["classes"]]
    matrix = confusion_matrix(pred["labels"], pred["pred"], len(classes)).numpy()
    return {
        "classes": classes,
        "confusion": matrix.tolist(),
        "per_label": per_class(matrix),
        "accuracy": float(np.trace(matrix) / max(matrix.sum(), 1)),
        "confused": figures.most_confused(matrix, classes),
        "figures": {
            "confusion": figures.save_png(
                figures.confusion_figure(matrix, classes), run_dir / "confusion.png"
            ),
            "mistakes": figures.save_png(
                figures.mistakes_figure(pred, top_k), run_dir / "mistakes.png"
            ),
        },
        "gallery": mistakes_gallery(run_dir, pred, top_k),
    }


def compare_runs(
    run_dirs: list[str | Path], output: str | Path | None = None
) -> tuple[list[str], list[list[Any]], Path]:
    """Settings that differ between runs and their final metrics, plus overlaid curves.

    ``output`` defaults to compare.png in the folder that holds the runs (their common parent).

    Returns:
        (header, rows, png path).
    """
    from trainlab.report import figures
    from trainlab.report.live import pyplot

    if len(run_dirs) < 2:
        raise TrainlabError("compare needs at least two run directories.")
    runs = [read_run(d) for d in run_dirs]
    if output is None:
        import os

        parents = [str(run_dir.resolve().parent) for run_dir, _, _ in runs]
        output = Path(os.path.commonpath(parents)) / "compare.png"
    configs = [c.get("config", {}) for _, c, _ in runs]
    keys = sorted({k for c in configs for k in c} - {"run_name", "runs_dir"})
    differing = [k for k in keys if len({repr(c.get(k)) for c in configs}) > 1]
    metrics = [
        m
        for m in ("test_acc", "test_loss", "val_acc", "train_loss")
        if any(rows and m in rows[-1] for _, _, rows in runs)
    ]
    header = ["run", *differing, "epochs done", *metrics]
    table = []
    for (run_dir, _, rows), cfg in zip(runs, configs, strict=True):
        final = rows[-1] if rows else {}
        cells = [run_dir.name, *[cfg.get(k, "") for k in differing], final.get("epoch", 0)]
        cells += [f"{final[m]:.4f}" if m in final else "" for m in metrics]
        table.append(cells)
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for run_dir, _, rows in runs:
        epochs = [r["epoch"] for r in rows]
        axes[0].plot(epochs, [r["train_loss"] for r in rows], marker="o", label=run_dir.name)
        key = "test_acc" if rows and "test_acc" in rows[0] else "test_loss"
        axes[1].plot(epochs, [r.get(key) for r in rows], marker="o", label=run_dir.name)
        axes[1].set_ylabel(key.replace("_", " "))
    axes[0].set_ylabel("train loss")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return header, table, figures.save_png(fig, output)
