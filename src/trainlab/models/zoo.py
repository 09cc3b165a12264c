"""The built-in architectures, each registered with its options and the input it needs.

A builder takes the input shape and output size it must fit; every other keyword parameter is
an option: its annotation gives the type, ``Opt`` the help and bounds, its default the default.
Adding an option to a model is adding a parameter here. ``trainlab train --help`` then shows
its flag (``--hidden 1024 1024``), ``--model-arg NAME=VALUE`` sets it too, runs record it and
a resume keeps it.
"""

from __future__ import annotations

import math
from typing import Annotated

from torch import nn

from trainlab.models.fused import FusedStages
from trainlab.models.registry import register_model
from trainlab.options import Opt


def _features(input_shape: tuple[int, ...]) -> int:
    return math.prod(input_shape)


@register_model("linreg", summary="linear regression (MSE)", output="regression", flat=True)
def linreg(input_shape, outputs):
    """Linear regression: one linear layer on the flattened input."""
    return nn.Sequential(nn.Flatten(), nn.Linear(_features(input_shape), outputs))


@register_model("softmax", summary="softmax regression (one linear layer)", flat=True)
def softmax(input_shape, outputs):
    """Softmax regression: a linear layer giving logits (the softmax lives in the loss)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(_features(input_shape), outputs))


@register_model(
    "mlp",
    summary="MLP with ReLU, hidden sizes from --hidden",
    flat=True,
    output=lambda options: "log_probs" if options.get("log_softmax") else "logits",
)
def mlp(
    input_shape,
    outputs,
    hidden: Annotated[
        list[int], Opt("mlp: hidden layer sizes", low=1, high=1 << 16, metavar="N")
    ] = (512, 256),
    log_softmax: Annotated[
        bool, Opt("mlp: end with log-softmax (trained with NLL, as the seed)")
    ] = False,
):
    """Multi-layer perceptron with ReLU (the seed's 784-512-256-10 by default)."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = _features(input_shape)
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, outputs))
    if log_softmax:
        layers.append(nn.LogSoftmax(dim=1))
    return nn.Sequential(*layers)


@register_model(
    "mlp-regressor",
    summary="MLP with ReLU for numeric targets (MSE), hidden sizes from --hidden",
    output="regression",
    flat=True,
)
def mlp_regressor(
    input_shape,
    outputs,
    hidden: Annotated[
        list[int], Opt("mlp: hidden layer sizes", low=1, high=1 << 16, metavar="N")
    ] = (512, 256),
):
    """The mlp with a linear output per target (a table's numeric target)."""
    return mlp(input_shape, outputs, hidden)


@register_model("lenet", summary="LeNet-5 as in d2l (sigmoid, avg-pool)", size=(28, 28))
def lenet(input_shape, outputs):
    """LeNet-5 as in d2l: sigmoid activations and average pooling, for 28×28 inputs."""
    return nn.Sequential(
        nn.Conv2d(input_shape[0], 6, kernel_size=5, padding=2),
        nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5),
        nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        nn.Sigmoid(),
        nn.Linear(120, 84),
        nn.Sigmoid(),
        nn.Linear(84, outputs),
    )


@register_model("lenet-relu", summary="LeNet-5 with ReLU, max-pool, batch norm", size=(28, 28))
def lenet_relu(input_shape, outputs):
    """LeNet-5 modernised: ReLU, max pooling and batch norm (trains far faster than sigmoid)."""
    return nn.Sequential(
        nn.Conv2d(input_shape[0], 6, kernel_size=5, padding=2),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, kernel_size=5),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        nn.BatchNorm1d(120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.BatchNorm1d(84),
        nn.ReLU(),
        nn.Linear(84, outputs),
    )


@register_model(
    "alexnet",
    summary="torchvision's AlexNet with the seeds' 10-way head",
    size=(96, 96),
    channels=3,
)
def alexnet(
    input_shape,  # noqa: ARG001 - AlexNet's input is fixed by its spec (3×96×96)
    outputs,
    dropout: Annotated[float, Opt("alexnet: dropout probability in the head", low=0, high=1)] = 0.3,
):
    """torchvision's AlexNet with the seeds' head: Dropout-9216→4096-ReLU-Dropout-4096→4096-ReLU-→K.

    The module names match torchvision's, so its ImageNet ``features`` weights load as they are.
    """
    from torchvision.models import alexnet as tv_alexnet

    net = tv_alexnet(weights=None)
    net.classifier = nn.Sequential(
        nn.Dropout(p=dropout),
        nn.Linear(256 * 6 * 6, 4096),
        nn.ReLU(inplace=True),
        nn.Dropout(p=dropout),
        nn.Linear(4096, 4096),
        nn.ReLU(inplace=True),
        nn.Linear(4096, outputs),
    )
    return net


@register_model("cnn", summary="fast 2-stage batch-norm CNN (default)", min_size=4)
def cnn(
    input_shape,
    outputs,
    widths: Annotated[
        list[int], Opt("cnn: channels of each conv stage", low=1, high=1 << 14, metavar="N")
    ] = (16, 24),
):
    """The default: a small batch-norm CNN sized for speed on a CPU.

    Two stages of [5×5 conv, 2×2 max-pool, BN, ReLU], then one linear layer. Pooling before the
    normalisation and activation runs them on a quarter of the pixels (1.3x faster on a CPU),
    and in training on the CPU each [pool, BN, ReLU] runs as one fused kernel (models/fused.py);
    batch norm lets a one-cycle schedule use a large learning rate, so one epoch (batch 64,
    label smoothing 0.1: the defaults) reaches 99% on MNIST. Widths in multiples of 8 suit
    AVX-512/bf16 kernels: 16/24 ran 10% faster per epoch than 16/32 at the same accuracy, and
    12/24 was slower than both.
    """
    c, h, w = input_shape
    if not widths:
        from trainlab.errors import ConfigError

        raise ConfigError("cnn: widths must be one or more channel counts, got none.")
    layers: list[nn.Module] = []
    for width in widths:
        layers += [
            nn.Conv2d(c, width, 5, padding=2, bias=False),
            nn.MaxPool2d(2),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        c, h, w = width, h // 2, w // 2
    layers += [nn.Flatten(), nn.Linear(c * h * w, outputs)]
    return FusedStages(*layers)
