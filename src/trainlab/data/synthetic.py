"""Data made in memory: linear regression, random classification, scikit-learn's 8×8 digits."""

from __future__ import annotations

import torch

from trainlab.data.dataset import Dataset, channel_stats, stratified_pick


def synthetic_data(
    w: torch.Tensor,
    b: float,
    num_examples: int,
    noise: float = 0.01,
    generator: torch.Generator | None = None,
):
    """y = Xw + b + N(0, noise²), X ~ N(0, 1): d2l's ``synthetic_data``. Returns (X, y[:, None])."""
    w = torch.as_tensor(w, dtype=torch.float32)
    x = torch.normal(0, 1, (num_examples, len(w)), generator=generator)
    y = x @ w + b
    y += torch.normal(0, noise, y.shape, generator=generator)
    return x, y.reshape(-1, 1)


def linear(samples: int, true_w: list[float], true_b: float, noise: float, seed: int) -> Dataset:
    """Synthetic regression; the test split is 1000 fresh samples from the same line."""
    generator = torch.Generator().manual_seed(seed)
    train_x, train_y = synthetic_data(torch.tensor(true_w), true_b, samples, noise, generator)
    test_x, test_y = synthetic_data(torch.tensor(true_w), true_b, 1000, noise, generator)
    return Dataset(
        "linear",
        train_x,
        train_y,
        test_x,
        test_y,
        classes=[],
        info={
            "true_w": list(true_w),
            "true_b": true_b,
            "noise": noise,
            "settings": {"data_seed": seed},  # recorded with a run, to make the same data
        },
    )


def random_classes(samples: int, features: int, num_classes: int, seed: int) -> Dataset:
    """N×D standard normal features with uniformly random labels; the last 20% is the test split.

    The labels carry no signal: this is the seed's "basics" example, useful to exercise a loop.
    """
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, features, generator=generator)
    y = torch.randint(0, num_classes, (samples,), generator=generator)
    cut = int(samples * 0.8)
    return Dataset(
        "random",
        x[:cut],
        y[:cut],
        x[cut:],
        y[cut:],
        classes=[str(c) for c in range(num_classes)],
        info={"settings": {"data_seed": seed}},
    )


def digits() -> Dataset:
    """scikit-learn's bundled 8×8 digits (1,797 images, offline); 20% stratified test split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # Pixels are 0..16; stretch to 0..255 so they are ordinary uint8 images.
    images = torch.from_numpy(bunch.images * (255 / 16)).round().to(torch.uint8).unsqueeze(1)
    labels = torch.from_numpy(bunch.target).long()
    classes = [str(d) for d in range(10)]
    test_idx = stratified_pick(labels, len(labels) // 5, 0, classes, "digits test split")
    is_test = torch.zeros(len(labels), dtype=torch.bool)
    is_test[test_idx] = True
    mean, std = channel_stats(images[~is_test])
    return Dataset(
        "digits",
        images[~is_test],
        labels[~is_test],
        images[is_test],
        labels[is_test],
        classes=classes,
        mean=mean,
        std=std,
        info={"source": "sklearn.datasets.load_digits"},
    )


def _register() -> None:
    from typing import Annotated

    from trainlab.data.registry import register_dataset
    from trainlab.options import Opt

    Samples = Annotated[int, Opt("linear/random data: number of samples", low=1, high=10**8)]

    @register_dataset("linear", kind="regression", summary="y = Xw + b + noise (d2l 3.2)")
    def load_linear(
        ctx,
        samples: Samples = 1000,
        true_w: Annotated[
            list[float], Opt("linear data: true weights", low=-1e12, high=1e12, metavar="W")
        ] = (2.0, -3.4),
        true_b: Annotated[float, Opt("linear data: true bias", low=-1e12, high=1e12)] = 4.2,
        noise: Annotated[
            float, Opt("linear data: standard deviation of the label noise", low=0, high=1e6)
        ] = 0.01,
    ):
        return linear(samples, list(true_w), true_b, noise, ctx.seed)

    @register_dataset("random", kind="tabular", summary="random features, random labels")
    def load_random(
        ctx,
        samples: Samples = 1000,
        features: Annotated[int, Opt("random data: features per sample", low=1, high=10**6)] = 10,
        num_classes: Annotated[int, Opt("random data: number of classes", low=1, high=10**5)] = 2,
    ):
        return random_classes(samples, features, num_classes, ctx.seed)

    @register_dataset("digits", kind="images", summary="scikit-learn's 8×8 digits, offline")
    def load_digits(ctx):  # noqa: ARG001 - no root, no seed: the split is fixed
        return digits()


_register()
