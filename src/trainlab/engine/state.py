"""A run's state between its steps: what an epoch's metrics row holds, what a checkpoint holds,
and how a resume puts it all back.

These are the trainer's bookkeeping as plain functions: ``epoch_row`` scores the splits after an
epoch, ``checkpoint_payload`` gathers everything a resume needs, ``restore_state`` loads it into
the model, optimizer, random generators, best-so-far record and callbacks.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import torch
from torch import nn

from trainlab.engine.checkpoint import BestCheckpoint
from trainlab.engine.loop import evaluate_counts
from trainlab.engine.metrics import Counts
from trainlab.engine.multilabel import default_thresholds, split_thresholds
from trainlab.engine.setup import RunSetup
from trainlab.errors import TrainingDiverged


def epoch_row(
    epoch: int, counts: Counts, seen_before: int, began: float, model: nn.Module, data, setup
) -> dict[str, Any]:
    """One metrics.jsonl row: train counts, then each evaluated split, then timings."""
    dist = setup.dist
    multi_label = data.kind_entry.task.multi_label
    fixed = default_thresholds(data.num_classes, setup.threshold) if multi_label else None
    train_metrics = dist.sum_counts(counts).read(fixed)  # multi-label: 0.5, or --threshold
    check_finite(train_metrics.loss, epoch, setup)
    train_seconds = time.perf_counter() - began
    row: dict[str, Any] = {"epoch": epoch + 1, **train_metrics.as_row("train")}
    dist.broadcast_buffers(model)  # every rank scores rank 0's model, the checkpointed one
    thresholds = None
    for name, batches in setup.shards.items():
        split = evaluate_counts(
            setup.scorer, batches, setup.loss_fn, data.num_classes, setup.amp_dtype, multi_label
        )
        total = dist.sum_counts(split)  # exact: unpadded shards, summed counts
        if multi_label and thresholds is None:  # tuned on val, used on test; or fixed
            thresholds = split_thresholds(total, setup.threshold) if name == "val" else fixed
        row.update(total.read(thresholds).as_row(name))
        row[f"{name}_n"] = total.n
    if multi_label:  # the labels' thresholds: best.pt's go with it to predict, export, serve
        row["thresholds"] = thresholds
    row.update(regression_errors(model, data))
    row["lr"] = setup.optimizer.param_groups[0]["lr"]
    row["train_seconds"] = round(train_seconds, 3)
    row["seconds"] = round(time.perf_counter() - began, 3)
    # this process's samples only: a resumed epoch's earlier part ran in another one
    rate = round((train_metrics.n - seen_before) / max(train_seconds, 1e-9), 1)
    row[data.kind_entry.rate] = rate
    row["time"] = round(time.time(), 3)  # wall clock, to time runs from outside
    return row


def checkpoint_payload(
    description: dict[str, Any],
    model: nn.Module,
    setup: RunSetup,
    best: BestCheckpoint,
    callbacks: list,
    history: list[dict[str, Any]],
    position: tuple[int, int],
    counts: Counts | None,
) -> dict[str, Any]:
    """Everything a checkpoint holds: the run's description, weights, optimizer, random state,
    position, best-so-far, the callbacks' state and the metrics rows so far."""
    epoch, batch = position
    rng = {"torch": torch.get_rng_state()}
    if setup.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state_all()
    if setup.dist.world > 1:
        rng = {**rng, "ranks": setup.dist.gather(rng)}
    states = {c.state_key: c.state_dict() for c in callbacks if getattr(c, "state_key", None)}
    return {
        **description,
        "state_dict": model.state_dict(),
        "optimizer": setup.optimizer.state_dict(),
        "epoch": epoch,
        "batch": batch,
        "rng": rng,
        "best": best.state_dict(),
        "callbacks": states,
        "stopped": history[-1].get("stop") if history and batch == 0 else None,
        "partial": counts.state() if counts is not None and batch else None,
        "metrics": history[-1] if history else {},
        "history": list(history),
    }


def restore_state(
    checkpoint: dict[str, Any], setup: RunSetup, best: BestCheckpoint, callbacks: list
) -> dict | None:
    """Optimizer, this rank's random state, best-so-far and the callbacks' state from a
    checkpoint (its weights are the model's already: ``trainlab.build`` loads them). Returns
    the interrupted epoch's counts so far (rank 0's to keep), or None."""
    dist = setup.dist
    setup.optimizer.load_state_dict(checkpoint["optimizer"])
    rng = checkpoint["rng"]
    ranks = rng.get("ranks") or [rng]
    if len(ranks) == dist.world:  # each rank its own draws; else they restart (noted)
        torch.set_rng_state(ranks[dist.rank]["torch"])
        if setup.device.type == "cuda" and ranks[dist.rank].get("cuda"):
            torch.cuda.set_rng_state_all(ranks[dist.rank]["cuda"])
    elif dist.main:
        logging.getLogger(__name__).warning(
            f"resume: {len(ranks)} process(es) -> {dist.world}: the same global batches,"
            " re-sharded; random draws (dropout, augmentation) restart from the seed"
        )
    best.load_state_dict(checkpoint["best"])
    states = checkpoint.get("callbacks") or {}
    for callback in callbacks:
        if getattr(callback, "state_key", None) in states:
            callback.load_state_dict(states[callback.state_key])
    # the saved counts are the sum of all ranks: rank 0 carries them on
    return checkpoint.get("partial") if dist.main else None


def check_finite(loss: float, epoch: int, setup: RunSetup) -> None:
    if math.isfinite(loss):
        return
    raise TrainingDiverged(
        f"training diverged in epoch {epoch + 1}: the training loss is {loss}. "
        + (
            f"The last good checkpoint (last.pt, after epoch {epoch}) is kept. "
            if epoch
            else "No epoch finished, so there is no checkpoint. "
        )
        + "Lower --lr (or use a schedule with warm-up), or check the data for bad values."
        + ("" if setup.amp_dtype is None else " Mixed precision is on: try --amp off.")
    )


def regression_errors(model: nn.Module, data) -> dict[str, Any]:
    """For synthetic linear data: how far the learned w and b are from the true ones."""
    true_w = data.info.get("true_w")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if true_w is None or len(linears) != 1 or linears[0].in_features != len(true_w):
        return {}
    layer = linears[0]
    w_error = (torch.tensor(true_w) - layer.weight.detach().cpu().reshape(-1)).tolist()
    b_error = float(data.info["true_b"] - layer.bias.detach().cpu().reshape(-1)[0])
    return {"w_error": w_error, "b_error": b_error}
