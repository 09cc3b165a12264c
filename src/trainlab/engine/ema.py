"""``--ema DECAY``: an exponential moving average of the weights, which scores and ships.

Built on torch's ``AveragedModel`` (``torch.optim.swa_utils``): after every optimizer step the
average moves towards the weights by ``1 - d``, where ``d = min(DECAY, (1 + n) / (10 + n))``
after ``n`` updates, so the first steps' random weights are forgotten quickly (the warm-up
timm and others use). Batch-norm statistics are averaged with the weights (``use_buffers``,
the library's recommendation for EMA), so the averaged model needs no extra pass over the data.

Validation, the choice of best.pt, best.pt itself and so eval, predict, export and serve use the
averaged weights; training goes on from the raw ones. Every checkpoint holds both (the average
as this callback's state), so a resume continues both exactly. A resume may change the decay
(from then on), add ``--ema`` (averaging starts there) or drop it (best.pt then holds the raw
weights), like any other training setting.

Example:
    >>> ema = WeightAverage(model, decay=0.999)
    >>> with ema.swapped():        # the model holds the averaged weights here
    ...     evaluate(model, ...)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from trainlab.engine.callbacks import Callback

WARMUP = 10  # d = min(decay, (1 + n) / (WARMUP + n))


class WeightAverage(Callback):
    """Keeps the exponential moving average of ``model``'s weights and buffers."""

    state_key = "ema"

    def __init__(self, model: nn.Module, decay: float):
        self.model, self.decay = model, decay
        self.averaged = AveragedModel(model, multi_avg_fn=self._update, use_buffers=True)

    @torch.no_grad()
    def _update(self, averaged: list, current: list, num_averaged: torch.Tensor) -> None:
        d = min(self.decay, (1 + float(num_averaged)) / (WARMUP + float(num_averaged)))
        if torch.is_floating_point(averaged[0]):
            torch._foreach_lerp_(averaged, current, 1 - d)
        else:  # batch norm's step counter: the model's own
            for a, c in zip(averaged, current, strict=True):
                a.copy_(c)

    def on_batch_end(self, trainer: Any, state: Any, loss_sum: Any, num_batches: int) -> None:  # noqa: ARG002
        self.averaged.update_parameters(self.model)

    @contextlib.contextmanager
    def swapped(self) -> Iterator[None]:
        """The model holds the averaged weights inside, its own ones again after."""
        if int(self.averaged.n_averaged) == 0:  # nothing averaged yet: the weights as they are
            yield
            return
        own = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(self.averaged.module.state_dict())
        try:
            yield
        finally:
            self.model.load_state_dict(own)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "averaged": self.averaged.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.averaged.load_state_dict(state["averaged"])


def averaged_weights(callbacks: list) -> contextlib.AbstractContextManager:
    """Inside: the model holds the averaged weights when the run has ``--ema``."""
    for callback in callbacks:
        if isinstance(callback, WeightAverage):
            return callback.swapped()
    return contextlib.nullcontext()
