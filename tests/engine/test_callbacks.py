"""Callbacks observe and steer through the trainer: early stopping's rule and its state, and
gradient clipping's effect on the gradients a step takes."""

from __future__ import annotations

import torch
from torch import nn

from trainlab.engine.callbacks import EarlyStopping, GradientClipping


class _Trainer:
    def __init__(self):
        self.reason = None

    def request_stop(self, reason: str) -> None:
        self.reason = reason


def _feed(callback, values, monitor="val_acc"):
    trainer = _Trainer()
    for epoch, value in enumerate(values, 1):
        callback.on_epoch_end(trainer, {"epoch": epoch, monitor: value})
        if trainer.reason:
            return epoch, trainer.reason
    return None, None


def test_early_stopping_waits_patience_epochs_without_a_gain_bigger_than_min_delta():
    epoch, reason = _feed(EarlyStopping("val_acc", "max", 2, 0.01), [0.5, 0.6, 0.605, 0.609])
    assert epoch == 4 and "val_acc" in reason and "2 epoch(s)" in reason
    assert _feed(EarlyStopping("val_acc", "max", 2, 0.01), [0.5, 0.6, 0.62, 0.64]) == (None, None)
    epoch, _ = _feed(EarlyStopping("val_loss", "min", 1), [1.0, 0.9, 0.95], "val_loss")
    assert epoch == 3


def test_early_stopping_state_round_trips():
    first = EarlyStopping("val_acc", "max", 3)
    _feed(first, [0.5, 0.4])
    second = EarlyStopping("val_acc", "max", 3)
    second.load_state_dict(first.state_dict())
    assert second.state_dict() == first.state_dict() == {"best": 0.5, "best_epoch": 1, "wait": 1}


def test_gradient_clipping_bounds_the_global_norm_before_the_step():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    (model(torch.randn(8, 4) * 100).sum() * 100).backward()
    before = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
    GradientClipping(1.0).on_before_step(None, model)
    after = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
    assert before > 10 and abs(float(after) - 1.0) < 1e-4
