"""Calibration: one temperature, fitted on the validation split, that makes the probabilities
trainlab shows mean what they say (Guo et al. 2017, "On calibration of modern neural networks").

A trained classifier's softmax scores are over-confident: of the answers given at 99%, fewer
than 99% are right. Dividing the logits by a temperature T > 1 softens them without changing any
answer (the largest logit stays the largest). T is fitted on the validation split's logits by
minimising the negative log-likelihood (LBFGS, one parameter, on log T so T stays positive),
never on the test split, which then measures it: the expected calibration error (ECE, 15 equal
bins of the top probability, |accuracy - confidence| weighted by the bin's share) before and
after. The run records T in best.pt (``calibration``) and config.toml; predict, serve, the
report and the exported graph divide the logits by it.

Example:
    >>> fit_temperature(val_logits, val_labels)
    1.41
    $ trainlab calibrate runs/photos          # for a run trained before, or without it
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

BINS = 15


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature minimising the NLL of ``logits / T`` on ``labels``."""
    logits, labels = logits.detach().float(), labels.detach().long()
    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return float(log_t.detach().exp())


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """Top-label ECE over equal-width confidence bins (bins are right-closed, as torchmetrics')."""
    confidence = probs.max(1)
    correct = probs.argmax(1) == labels
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> dict[str, list]:
    """The reliability diagram's numbers, the ECE's bins: per bin of the top probability, how
    many answers fell in it, their accuracy and their mean confidence (0 for an empty bin)."""
    return binned(probs.max(1), probs.argmax(1) == labels, bins)


def binned(confidence: np.ndarray, correct: np.ndarray, bins: int = BINS) -> dict[str, list]:
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    hits = np.bincount(which, weights=correct.astype(np.float64), minlength=bins)
    sure = np.bincount(which, weights=confidence.astype(np.float64), minlength=bins)
    seen = np.maximum(count, 1)
    return {
        "count": count.astype(int).tolist(),
        "accuracy": np.round(hits / seen, 6).tolist(),
        "confidence": np.round(sure / seen, 6).tolist(),
    }


@torch.no_grad()
def split_logits(scorer, batches, amp_dtype, output: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (log-probabilities count as logits) and labels of a whole split."""
    from trainlab.engine.loop import autocast

    scorer.eval()
    outs, labels = [], []
    for x, y in batches:
        with autocast(x.device, amp_dtype):
            out = scorer(x).float()
        outs.append(out.log_softmax(1) if output == "log_probs" else out)
        labels.append(y)
    return torch.cat(outs).cpu(), torch.cat(labels).cpu()


def calibration_record(val: tuple, test: tuple | None) -> dict[str, Any]:
    """T from the validation split, and the ECE before and after on the test split (or, for a
    run without one to spare, on the validation split, said so)."""
    temperature = fit_temperature(*val)
    logits, labels = test if test is not None else val
    before = logits.softmax(1).numpy()
    after = (logits / temperature).softmax(1).numpy()
    return {
        "temperature": round(temperature, 6),
        "fitted_on": "val",
        "ece_split": "test" if test is not None else "val",
        "ece_before": round(expected_calibration_error(before, labels.numpy()), 6),
        "ece_after": round(expected_calibration_error(after, labels.numpy()), 6),
        "bins": BINS,
        "reliability_before": reliability(before, labels.numpy()),
        "reliability_after": reliability(after, labels.numpy()),
    }


def fit_label_temperatures(logits: torch.Tensor, labels: torch.Tensor) -> list[float | None]:
    """A multi-label model's temperatures, one per label, each minimising the binary NLL of
    its sigmoid logits / T; None for a label the validation split shows only one side of
    (always or never present), whose temperature cannot be fitted."""
    logits, labels = logits.detach().float(), labels.detach().float()
    both = (labels.amax(0) > 0) & (labels.amin(0) < 1)
    log_t = torch.zeros(logits.shape[1], requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure():  # the labels' losses are separate sums, so one joint fit fits each alone
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(
            logits[:, both] / log_t[both].exp(), labels[:, both], reduction="none"
        )
        loss = loss.mean(0).sum()
        loss.backward()
        return loss

    if both.any():
        with torch.enable_grad():
            optimizer.step(closure)
    temperatures = log_t.detach().exp().tolist()
    return [round(t, 6) if ok else None for t, ok in zip(temperatures, both.tolist(), strict=True)]


def label_calibration_record(val: tuple, test: tuple | None, classes: list[str]) -> dict:
    """A multi-label run's record: a temperature per label (1.0, and named in
    ``uncalibrated_labels``, where the validation split cannot fit one), and the ECE of every
    yes/no decision (confidence max(p, 1 - p)) on the test split before and after."""
    fitted = fit_label_temperatures(*val)
    temperatures = torch.tensor([t if t is not None else 1.0 for t in fitted])
    logits, labels = test if test is not None else val
    truth = labels.numpy().astype(bool).ravel()
    record: dict[str, Any] = {
        "temperatures": temperatures.tolist(),
        "uncalibrated_labels": [c for c, t in zip(classes, fitted, strict=True) if t is None],
        "fitted_on": "val",
        "ece_split": "test" if test is not None else "val",
        "bins": BINS,
    }
    for when, scaled in (("before", logits), ("after", logits / temperatures)):
        p = scaled.sigmoid().numpy().ravel()
        bins = binned(np.maximum(p, 1 - p), (p >= 0.5) == truth)
        record[f"ece_{when}"] = round(_ece_of(bins), 6)
        record[f"reliability_{when}"] = bins
    return record


def _ece_of(bins: dict[str, list]) -> float:
    count = np.asarray(bins["count"], dtype=np.float64)
    gap = np.abs(np.asarray(bins["accuracy"]) - np.asarray(bins["confidence"]))
    return float((count * gap).sum() / max(count.sum(), 1))


KEEP = 0.95  # the share of known images "none of these" keeps on the validation split


def energy(logits: torch.Tensor) -> torch.Tensor:
    """The energy score, -logsumexp of the logits: low for inputs like the training data,
    high for others (Liu et al. 2020). Chosen over the top softmax probability because it
    uses every logit, not their ratios only, which separates unknown inputs better in that
    paper's measurements, and over the max logit for being as cheap and more stable."""
    return -torch.logsumexp(logits.float(), dim=1)


def rejection_record(scores: torch.Tensor, keep: float = KEEP) -> dict[str, Any]:
    """The energy threshold that keeps ``keep`` of the validation split's images (``scores``:
    their energies as predict computes them, through the kind's reader of people's inputs)."""
    threshold = float(torch.quantile(scores.float(), keep))
    counts, edges = np.histogram(scores.float().numpy(), bins=40)
    return {
        "reject_score": "energy",
        "reject_threshold": round(threshold, 6),
        "reject_keep": keep,
        "reject_kept_on_val": round(float((scores <= threshold).float().mean()), 6),
        # the validation split's scores, for the report's histogram beside the threshold
        "reject_histogram": {
            "counts": counts.astype(int).tolist(),
            "edges": np.round(edges, 6).tolist(),
        },
    }


def calibrated_thresholds(thresholds: list[float], temperatures: list[float]) -> list[float]:
    """A multi-label run's thresholds on its calibrated probabilities: sigmoid(z / T) >= t'
    exactly when sigmoid(z) >= t, for t' = sigmoid(logit(t) / T)."""
    t = torch.tensor(thresholds, dtype=torch.float64).clamp(1e-6, 1 - 1e-6)
    moved = (torch.logit(t) / torch.tensor(temperatures, dtype=torch.float64)).sigmoid()
    return [float(x) for x in moved]


def temperature_of(checkpoint: dict[str, Any]) -> float:
    """The temperature a checkpoint records (1: none, the probabilities as they are)."""
    return float((checkpoint.get("calibration") or {}).get("temperature", 1.0))


def fit_rejection(checkpoint_path: str, val_x: torch.Tensor, model=None) -> dict[str, Any]:
    """The "none of these" threshold of a checkpoint, from its validation images read as
    predict reads people's (the kind's reader: for digits, re-centred as MNIST) and scored as
    predict scores them. ``model``: an instance of the run's model, when trainlab cannot
    rebuild it from the checkpoint. Empty for a model whose outputs are log-probabilities."""
    from trainlab.data.batches import InputTransform
    from trainlab.data.kinds import get_kind
    from trainlab.engine.checkpoint import recorded_amp
    from trainlab.engine.device import autocast_dtype
    from trainlab.engine.loading import load_model
    from trainlab.engine.loop import autocast
    from trainlab.models.tta import scoring_model

    net, ckpt = load_model(checkpoint_path, model=model)
    output = ckpt["model"].get("output", "logits")
    if output == "log_probs" or val_x is None:  # energies of log-probabilities are all 0
        return {}
    data = ckpt["data"]
    reader = get_kind(data.get("kind", "images")).reader(data, 1 << 40)
    transform = InputTransform.from_dict(data["transform"])
    scorer = scoring_model(net, (ckpt.get("config") or {}).get("tta", "none"), output).eval()
    device = torch.device("cpu")
    amp = autocast_dtype(recorded_amp(ckpt), device)
    scores = []
    with torch.inference_mode():
        for start in range(0, len(val_x), 512):
            images = []
            for x in val_x[start : start + 512]:
                pixels = x[0].numpy() if x.shape[0] == 1 else np.moveaxis(x.numpy(), 0, -1)
                images.append(reader(pixels, "validation image").image)
            batch = torch.from_numpy(np.stack(images))
            batch = transform(batch.unsqueeze(1) if batch.dim() == 3 else batch)
            with autocast(device, amp):
                scores.append(energy(scorer(batch).float()))
    return rejection_record(torch.cat(scores))


def record_calibration(checkpoint_path: str, record: dict[str, Any]) -> None:
    """Write ``record`` into the checkpoint (its ``calibration``) and the run's config.toml,
    each atomically."""
    import tomllib
    from pathlib import Path

    import tomli_w

    from trainlab.engine.checkpoint import load_checkpoint, save_checkpoint
    from trainlab.fsutil import atomic_write_text

    payload = load_checkpoint(checkpoint_path)
    payload.pop("path", None)
    save_checkpoint(checkpoint_path, {**payload, "calibration": record})
    config = Path(checkpoint_path).parent / "config.toml"
    if config.is_file():
        written = tomllib.loads(config.read_text())
        written["calibration"] = record
        atomic_write_text(config, tomli_w.dumps(written))


def calibrate_best(
    best_path, model, setup, output: str, best_is_last: bool, labels: list[str] | None = None
) -> dict[str, Any]:
    """At the end of a run with a validation split: fit T on it with best.pt's weights (the
    model keeps its own after), measure the ECE on the test split, record both. ``labels``:
    a multi-label run's classes, calibrated one temperature per label."""
    from trainlab.engine.checkpoint import load_checkpoint

    last = None
    if not best_is_last:
        last = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(load_checkpoint(best_path)["state_dict"])
    try:
        val = split_logits(setup.scorer, setup.splits["val"], setup.amp_dtype, output)
        test = split_logits(setup.scorer, setup.splits["test"], setup.amp_dtype, output)
    finally:
        if last is not None:
            model.load_state_dict(last)
    if labels is not None:
        record = label_calibration_record(val, test, labels)
    else:
        record = calibration_record(val, test)
    record_calibration(str(best_path), record)
    return record


def line(record: dict[str, Any]) -> str:
    """One line for people: T and what it did to the ECE."""
    if "temperatures" in record:
        left = record["uncalibrated_labels"]
        return (
            f"calibrated on the validation split: one temperature per label "
            f"(expected calibration error on {record['ece_split']}: "
            f"{100 * record['ece_before']:.2f}% -> {100 * record['ece_after']:.2f}%)"
            + (f"; left at 1.0 (one side only in validation): {', '.join(left)}" if left else "")
        )
    return (
        f"calibrated on the validation split: temperature {record['temperature']:.3f} "
        f"(expected calibration error on {record['ece_split']}: "
        f"{100 * record['ece_before']:.2f}% -> {100 * record['ece_after']:.2f}%)"
    )
