"""The two plain functions everything else composes: ``train_one_epoch`` and ``evaluate``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.data.batches import Batches
from trainlab.engine.metrics import Counts, EpochMetrics

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # returns the SUM over the batch


def loss_function(kind: str, label_smoothing: float = 0.0) -> LossFn:
    """A loss returning the sum over the batch (the mean is taken for the gradient step)."""
    if kind == "cross-entropy":
        return lambda out, y: F.cross_entropy(
            out, y, reduction="sum", label_smoothing=label_smoothing
        )
    if kind == "nll":
        return lambda out, y: F.nll_loss(out, y, reduction="sum")
    if kind == "mse":
        return lambda out, y: F.mse_loss(out, y, reduction="sum")
    raise ValueError(f"unknown loss {kind}")


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Mixed-precision context for the forward pass (a no-op when dtype is None)."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


@dataclass
class EpochState:
    """Where an epoch stands; what a mid-epoch checkpoint saves."""

    epoch: int
    batch: int  # index of the next batch to run
    counts: Counts
    stop_requested: Callable[[], bool] = field(default=lambda: False)


def train_one_epoch(
    model: nn.Module,
    batches: Batches,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    state: EpochState,
    lr_for_step: Callable[[int], float] | None = None,
    on_batch: Callable[[EpochState, torch.Tensor], None] | None = None,
    amp_dtype: torch.dtype | None = None,
) -> bool:
    """Train from ``state.batch`` to the end of the epoch, updating ``state`` as it goes.

    Args:
        lr_for_step: maps the global step (epoch·len(batches) + batch) to a learning rate.
        on_batch: called after each step with the state and the batch's summed loss (a tensor
            on the device: reading it forces a sync, so callers do that only now and then).

    Returns:
        True if the epoch completed, False if ``state.stop_requested()`` stopped it early.
    """
    model.train()
    steps_per_epoch = len(batches)
    for x, y in batches.epoch(state.epoch, start=state.batch):
        if lr_for_step is not None:
            lr = lr_for_step(state.epoch * steps_per_epoch + state.batch)
            for group in optimizer.param_groups:
                group["lr"] = lr
        with autocast(batches.device, amp_dtype):
            outputs = model(x)
            loss_sum = loss_fn(outputs, y)
        optimizer.zero_grad(set_to_none=True)
        (loss_sum / len(y)).backward()
        optimizer.step()
        state.counts.add(loss_sum, outputs, y)
        state.batch += 1
        if on_batch is not None:
            on_batch(state, loss_sum)
        if state.stop_requested() and state.batch < steps_per_epoch:
            return False
    return True


def evaluate(
    model: nn.Module,
    batches: Batches,
    loss_fn: LossFn,
    num_classes: int,
    amp_dtype: torch.dtype | None = None,
) -> EpochMetrics:
    """Loss and confusion counts over a whole split, without gradients."""
    model.eval()
    counts = Counts(num_classes, batches.device)
    with torch.inference_mode(), autocast(batches.device, amp_dtype):
        for x, y in batches:
            outputs = model(x)
            counts.add(loss_fn(outputs.float(), y), outputs, y)
    return counts.read()


def predict(
    model: nn.Module, batches: Batches, amp_dtype: torch.dtype | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Model outputs and targets for a whole split, on the CPU."""
    model.eval()
    outputs, targets = [], []
    with torch.inference_mode(), autocast(batches.device, amp_dtype):
        for x, y in batches:
            outputs.append(model(x).float().cpu())
            targets.append(y.cpu())
    return torch.cat(outputs), torch.cat(targets)
