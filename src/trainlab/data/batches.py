"""Batches from in-memory tensors: seeded shuffles, and per-batch preprocessing on the device.

Example:
    >>> transform = InputTransform(mean=[0.1307], std=[0.3081])
    >>> train = Batches(data.train_x, data.train_y, 128, shuffle=True, seed=0, transform=transform)
    >>> for x, y in train.epoch(0):   # the permutation depends only on (seed, epoch)
    ...     ...

Nothing here runs per sample: a batch is one index operation on the whole tensor, then scaling,
resizing and normalisation as a few tensor operations where the data lives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F


class InputTransform:
    """uint8 images -> float in [0, 1] -> resized -> channels repeated -> normalised.

    The arithmetic is the same as torchvision's ``ToTensor()`` then ``Normalize(mean, std)``
    (divide by 255, subtract, divide), so the batches equal theirs. Float (tabular) inputs pass
    through untouched unless stats are given.
    """

    def __init__(
        self,
        mean: Sequence[float] = (),
        std: Sequence[float] = (),
        size: tuple[int, int] | None = None,
        channels: int | None = None,
        channels_last: bool = False,
    ):
        self.mean, self.std = list(mean), list(std)
        self.size = tuple(size) if size else None
        self.channels = channels
        self.channels_last = channels_last
        self.augment: Callable[[torch.Tensor], torch.Tensor] | None = None
        self._stats: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def with_augment(self, augment) -> InputTransform:
        """A copy that also augments (for training batches only)."""
        out = InputTransform(self.mean, self.std, self.size, self.channels, self.channels_last)
        out.augment = augment
        return out

    def _stats_on(
        self, device: torch.device, channels: int, dims: int = 4
    ) -> tuple[torch.Tensor, torch.Tensor]:
        key = (device, dims)
        if key not in self._stats:
            mean, std = torch.tensor(self.mean), torch.tensor(self.std)
            if len(self.mean) == 1 and channels > 1:
                mean, std = mean.expand(channels), std.expand(channels)
            shape = (1, -1) + (1,) * (dims - 2)  # per channel, or per feature (N×D rows)
            self._stats[key] = (mean.view(shape).to(device), std.view(shape).to(device))
        return self._stats[key]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float().div_(255)
        elif not self.mean:
            return x
        if self.augment is not None:
            x = self.augment(x)
        if self.size and tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        if self.channels and x.shape[1] != self.channels:
            x = x.expand(-1, self.channels, -1, -1)
        if self.mean:
            mean, std = self._stats_on(x.device, x.shape[1], max(x.dim(), 2))
            x = x.sub(mean).div_(std)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def to_dict(self) -> dict:
        """Plain values (for config.toml and checkpoints); ``from_dict`` rebuilds the transform."""
        return {
            "mean": list(self.mean),
            "std": list(self.std),
            "size": list(self.size or []),
            "channels": self.channels,
            "channels_last": self.channels_last,
        }

    @classmethod
    def from_dict(cls, values: dict) -> InputTransform:
        return cls(
            values.get("mean", []),
            values.get("std", []),
            size=tuple(values["size"]) if values.get("size") else None,
            channels=values.get("channels"),
            channels_last=bool(values.get("channels_last", False)),
        )


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator behind epoch ``epoch``'s shuffle: a function of (seed, epoch) only, so a
    resumed run draws the same order as an uninterrupted one."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


class Batches:
    """Iterate (inputs, targets) batches over tensors kept on ``device``.

    ``shard=(rank, world)`` (several processes, see ``engine.distributed``): ``batch_size`` is
    the global batch; each global batch of the epoch's permutation is cut into ``world`` equal
    contiguous parts and this rank yields part ``rank``. The batches are the same for any world
    size; only the last batch can be cut short: its last ``size % world`` samples (at most
    world - 1 per epoch, different ones each epoch) are left out so that every rank gets the
    same number of samples, and a last batch smaller than ``world`` is dropped.

    ``sample_weights`` (with ``shuffle``): each epoch draws ``len(y)`` samples with replacement,
    sample i with probability proportional to its weight (``--sampler balanced``), from the same
    (seed, epoch) generator as the permutation, so a resumed epoch draws the same samples.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        device: torch.device | str = "cpu",
        transform: InputTransform | None = None,
        shard: tuple[int, int] = (0, 1),
        sample_weights: torch.Tensor | None = None,
    ):
        rank, world = shard
        if world < 1 or not 0 <= rank < world:
            from trainlab.errors import ConfigError

            raise ConfigError(f"shard {shard}: expected (rank, world) with 0 <= rank < world")
        if world > 1 and batch_size % world:
            from trainlab.errors import ConfigError

            raise ConfigError(
                f"--batch-size {batch_size} is the global batch and must divide evenly among "
                f"{world} processes; use a multiple of {world}, e.g. "
                f"{max(world, batch_size // world * world)}."
            )
        self.shard = (rank, world)
        self.device = torch.device(device)
        self.x, self.y = x.to(self.device), y.to(self.device)
        self.batch_size, self.shuffle, self.seed, self.drop_last = (
            batch_size,
            shuffle,
            seed,
            drop_last,
        )
        self.transform = transform or InputTransform()
        self.sample_weights = None if sample_weights is None else sample_weights.double().cpu()
        self._passes = 0  # plain iteration draws a new shuffle each pass, like a DataLoader

    def to(self, device: torch.device | str) -> Batches:
        """The same batches with the data on ``device``."""
        return Batches(
            self.x,
            self.y,
            self.batch_size,
            shuffle=self.shuffle,
            seed=self.seed,
            drop_last=self.drop_last,
            device=device,
            transform=self.transform,
            shard=self.shard,
            sample_weights=self.sample_weights,
        )

    @property
    def num_samples(self) -> int:
        return len(self.y)

    def __len__(self) -> int:
        n, world = len(self.y), self.shard[1]
        if self.drop_last or n % self.batch_size < world:
            return n // self.batch_size
        return math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch = self._passes
        if self.shuffle:
            self._passes += 1
        return self.epoch(epoch)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches of epoch ``epoch``, starting at batch ``start`` (to resume mid-epoch)."""
        order = None
        if self.shuffle:
            generator = epoch_generator(self.seed, epoch)
            if self.sample_weights is None:
                order = torch.randperm(len(self.y), generator=generator)
            else:
                n = len(self.y)
                order = torch.multinomial(self.sample_weights, n, True, generator=generator)
            order = order.to(self.device)
        for i in range(start, len(self)):
            lo, hi = i * self.batch_size, min((i + 1) * self.batch_size, len(self.y))
            rank, world = self.shard
            if world > 1:
                part = (hi - lo) // world
                lo, hi = lo + rank * part, lo + (rank + 1) * part
            if order is None:
                x, y = self.x[lo:hi], self.y[lo:hi]
            else:
                idx = order[lo:hi]
                x, y = self.x.index_select(0, idx), self.y.index_select(0, idx)
            yield self.transform(x), y
