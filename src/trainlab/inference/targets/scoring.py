"""Score an export target on the run's test split beside the checkpoint: its metric (accuracy
for a classifier), its agreement with the checkpoint's answers, and its latency at batch 1 and
64 as the median over repeats; then the gate that keeps or refuses it."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from trainlab.inference.targets.registry import Runner

CHUNK = 256  # images per call when scoring the whole split
BATCHES = (1, 64)
REPEATS = 7  # latency: the median of this many timed rounds, after warm-up calls
CALLS = {1: 10, 64: 2}  # calls per round


def run_split(runner: Runner, x: np.ndarray) -> list[np.ndarray]:
    """Every output of ``runner`` over ``x``, in chunks."""
    parts = [runner(np.ascontiguousarray(x[i : i + CHUNK])) for i in range(0, len(x), CHUNK)]
    return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]


def decisions(predictor, outputs: np.ndarray) -> np.ndarray:
    """The answers trainlab gives from the graph's first output: a class, a label set (over
    the run's thresholds) or a value."""
    if predictor.multi_label:
        return outputs >= np.asarray(predictor.thresholds, np.float32)
    if predictor.regression:
        return outputs.reshape(len(outputs), -1)[:, 0]
    return outputs.argmax(1)


def metric(predictor, answers: np.ndarray, labels: np.ndarray) -> tuple[str, float | None]:
    """The kind's metric in points: accuracy, or each label's decision for a multi-label model
    (a regression has no points to lose; it is held to agreement alone)."""
    if predictor.regression:
        return "agreement only", None
    if predictor.multi_label:
        return "label accuracy", 100 * float((answers == labels.astype(bool)).mean())
    return "accuracy", 100 * float((answers == labels).mean())


def agreement(predictor, answers: np.ndarray, reference: np.ndarray) -> float:
    """The share (%) of inputs answered as the checkpoint answers them."""
    if predictor.multi_label:
        return 100 * float((answers == reference).all(1).mean())
    if predictor.regression:
        close = np.abs(answers - reference) <= 1e-3 * np.maximum(1, np.abs(reference))
        return 100 * float(close.mean())
    return 100 * float((answers == reference).mean())


def latency_ms(call: Callable[[np.ndarray], Any], x: np.ndarray) -> dict[str, float]:
    """Milliseconds per call at batch 1 and 64: the median of REPEATS rounds, after warm-up."""
    out = {}
    for batch in BATCHES:
        feed = np.ascontiguousarray(np.resize(x, (batch, *x.shape[1:])))
        for _ in range(3):
            call(feed)
        rounds = []
        for _ in range(REPEATS):
            began = time.perf_counter()
            for _ in range(CALLS[batch]):
                call(feed)
            rounds.append(1000 * (time.perf_counter() - began) / CALLS[batch])
        out[str(batch)] = round(statistics.median(rounds), 4)
    return out


def score(predictor, runner: Runner, x: np.ndarray, y: np.ndarray, reference: dict) -> dict:
    """The target's figures on the test split, against the checkpoint's (``reference``)."""
    outputs = run_split(runner, x)
    answers = decisions(predictor, outputs[0])
    name, value = metric(predictor, answers, y)
    record: dict[str, Any] = {
        "metric": name,
        "value": None if value is None else round(value, 4),
        "drop_points": None if value is None else round(reference["value"] - value, 4),
        "agreement": round(agreement(predictor, answers, reference["answers"]), 4),
        "max_abs_output_diff": float(np.abs(outputs[0] - reference["outputs"][0]).max()),
        "latency_ms": latency_ms(runner, x),
    }
    threshold = predictor.reject_threshold
    if len(outputs) > 1 and threshold is not None:  # "none of these" decided as predict does
        same = (outputs[1] > threshold) == (reference["outputs"][1] > threshold)
        record["reject_agreement"] = round(100 * float(same.mean()), 4)
    return record


def verdict(target, record: dict, max_drop: float) -> str | None:
    """Why the target is refused (None: it passes). A float target must also agree with the
    checkpoint on all but ``max_drop`` % of the inputs; a quantized one only keep its metric."""
    reasons = []
    drop = record.get("drop_points")
    if drop is not None and drop > max_drop:
        reasons.append(
            f"{record['metric']} {record['value']:.2f}% against the checkpoint's "
            f"{record['value'] + drop:.2f}%: {drop:.2f} points lost, more than --max-drop "
            f"{max_drop:g}"
        )
    if not target.quantized and record["agreement"] < 100 - max_drop:
        reasons.append(
            f"agrees with the checkpoint on {record['agreement']:.2f}% of the test inputs, "
            f"under {100 - max_drop:g}%"
        )
    return "; ".join(reasons) or None
