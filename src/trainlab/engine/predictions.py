"""Test-set predictions kept with a run (``predictions.npz``), so reports never re-run the model.

Arrays: ``labels``, ``pred``, ``loss`` (per image), ``probs`` (N×K, float16; for K > 20 only the
top 5 as ``topk_index``/``topk_prob``), ``mistakes`` (indices of the most confident mistakes,
highest loss first) with their raw images ``mistake_images`` (uint8), ``classes``, and
``checkpoint`` (which weights made them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainlab.engine.loop import autocast
from trainlab.fsutil import atomic_write

MAX_FULL_PROBS = 20
KEPT_MISTAKES = 64


def prediction_arrays(
    model: torch.nn.Module,
    batches,
    raw_images: torch.Tensor | None,
    classes: list[str],
    amp_dtype: torch.dtype | None = None,
) -> dict[str, Any]:
    model.eval()
    probs, labels, losses = [], [], []
    with torch.inference_mode(), autocast(batches.device, amp_dtype):
        for x, y in batches:
            outputs = model(x).float()
            # cross-entropy of log-probabilities equals their NLL (log_softmax is idempotent)
            losses.append(F.cross_entropy(outputs, y, reduction="none").cpu())
            probs.append(outputs.softmax(1).cpu())
            labels.append(y.cpu())
    prob = torch.cat(probs)
    label, loss = torch.cat(labels), torch.cat(losses)
    pred = prob.argmax(1)
    wrong = torch.nonzero(pred != label).flatten()
    mistakes = wrong[torch.argsort(loss[wrong], descending=True)][:KEPT_MISTAKES]
    arrays: dict[str, Any] = {
        "labels": label.numpy().astype(np.int64),
        "pred": pred.numpy().astype(np.int64),
        "loss": loss.numpy().astype(np.float32),
        "mistakes": mistakes.numpy().astype(np.int64),
        "classes": np.array(classes),
    }
    if raw_images is not None and raw_images.dtype == torch.uint8:
        arrays["mistake_images"] = raw_images[mistakes].numpy()
    if prob.shape[1] <= MAX_FULL_PROBS:
        arrays["probs"] = prob.numpy().astype(np.float16)
    else:
        top = prob.topk(5, dim=1)
        arrays["topk_index"] = top.indices.numpy().astype(np.int32)
        arrays["topk_prob"] = top.values.numpy().astype(np.float16)
    arrays["confidence"] = prob.max(1).values.numpy().astype(np.float32)
    return arrays


def multilabel_arrays(
    model: torch.nn.Module,
    batches,
    raw_images: torch.Tensor | None,
    classes: list[str],
    thresholds: list[float],
    amp_dtype: torch.dtype | None = None,
) -> dict[str, Any]:
    """A multi-label model's arrays: ``labels`` and ``pred`` multi-hot N×K (uint8, ``pred`` at
    ``thresholds``), ``probs`` (sigmoid, float16), ``loss`` (binary cross-entropy per image,
    the mean over labels), ``mistakes`` (images whose label set is wrong, highest loss first)
    with their ``mistake_images``, and the ``thresholds``."""
    model.eval()
    probs, labels, losses = [], [], []
    with torch.inference_mode(), autocast(batches.device, amp_dtype):
        for x, y in batches:
            outputs = model(x).float()
            bce = F.binary_cross_entropy_with_logits(outputs, y.float(), reduction="none")
            losses.append(bce.mean(1).cpu())
            probs.append(outputs.sigmoid().cpu())
            labels.append(y.cpu())
    prob, label, loss = torch.cat(probs), torch.cat(labels).bool(), torch.cat(losses)
    pred = prob >= torch.tensor(thresholds, dtype=prob.dtype)
    wrong = torch.nonzero((pred != label).any(1)).flatten()
    mistakes = wrong[torch.argsort(loss[wrong], descending=True)][:KEPT_MISTAKES]
    arrays: dict[str, Any] = {
        "labels": label.numpy().astype(np.uint8),
        "pred": pred.numpy().astype(np.uint8),
        "probs": prob.numpy().astype(np.float16),
        "loss": loss.numpy().astype(np.float32),
        "mistakes": mistakes.numpy().astype(np.int64),
        "classes": np.array(classes),
        "thresholds": np.asarray(thresholds, np.float32),
    }
    if raw_images is not None and raw_images.dtype == torch.uint8:
        arrays["mistake_images"] = raw_images[mistakes].numpy()
    return arrays


def write_predictions(
    path: str | Path,
    model: torch.nn.Module,
    batches,
    raw_images: torch.Tensor | None,
    classes: list[str],
    checkpoint: str,
    amp_dtype: torch.dtype | None = None,
    thresholds: list[float] | None = None,
) -> dict[str, Any]:
    """Predict on ``batches`` and write predictions.npz (atomically); return the arrays.

    The one writer of predictions.npz, for training and ``trainlab eval`` alike. With
    ``thresholds`` (a multi-label model's, one per label), the arrays are label sets
    (``multilabel_arrays``).
    """
    if thresholds is not None:
        arrays = multilabel_arrays(model, batches, raw_images, classes, thresholds, amp_dtype)
    else:
        arrays = prediction_arrays(model, batches, raw_images, classes, amp_dtype)
    save_predictions(path, arrays, checkpoint)
    return arrays


def save_predictions(path: str | Path, arrays: dict[str, Any], checkpoint: str) -> Path:
    payload = {**arrays, "checkpoint": np.array(checkpoint)}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **payload)

    return atomic_write(path, write)


def load_predictions(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def write_run_predictions(
    run_dir: Path,
    best_path: Path,
    model: torch.nn.Module,
    scorer: torch.nn.Module,
    batches,
    data,
    amp_dtype: torch.dtype | None,
    best_is_last: bool,
    last_row: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A finished run's predictions.npz, from best.pt's weights (the model keeps its own after:
    a resume continues from the last weights). ``last_row``: the last epoch's metrics, whose
    thresholds (a multi-label run's) are best.pt's when it is the last epoch."""
    from trainlab.engine.checkpoint import load_checkpoint

    last, thresholds = None, (last_row or {}).get("thresholds")
    if not best_is_last:
        last = {k: v.detach().clone() for k, v in model.state_dict().items()}
        best = load_checkpoint(best_path)
        model.load_state_dict(best["state_dict"])
        thresholds = (best.get("metrics") or {}).get("thresholds")  # multi-label runs' only
    try:
        return write_predictions(
            run_dir / "predictions.npz", scorer, batches, data.test_x, data.classes, "best.pt",
            amp_dtype, thresholds,
        )  # fmt: skip
    finally:
        if last is not None:
            model.load_state_dict(last)


def finish_classification(run, result) -> None:
    """A finished classifier run (``trainlab.build.Run``): predictions.npz from best.pt's
    weights for the report, one temperature fitted on the validation split where there is one
    (``engine.calibration``), and --sklearn-check's figure."""
    from trainlab.engine.calibration import calibrate_best, fit_rejection, line, record_calibration
    from trainlab.logs import say
    from trainlab.models import record_of

    setup = run.setup
    best_is_last = result.best.get("epoch") == result.final.get("epoch")
    arrays = write_run_predictions(
        result.run_dir,
        result.best_path,
        run.model,
        setup.scorer,
        setup.splits["test"],
        run.data,
        setup.amp_dtype,
        best_is_last=best_is_last,
        last_row=result.final,
    )
    task = run.data.kind_entry.task
    if "val" in setup.splits and not task.multi_label:  # one temperature, honest probabilities
        output = (record_of(run.model) or {}).get("output", "logits")
        record = calibrate_best(result.best_path, run.model, setup, output, best_is_last)
        if run.data.kind_entry.page is not None:  # people's inputs: "none of these"
            record |= fit_rejection(str(result.best_path), run.data.val_x, run.model)
            record_calibration(str(result.best_path), record)
        result.extra["calibration"] = record
        say(line(record))
    elif "val" in setup.splits:  # a temperature per label where validation shows both sides
        record = calibrate_best(
            result.best_path, run.model, setup, "logits", best_is_last, list(run.data.classes)
        )
        result.extra["calibration"] = record
        say(line(record))
    if run.config.sklearn_check:
        from sklearn.metrics import accuracy_score

        accuracy = accuracy_score(arrays["labels"], arrays["pred"])
        result.extra["sklearn_test_acc"] = float(accuracy)
