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
            # the config fields that made this data (recorded with a run, to rebuild it)
            "settings": {
                "samples": samples,
                "true_w": [float(v) for v in true_w],
                "true_b": float(true_b),
                "noise": float(noise),
                "data_seed": seed,
            },
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
        info={
            "settings": {
                "samples": samples,
                "features": features,
                "num_classes": num_classes,
                "data_seed": seed,
            }
        },
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
