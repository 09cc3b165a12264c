"""A residual network sized for small images (28–64 px): stronger than ``cnn``, slower per epoch.

Three stages of basic residual blocks at widths 32/64/128 by default, the second and third
halving the resolution, then global average pooling and one linear layer. It has no large
stride or pooling in the stem, so a 28×28 digit keeps its detail for the first stage; the
global pooling makes it take any input of at least 8×8. Convolutions run channels-last and in
bf16 where the CPU has native bf16 (``--amp auto``), like every other model.

Example:
    >>> from trainlab.models import build_model
    >>> net = build_model("resnet-small", input_shape=(1, 28, 28), outputs=10)
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import nn

from trainlab.models.fused import FusedStages
from trainlab.models.registry import register_model
from trainlab.options import Opt


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with batch norm, added to the input (projected by a 1×1 convolution
    where the width or resolution changes). With ``pool``, a block that halves the resolution
    average-pools its input first (both paths) and convolves at stride 1: the same cost as a
    stride-2 convolution (not the same function), whose backward pass runs far slower on CPUs
    (the block trained 16% more images per second at 48/96/192 channels, bf16)."""

    def __init__(self, c_in: int, c_out: int, stride: int, pool: bool = False):
        super().__init__()
        self.pool = nn.Identity()
        if pool and stride != 1:
            self.pool, stride = nn.AvgPool2d(stride, ceil_mode=True), 1
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


@register_model(
    "resnet-small", summary="residual network for 28-64 px images (3 stages)", min_size=8
)
def resnet_small(
    input_shape,
    outputs,
    widths: Annotated[
        list[int], Opt("resnet-small: channels of each stage", low=1, high=1 << 12, metavar="N")
    ] = (32, 64, 128),
    blocks: Annotated[int, Opt("resnet-small: residual blocks per stage", low=1, high=16)] = 1,
    dropout: Annotated[
        float, Opt("resnet-small: dropout before the last layer", low=0, high=1)
    ] = 0.0,
    stem_pool: Annotated[
        bool,
        Opt(
            "resnet-small: max-pool 2x2 in the stem (after its convolution, before batch norm "
            "and ReLU), so every stage runs on a quarter of the pixels (more epochs fit a time "
            "budget)"
        ),
    ] = False,
    downsample: Annotated[
        str,
        Opt(
            "resnet-small: how a stage halves the resolution: stride (a stride-2 convolution) "
            "or pool (2x2 average pooling, then stride 1: faster to train on a CPU)",
            choices=("stride", "pool"),
        ),
    ] = "stride",
):
    """A stem (3×3 conv, BN, ReLU; 2×2 max-pool with ``stem_pool``) at the first width, then one
    stage per width of ``blocks`` basic residual blocks (every stage after the first halves the
    resolution), global average pooling, dropout and a linear layer."""
    if not widths:
        from trainlab.errors import ConfigError

        raise ConfigError("resnet-small: widths must be one or more channel counts, got none.")
    c = input_shape[0]
    stem: list[nn.Module] = [
        nn.Conv2d(c, widths[0], 3, padding=1, bias=False),
        nn.BatchNorm2d(widths[0]),
        nn.ReLU(inplace=True),
    ]
    if stem_pool:  # pooled before BN and ReLU, as the cnn's stages: one fused kernel on a CPU
        stem.insert(1, nn.MaxPool2d(2))
    layers, c = stem, widths[0]
    for i, width in enumerate(widths):
        for j in range(blocks):
            stride = 2 if i > 0 and j == 0 else 1
            layers.append(BasicBlock(c, width, stride, pool=downsample == "pool"))
            c = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(c, outputs)]
    return FusedStages(*layers) if stem_pool else nn.Sequential(*layers)
