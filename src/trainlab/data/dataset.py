"""The one value every data source yields: tensors in memory, classes, normalisation stats."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from trainlab.data.kinds import Kind, get_kind, infer_kind
from trainlab.errors import ConfigError

_LOG = logging.getLogger(__name__)


@dataclass
class Dataset:
    """A dataset held in memory.

    Images are uint8 N×C×H×W (scaled to [0, 1] and normalised per batch, on the device); tabular
    features are float32 N×D and used as they are. ``classes`` is empty for regression. The
    splits may be given as tensors or numpy arrays; float64 features and targets (what numpy and
    scikit-learn give) become float32, the precision the models compute in, and a warning on the
    ``trainlab`` logger says so once.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    mean: list[float] = field(default_factory=list)  # per channel, on the [0, 1] scale
    std: list[float] = field(default_factory=list)
    val_x: torch.Tensor | None = None
    val_y: torch.Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)
    # How these splits were cut from the source (recorded with a run, so eval and resume cut
    # the same ones): subset, test_subset, val_split and the seed they used.
    origin: dict[str, Any] = field(
        default_factory=lambda: {"subset": 0, "test_subset": 0, "val_split": 0.0, "seed": None}
    )
    # What the registry loaded (``trainlab.data.registry``): the kind of input, which picks
    # predict/export/serve preprocessing, and the options it was loaded with.
    kind: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        converted = [arg for split in ("train", "test", "val") for arg in self._check_split(split)]
        if converted:
            named = ", ".join(converted[:-1]) + " and " if len(converted) > 1 else ""
            _LOG.warning(
                "Dataset %r: %s%s %s float64; converted to float32, the precision the models "
                "compute in (give float32 to skip the copy).",
                self.name,
                named,
                converted[-1],
                "is" if len(converted) == 1 else "are",
            )
        if not self.kind:
            self.kind = infer_kind(self._holds_images, bool(self.classes))
        if not self.mean and not self.std and len(self.train_x):
            self.mean, self.std = self.kind_entry.channel_stats(self.train_x)  # the data's own
        if self.mean or self.std:
            channels = self.train_x.shape[1] if self._holds_images else None
            if len(self.mean) != len(self.std) or (
                channels and len(self.mean) not in (1, channels)
            ):
                raise ConfigError(
                    f"Dataset {self.name!r}: mean= has {len(self.mean)} value(s) and std= "
                    f"{len(self.std)}; give one per channel ({channels}) or one for all."
                )

    def _check_split(self, split: str) -> list[str]:
        """Images and labels of one split agree: the same count, labels within the classes,
        images uint8 N×C×H×W (float images in [0, 1], as ToTensor gives, are converted).
        Returns the arguments converted from float64 to float32."""
        x, y = getattr(self, f"{split}_x"), getattr(self, f"{split}_y")
        if x is None and y is None:
            return []
        arg = f"{split}_x="
        x, y = self._tensor(x, arg, y, f"{split}_y="), self._tensor(y, f"{split}_y=", x, arg)
        converted = []
        if x.dtype == torch.float64 and x.dim() == 2:  # features; float images become uint8
            x = x.float()
            converted.append(arg)
        if not self.classes:  # regression targets: N×outputs, as the model's output
            if y.dtype == torch.float64:
                y = y.float()
                converted.append(f"{split}_y=")
            if y.dim() == 1:  # one target per sample (what scikit-learn gives), not broadcast
                y = y.unsqueeze(1)
        setattr(self, f"{split}_y", y)
        if len(x) != len(y):
            raise ConfigError(
                f"Dataset {self.name!r}: {arg} holds {len(x)} samples but {split}_y= holds "
                f"{len(y)} labels; they must match one to one."
            )
        x = self._as_images(x, arg)
        setattr(self, f"{split}_x", x)
        if self.classes and self.kind and self.kind_entry.task.multi_label:
            setattr(self, f"{split}_y", self._multi_hot(y, split))
        elif self.classes:
            if y.dtype.is_floating_point or y.dtype == torch.bool or y.dim() != 1:
                raise ConfigError(
                    f"Dataset {self.name!r}: {split}_y= must be integer class indices (a 1-D "
                    f"long tensor), got {y.dtype} of shape {list(y.shape)}."
                )
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(self.classes)):
                raise ConfigError(
                    f"Dataset {self.name!r}: {split}_y= has labels from {int(y.min())} to "
                    f"{int(y.max())}, but classes= names {len(self.classes)} (labels 0 to "
                    f"{len(self.classes) - 1})."
                )
            setattr(self, f"{split}_y", y.long())
        return converted

    def _multi_hot(self, y: torch.Tensor, split: str) -> torch.Tensor:
        """A multi-label split's targets: N×K of 0 and 1 (one column per class), as float32."""
        k = len(self.classes)
        if y.dim() != 2 or y.shape[1] != k:
            raise ConfigError(
                f"Dataset {self.name!r}: {split}_y= must be multi-hot N×{k} (one 0/1 column per "
                f"class) for kind '{self.kind}', got shape {list(y.shape)}."
            )
        y = y.float()
        if len(y) and not bool(((y == 0) | (y == 1)).all()):
            raise ConfigError(
                f"Dataset {self.name!r}: {split}_y= holds values other than 0 and 1; a "
                "multi-label target marks each class present (1) or absent (0)."
            )
        return y

    def _tensor(self, value: Any, arg: str, other: Any, other_arg: str) -> torch.Tensor:
        """A split's array as a tensor: torch tensors as they are, numpy arrays shared (copied
        only where torch cannot share them: negative strides, read-only memory)."""
        if isinstance(value, torch.Tensor):
            return value
        if isinstance(value, np.ndarray):
            if value.dtype.kind in "biuf":
                if not value.flags.writeable:
                    value = value.copy()
                return torch.as_tensor(np.ascontiguousarray(value))
            raise ConfigError(
                f"Dataset {self.name!r}: {arg} is a numpy array of {value.dtype}; give numbers "
                "(features as float32, class indices as integers), e.g. x.astype(np.float32)."
            )
        raise ConfigError(
            f"Dataset {self.name!r}: {arg} and {other_arg} must be torch tensors or numpy arrays, "
            f"got {type(value).__name__} and {type(other).__name__} (a DataFrame's .to_numpy() "
            "gives an array)."
        )

    def _as_images(self, x: torch.Tensor, arg: str) -> torch.Tensor:
        if self.kind and not self.kind_entry.images:  # a kind of float inputs, as given
            return x
        if x.dtype == torch.uint8:
            if x.dim() == 3:  # N×H×W: one channel
                return x.unsqueeze(1)
            if x.dim() != 4:
                raise ConfigError(
                    f"Dataset {self.name!r}: {arg} is uint8 of shape {list(x.shape)}; images "
                    "are N×C×H×W (or N×H×W for one channel)."
                )
            return x
        if x.dim() in (3, 4) and x.dtype.is_floating_point:
            low, high = (float(x.min()), float(x.max())) if x.numel() else (0.0, 1.0)
            if low < 0 or high > 1:
                raise ConfigError(
                    f"Dataset {self.name!r}: {arg} holds float images with values from {low:.3g}"
                    f" to {high:.3g}; give uint8 pixels (0-255) or floats in [0, 1] (ToTensor's"
                    "), and the normalisation as mean= and std=, not applied to the images."
                )
            images = (x * 255).round().to(torch.uint8)
            return images.unsqueeze(1) if images.dim() == 3 else images
        return x  # tabular features (N×D) or other inputs, used as they are

    @property
    def kind_entry(self) -> Kind:
        """What this kind of data means for every step (``trainlab.data.kinds``)."""
        return get_kind(self.kind)

    @property
    def task(self) -> str:
        """The task family's name ("classification", "regression"), as runs record it."""
        return self.kind_entry.task.name

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def _holds_images(self) -> bool:
        return self.train_x.dtype == torch.uint8 and self.train_x.dim() == 4

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    @property
    def output_size(self) -> int:
        return self.num_classes if self.classes else int(self.train_y[0].numel())

    def subset(self, train: int = 0, test: int = 0, seed: int = 0) -> Dataset:
        """A copy with stratified subsets of the training and test splits (0: keep all)."""
        self._check_recut(seed, "subset", train or test)
        out, origin = self, dict(self.origin)
        if train:
            idx = stratified_pick(self.train_y, train, seed, self.classes, "subset")
            out = replace(out, train_x=self.train_x[idx], train_y=self.train_y[idx])
            origin.update(subset=train, seed=seed)
        if test:
            idx = stratified_pick(self.test_y, test, seed + 1, self.classes, "test_subset")
            out = replace(out, test_x=self.test_x[idx], test_y=self.test_y[idx])
            origin.update(test_subset=test, seed=seed)
        return replace(out, origin=origin)

    def cut(
        self,
        subset: int = 0,
        test_subset: int = 0,
        val_split: float = 0.0,
        seed: int = 0,
        fold: tuple[int, int] | None = None,
    ) -> Dataset:
        """The splits a run uses: stratified subsets, then a validation split (a fraction, or
        fold ``i`` of ``k`` stratified folds: ``fold=(k, i)``), each applied once (a cut the
        data already has is kept; a different one is refused)."""
        origin = self.origin
        if fold:
            have = origin.get("fold")
            if have and tuple(have) != tuple(fold):
                raise ConfigError(
                    f"fold {fold[1]} of {fold[0]}, but the dataset given was already cut into "
                    f"fold {have[1]} of {have[0]}. Give the full dataset."
                )
            if not have:
                data = self.cut(subset, test_subset, 0.0, seed)
                return data.split_fold(*fold, seed=seed)
        for name, flag, have, want in (
            ("subset", "--subset", origin["subset"], subset),
            ("test_subset", "--test-subset", origin["test_subset"], test_subset),
            ("val_split", "--val-split", origin["val_split"], val_split),
        ):
            if have and want and have != want:
                raise ConfigError(
                    f"{flag} {want} ({name}={want}), but the dataset given was already cut with "
                    f"{name}={have}. Give the full dataset, or drop the setting."
                )
        data = self.subset(
            0 if origin["subset"] else subset, 0 if origin["test_subset"] else test_subset, seed
        )
        return data if origin["val_split"] else data.split_validation(val_split, seed=seed)

    def split_fold(self, folds: int, fold: int, seed: int = 0) -> Dataset:
        """Fold ``fold`` (1..``folds``) of a stratified K-fold split of the training set as the
        validation split, the other folds as training data (scikit-learn's StratifiedKFold,
        shuffled with a seed of the data seed: the same folds on every run)."""
        import numpy as np
        from sklearn.model_selection import KFold, StratifiedKFold

        if folds < 2 or not 1 <= fold <= folds:
            raise ConfigError(f"fold {fold} of {folds}: need 2 or more folds and 1 <= fold <= K.")
        if self.origin.get("val_split"):
            raise ConfigError("this dataset already has a validation split; cut folds instead.")
        labels = self.train_y.numpy()
        multi_hot = labels.ndim == 2
        if multi_hot:  # stratified on the label combinations (the rare ones pooled)
            labels = label_combinations(self.train_y, folds)[0].numpy()
        splitter = (StratifiedKFold if self.classes else KFold)(folds, shuffle=True,
                                                                random_state=seed + 3)  # fmt: skip
        if self.classes and not multi_hot and np.bincount(labels).min(initial=folds) < folds:
            raise ConfigError(
                f"--folds {folds}: a class has fewer than {folds} training images; use fewer "
                "folds or more data (--subset)."
            )
        _, val = list(splitter.split(np.zeros(len(labels)), labels))[fold - 1]
        return self._held_out(torch.from_numpy(np.sort(val)), fold=[folds, fold], seed=seed)

    def split_validation(self, fraction: float, seed: int = 0) -> Dataset:
        """Move a stratified ``fraction`` of the training set into a validation split."""
        if fraction <= 0:
            return self
        self._check_recut(seed, "split_validation", True)
        if self.origin.get("val_split"):
            raise ConfigError("this dataset already has a validation split; split it once.")
        n_val = max(1, round(len(self.train_y) * fraction))
        val_idx = stratified_pick(self.train_y, n_val, seed + 2, self.classes, "val_split")
        if n_val >= len(self.train_y):
            raise ConfigError("val_split leaves no training data; use a smaller fraction.")
        return self._held_out(val_idx, val_split=fraction, seed=seed)

    def _held_out(self, val_idx: torch.Tensor, **origin: Any) -> Dataset:
        """The training images at ``val_idx`` as the validation split, the rest training."""
        keep = torch.ones(len(self.train_y), dtype=torch.bool)
        keep[val_idx] = False
        return replace(
            self,
            train_x=self.train_x[keep],
            train_y=self.train_y[keep],
            val_x=self.train_x[val_idx],
            val_y=self.train_y[val_idx],
            origin={**self.origin, **origin},
        )

    def _check_recut(self, seed: int, what: str, cutting: Any) -> None:
        """A run records one seed for its cuts, so they must all use it (else eval would cut
        other images than the run scored)."""
        used = self.origin.get("seed")
        if cutting and used is not None and used != seed:
            raise ConfigError(
                f"{what}(seed={seed}) on data already cut with seed {used}: a run records one "
                "data seed, so cut the subsets and the validation split with the same seed."
            )


def stratified_pick(
    labels: torch.Tensor, n: int, seed: int, classes: list[str], what: str
) -> torch.Tensor:
    """Indices of ``n`` items whose class proportions follow ``labels`` (seeded, sorted).

    Each class gets its share rounded down; the remainder goes to the classes with the largest
    fractional parts. Regression targets are sampled uniformly.
    """
    total = len(labels)
    if n > total:
        raise ConfigError(f"{what}={n} is larger than the {total} items available.")
    generator = torch.Generator().manual_seed(seed)
    if not classes:
        return torch.randperm(total, generator=generator)[:n].sort().values
    if labels.dim() == 2:  # multi-hot: the label combinations are the strata
        labels, strata = label_combinations(labels)
        return stratified_pick(labels, n, seed, [""] * strata, what)
    counts = torch.bincount(labels, minlength=len(classes)).double()
    share = counts * n / total
    take = share.floor().long()
    remainder = n - int(take.sum())
    if remainder:
        order = torch.argsort(share - share.floor(), descending=True, stable=True)
        take[order[:remainder]] += 1
    picked = []
    for c in range(len(classes)):
        members = torch.nonzero(labels == c).flatten()
        picked.append(members[torch.randperm(len(members), generator=generator)[: take[c]]])
    return torch.cat(picked).sort().values


def label_combinations(multi_hot: torch.Tensor, least: int = 2) -> tuple[torch.Tensor, int]:
    """Each multi-label sample's stratum: its combination of labels, with the combinations
    held by fewer than ``least`` samples pooled into one stratum (a cut of those is random).
    Returns the strata (int64, N) and their count."""
    _, combination, members = torch.unique(
        multi_hot.bool(), dim=0, return_inverse=True, return_counts=True
    )
    rare = members[combination] < least
    common = torch.unique(combination[~rare], return_inverse=True)[1]
    strata = torch.zeros(len(multi_hot), dtype=torch.int64)
    strata[~rare] = common + 1
    return strata, int(strata.max()) + 1 if len(strata) else 1


def channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Exact per-channel mean and std of uint8 images on the [0, 1] scale (from histograms)."""
    means, stds = [], []
    levels = torch.arange(256, dtype=torch.float64) / 255
    for c in range(images.shape[1]):
        hist = torch.bincount(images[:, c].reshape(-1).to(torch.int32), minlength=256).double()
        total = hist.sum()
        mean = (hist * levels).sum() / total
        var = (hist * (levels - mean) ** 2).sum() / total
        means.append(round(float(mean), 6))
        stds.append(round(float(var.sqrt()), 6))
    return means, stds
