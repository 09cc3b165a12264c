"""DataLoaders (or any iterables of ``(x, y)`` batches) collected into a ``Dataset`` once.

Example:
    >>> train_loader = DataLoader(TensorDataset(X[:80], y[:80]), batch_size=10, shuffle=True)
    >>> test_loader = DataLoader(TensorDataset(X[80:], y[80:]), batch_size=20)
    >>> Trainer(epochs=5).fit(model, (train_loader, test_loader))   # what the tutorials write

``Trainer.fit`` takes a train loader, a ``(train, test)`` or ``(train, val, test)`` tuple of
them, and collects each into memory once: from then on the run is like any other (seeded
batches of its own, metrics as counts, checkpoints, resume, report). Images that a loader gives
as floats in [0, 1] (``ToTensor``) become uint8 images again, exactly; other float inputs
(normalised already) are used as they are (kind ``tensors``).

A DataLoader over a map-style dataset is read in the dataset's own order, whatever its
sampler (trainlab shuffles its own batches, by the run's seed), so a resume collects the same
samples in the same order and continues exactly. Any other iterable is read as it comes: a
resume is exact only if it gives the same batches again. Collecting draws no random numbers of
the run (a forked generator), so the seed decides the same initialisation either way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from trainlab.data.dataset import Dataset, stratified_pick
from trainlab.errors import DataError

MEMORY_BUDGET = 4 * 2**30  # collected tensors beyond this are refused, not swapped


def is_loader(value: Any) -> bool:
    """A DataLoader, or any iterable of batches (not a Dataset, tensor or string)."""
    if isinstance(value, Dataset | torch.Tensor | str | bytes | dict):
        return False
    return isinstance(value, Iterable)


def _in_order(loader: Iterable) -> Iterable:
    """A DataLoader of a map-style dataset, read in index order (its own sampler may shuffle)."""
    from torch.utils.data import DataLoader, IterableDataset

    if not isinstance(loader, DataLoader) or isinstance(loader.dataset, IterableDataset):
        return loader
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size or 256,
        shuffle=False,
        collate_fn=loader.collate_fn,
    )


def _collect(loader: Iterable, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys, total = [], [], 0
    loader = _in_order(loader)
    with torch.random.fork_rng(devices=[]):
        for i, batch in enumerate(loader):
            if not isinstance(batch, list | tuple) or len(batch) != 2:
                raise DataError(
                    f"the {what} loader's batch {i} is {type(batch).__name__}, not (inputs, "
                    "targets): give a DataLoader of a dataset whose items are (x, y) pairs."
                )
            x, y = (torch.as_tensor(v).detach().cpu() for v in batch)
            total += x.numel() * x.element_size() + y.numel() * y.element_size()
            if total > MEMORY_BUDGET:
                raise DataError(
                    f"the {what} loader gives more than {MEMORY_BUDGET / 2**30:.0f} GiB of "
                    "tensors: too much to hold in memory. Keep the data as uint8 images (a "
                    "folder: --dataset PATH), or train on a subset."
                )
            xs.append(x)
            ys.append(y)
    if not xs:
        raise DataError(f"the {what} loader gave no batches.")
    return torch.cat(xs), torch.cat(ys)


def dataset_from_loaders(loaders: Any, *, name: str = "loaders", seed: int = 0) -> Dataset:
    """One ``Dataset`` from a train loader, ``(train, test)`` or ``(train, val, test)``.

    Without a test loader a stratified 20% of the training samples is held out as the test
    split (seeded), and ``info["collected"]`` says so.
    """
    parts = list(loaders) if isinstance(loaders, tuple | list) else [loaders]
    if not 1 <= len(parts) <= 3 or not all(is_loader(p) for p in parts):
        raise DataError(
            "Trainer.fit takes a Dataset, a DataLoader, or a tuple (train, test) or (train, "
            f"val, test) of DataLoaders; got {type(loaders).__name__} of {len(parts)} item(s)."
        )
    names = {1: ["train"], 2: ["train", "test"], 3: ["train", "val", "test"]}[len(parts)]
    splits = {n: _collect(p, n) for n, p in zip(names, parts, strict=True)}
    train_x, train_y = splits["train"]
    classes = _classes(train_y, *(y for _, y in splits.values()))
    note = f"collected {', '.join(f'{len(y):,} {n}' for n, (_, y) in splits.items())} samples"
    if "test" not in splits:
        n_test = max(1, len(train_y) // 5)
        test = stratified_pick(train_y, n_test, seed + 7, classes, "a test split")
        keep = torch.ones(len(train_y), dtype=torch.bool)
        keep[test] = False
        splits["test"] = (train_x[test], train_y[test])
        train_x, train_y = train_x[keep], train_y[keep]
        note += f"; no test loader, so {n_test:,} of them (20%, stratified) are the test split"
    kind = "" if _images(train_x) else "tensors"
    val = splits.get("val", (None, None))
    return Dataset(
        name,
        train_x,
        train_y,
        *splits["test"],
        classes=classes,
        val_x=val[0],
        val_y=val[1],
        kind=kind,
        info={"collected": note + " from the loaders into memory, once"},
    )


def _images(x: torch.Tensor) -> bool:
    """uint8 images, or float images in [0, 1] (ToTensor's) that are uint8 images exactly."""
    if x.dtype == torch.uint8:
        return x.dim() in (3, 4)
    if x.dim() not in (3, 4) or not x.dtype.is_floating_point or not x.numel():
        return False
    if float(x.min()) < 0 or float(x.max()) > 1:
        return False
    return bool(torch.equal((x * 255).round() / 255, x.float()))


def _classes(train_y: torch.Tensor, *ys: torch.Tensor) -> list[str]:
    """Class names for integer targets ("0" .. "K-1"); none (regression) for float targets."""
    if train_y.dtype.is_floating_point:
        return []
    top = max(int(y.max()) for y in ys if len(y))
    return [str(c) for c in range(top + 1)]
