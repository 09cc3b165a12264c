"""The two plain functions everything else composes: ``train_one_epoch`` and ``evaluate``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.data.batches import Batches
from trainlab.engine.device import module_device
from trainlab.engine.metrics import Counts, EpochMetrics, MultiLabelCounts

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # returns the SUM over the batch


def loss_function(
    kind: str,
    label_smoothing: float = 0.0,
    weight: torch.Tensor | None = None,
    focal_gamma: float = 2.0,
) -> LossFn:
    """A loss returning the sum over the batch (the mean is taken for the gradient step).

    ``weight`` (cross-entropy, NLL and focal) scales each sample's loss by its class's weight;
    ``focal_gamma`` is the focal loss's exponent (``engine.imbalance.focal_loss``). For ``bce``
    (multi-label: one sigmoid per class, multi-hot targets) ``weight`` is the positive weight
    of each label (``pos_weight``: a rare label's positives count more)."""
    if kind == "bce":
        if label_smoothing:
            from trainlab.errors import ConfigError

            raise ConfigError("--label-smoothing applies to single-label classification.")
        # each sample's loss is the mean over its labels (torch's own default), so the
        # learning rates tuned for cross-entropy fit: a sum over labels steps K times larger
        return lambda out, y: (
            F.binary_cross_entropy_with_logits(
                out,
                y,
                reduction="sum",
                pos_weight=None if weight is None else weight.to(out.device),
            )
            / out.shape[1]
        )
    if weight is not None and kind not in ("cross-entropy", "nll", "focal"):
        from trainlab.errors import ConfigError

        raise ConfigError("--class-weights applies to classification losses, not to MSE.")
    if kind == "focal":
        if label_smoothing:
            from trainlab.errors import ConfigError

            raise ConfigError(
                "--label-smoothing with --loss focal: the focal loss already turns down the "
                "loss of confident predictions; drop --label-smoothing (or use cross-entropy)."
            )
        from trainlab.engine.imbalance import focal_loss

        return focal_loss(focal_gamma, weight)
    if weight is not None:
        return lambda out, y: F.cross_entropy(
            out, y, reduction="sum", label_smoothing=label_smoothing, weight=weight.to(out.device)
        )
    if kind == "cross-entropy":
        return lambda out, y: F.cross_entropy(
            out, y, reduction="sum", label_smoothing=label_smoothing
        )
    if kind == "nll":
        if label_smoothing:  # log_softmax is idempotent, so this is smoothed NLL of log-probs
            return lambda out, y: F.cross_entropy(
                out, y, reduction="sum", label_smoothing=label_smoothing
            )
        return lambda out, y: F.nll_loss(out, y, reduction="sum")
    if kind == "mse":
        if label_smoothing:
            from trainlab.errors import ConfigError

            raise ConfigError("--label-smoothing applies to classification, not to an MSE loss.")
        return lambda out, y: F.mse_loss(out, y, reduction="sum")
    from trainlab.errors import unknown_name

    raise unknown_name("loss", kind, ["cross-entropy", "nll", "mse", "focal", "bce"])


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


def _batches_of(batches, epoch: int = 0, start: int = 0):
    """(x, y) pairs from our ``Batches`` (seeded per epoch) or any iterable such as a DataLoader."""
    if isinstance(batches, Batches):
        return batches.epoch(epoch, start=start)
    return iter(batches)


def _device_of(batches, model: nn.Module) -> torch.device:
    return batches.device if isinstance(batches, Batches) else module_device(model)


Updater = Callable[
    [int], None
]  # d2l-style: applies the summed gradients for a batch of n, clears them


def train_one_epoch(
    model: nn.Module,
    batches,
    optimizer: torch.optim.Optimizer | Updater,
    loss_fn: LossFn,
    state: EpochState,
    lr_for_step: Callable[[int], float] | None = None,
    on_batch: Callable[[EpochState, torch.Tensor], None] | None = None,
    amp_dtype: torch.dtype | None = None,
    before_step: Callable[[], None] | None = None,
) -> bool:
    """Train from ``state.batch`` to the end of the epoch, updating ``state`` as it goes.

    Args:
        batches: a ``Batches`` (shuffled by (seed, epoch), resumable mid-epoch) or any iterable
            of (x, y), e.g. a DataLoader; other iterables are moved to the model's device.
        optimizer: a torch optimizer (steps on the batch-mean loss), or a d2l-style updater
            ``updater(batch_size)`` that applies the summed gradients and clears them.
        lr_for_step: maps the global step (epoch·len(batches) + batch) to a learning rate.
        on_batch: called after each step with the state and the batch's summed loss (a tensor
            on the device: reading it forces a sync, so callers do that only now and then).
        before_step: called between the backward pass and the optimizer step (gradient
            clipping).

    Returns:
        True if the epoch completed, False if ``state.stop_requested()`` stopped it early.
    """
    if isinstance(model, nn.Module):
        model.train()
    device = _device_of(batches, model)
    own = isinstance(batches, Batches)
    steps_per_epoch = len(batches) if hasattr(batches, "__len__") else 0
    is_optimizer = hasattr(optimizer, "param_groups")  # torch's, or engine.optim.SGD
    for x, y in _batches_of(batches, state.epoch, state.batch):
        if not own:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if lr_for_step is not None and is_optimizer:
            lr = lr_for_step(state.epoch * steps_per_epoch + state.batch)
            for group in optimizer.param_groups:  # a backbone's group may learn slower
                group["lr"] = lr * group.get("lr_mult", 1.0)
        with autocast(device, amp_dtype):
            outputs = model(x)
            loss_sum = loss_fn(outputs, y)
        if is_optimizer:
            optimizer.zero_grad(set_to_none=True)
            (loss_sum / len(y)).backward()
            if before_step is not None:
                before_step()
            optimizer.step()
        else:
            loss_sum.backward()
            optimizer(len(y))
        state.counts.add(loss_sum, outputs, y)
        state.batch += 1
        if on_batch is not None:
            on_batch(state, loss_sum.detach())
        if state.stop_requested() and state.batch < steps_per_epoch:
            return False
    return True


def evaluate(
    model: nn.Module,
    batches,
    loss_fn: LossFn | None,
    num_classes: int | None,
    amp_dtype: torch.dtype | None = None,
    *,
    multi_label: bool = False,
    thresholds=None,
) -> EpochMetrics:
    """Loss and confusion counts over a whole split, without gradients.

    ``batches`` is a ``Batches`` or any iterable of (x, y); ``loss_fn`` may be None (loss 0);
    ``num_classes`` None takes it from the outputs. ``multi_label``: multi-hot targets, scored
    at ``thresholds`` (one per label; None: 0.5).
    """
    counts = evaluate_counts(model, batches, loss_fn, num_classes, amp_dtype, multi_label)
    return counts.read(thresholds)


def evaluate_counts(
    model: nn.Module,
    batches,
    loss_fn: LossFn | None,
    num_classes: int | None,
    amp_dtype: torch.dtype | None = None,
    multi_label: bool = False,
) -> Counts:
    """``evaluate``'s counts, before they are read (so ranks can add theirs up first)."""
    if isinstance(model, nn.Module):
        model.eval()
    device = _device_of(batches, model)
    own = isinstance(batches, Batches)
    counts = (MultiLabelCounts if multi_label else Counts)(num_classes, device)
    zero = torch.zeros((), device=device)
    with torch.inference_mode(), autocast(device, amp_dtype):
        for x, y in batches:
            if not own:
                x, y = x.to(device), y.to(device)
            outputs = model(x)
            counts.add(zero if loss_fn is None else loss_fn(outputs.float(), y), outputs, y)
    return counts


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
