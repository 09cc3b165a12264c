"""Test-time flip averaging (``--tta flip``): score each image and its left-right mirror.

The wrapper is what scores, never what trains or what is saved: checkpoints hold the model's own
weights, and every place that scores a run (its epochs, ``eval``, ``predict``, ``serve``, the
exported ONNX graph) wraps the model the same way from the run's recorded ``tta``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class FlipAveraged(nn.Module):
    """The model's outputs for ``x`` and for ``x`` mirrored left-right, averaged.

    Logits are averaged as logits; a log-softmax model's log-probabilities are averaged as
    probabilities (and returned as their log), so the output keeps the model's meaning.
    """

    def __init__(self, model: nn.Module, output: str = "logits"):
        super().__init__()
        self.model = model
        self.output = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.model(x)
        b = self.model(torch.flip(x, dims=(-1,)))
        if self.output == "log_probs":
            return torch.logaddexp(a, b) - math.log(2.0)
        return (a + b) / 2


def scoring_model(model: nn.Module, tta: str, output: str = "logits") -> nn.Module:
    """What scores a run whose recorded ``tta`` is ``tta``: the model, or it flip-averaged."""
    return FlipAveraged(model, output) if tta == "flip" else model
