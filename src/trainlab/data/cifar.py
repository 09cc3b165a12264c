"""CIFAR-10 and CIFAR-100 in torchvision's layout: ``ROOT/cifar-10-batches-py/`` (or the
``cifar-10-python.tar.gz`` beside it), verified by the md5s torchvision's classes carry.

Example:
    >>> from trainlab.data import load_dataset
    >>> data = load_dataset("cifar10")            # fetched when the network allows it
    >>> data.input_shape, data.classes[:3]
    ((3, 32, 32), ['airplane', 'automobile', 'bird'])

A copy whose md5s differ is refused unless ``unverified_data`` (``--unverified-data``) is set;
then it is read, shape-checked and recorded as unverified. The batches are pickles, so they are
read with an unpickler that builds numpy arrays, lists, dicts and strings and nothing else: a
file that names any other class is refused instead of run.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch

from trainlab.data.dataset import Dataset, channel_stats
from trainlab.data.registry import register_dataset
from trainlab.errors import DataError
from trainlab.options import Opt


@dataclass(frozen=True)
class Cifar:
    folder: str
    archive: str
    url: str
    archive_md5: str
    train: tuple[tuple[str, str], ...]
    test: tuple[tuple[str, str], ...]
    meta: tuple[str, str]
    labels_key: str
    classes_key: str


CIFARS = {
    "cifar10": Cifar(
        "cifar-10-batches-py",
        "cifar-10-python.tar.gz",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
        (
            ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
            ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
            ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
            ("data_batch_4", "634d18415352ddfa80567beed471001a"),
            ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
        ),
        (("test_batch", "40351d587109b95175f43aff81a1287e"),),
        ("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"),
        "labels",
        "label_names",
    ),
    "cifar100": Cifar(
        "cifar-100-python",
        "cifar-100-python.tar.gz",
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
        (("train", "16019d7e3df5f24257cddd939b257f8d"),),
        (("test", "f0ef6b0ae62326f3e7ffdfab6717acfc"),),
        ("meta", "7973b15100ade9c7d40fb424638fde48"),
        "fine_labels",
        "fine_label_names",
    ),
}


class _ArraysOnly(pickle.Unpickler):
    """Builds numpy arrays and plain values; any other class named in the file is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused: the file names {module}.{name}")


def _unpickle(content: bytes, path: str) -> dict:
    try:
        value = _ArraysOnly(io.BytesIO(content), encoding="latin1").load()
    except Exception as e:  # noqa: BLE001 - any failure to read is reported the same way
        raise DataError(f"{path}: not a CIFAR batch ({e}).") from None
    if not isinstance(value, dict):
        raise DataError(f"{path}: not a CIFAR batch (a {type(value).__name__}, not a dict).")
    return value


def _md5(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()  # noqa: S324 - the published checksums are md5s


def _files(spec: Cifar, root: Path, log) -> Path:
    """The batch folder, extracted from the archive or fetched when it is not there."""
    folder = root / spec.folder
    if folder.is_dir():
        return folder
    archive = root / spec.archive
    if not archive.is_file():
        _download(spec, archive, log)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(root, filter="data")  # no paths outside root, no links out
    if not folder.is_dir():
        raise DataError(f"{archive}: it holds no {spec.folder}/ folder; is it the right file?")
    return folder


def _download(spec: Cifar, archive: Path, log) -> None:
    from tqdm import tqdm

    from trainlab.fsutil import atomic_write_bytes

    try:
        with urllib.request.urlopen(spec.url, timeout=30) as response:
            total = int(response.headers.get("Content-Length") or 0)
            chunks = []
            with tqdm(total=total, unit="B", unit_scale=True, desc=spec.archive) as bar:
                while chunk := response.read(1 << 20):
                    chunks.append(chunk)
                    bar.update(len(chunk))
    except OSError as e:
        raise DataError(
            f"{spec.archive} is not in {archive.parent} and cannot be downloaded from {spec.url}"
            f" ({getattr(e, 'reason', e)}). Download it elsewhere and put it (or its extracted "
            f"{spec.folder}/ folder) into {archive.parent}/."
        ) from None
    content = b"".join(chunks)
    if _md5(content) != spec.archive_md5:
        raise DataError(f"{spec.url}: the download's md5 is not the published one; try again.")
    atomic_write_bytes(archive, content)
    if log is not None:
        log(f"fetched {spec.archive} ({len(content) / 1e6:.0f} MB) into {archive.parent}")


def _read(spec: Cifar, folder: Path, unverified: bool) -> tuple[dict, bool]:
    """Every batch's content, each file's md5 checked (or, unverified, only reported)."""
    wrong, batches = [], {}
    for name, md5 in (*spec.train, *spec.test, spec.meta):
        path = folder / name
        if not path.is_file():
            raise DataError(
                f"{path}: missing; {folder} must hold {', '.join(n for n, _ in spec.train)}, "
                f"{spec.test[0][0]} and {spec.meta[0]} (extract {spec.archive} there)."
            )
        content = path.read_bytes()
        got = _md5(content)
        if got != md5:
            wrong.append(f"{name}: md5 {got}, expected {md5}")
        batches[name] = _unpickle(content, str(path))
    if wrong and not unverified:
        raise DataError(
            f"{folder}: these files are not the published CIFAR files ({'; '.join(wrong)}). "
            "Fetch them again, or, for a copy of your own in the same format, pass "
            "--unverified-data (it is then read, checked for shape and recorded as unverified)."
        )
    return batches, not wrong


def _split(spec: Cifar, batches: dict, names, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for name, _ in names:
        batch = batches[name]
        data, labels = batch.get("data"), batch.get(spec.labels_key)
        if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072:
            raise DataError(f"{path / name}: 'data' must be an N×3072 uint8 array (3×32×32).")
        if labels is None or len(labels) != len(data):
            raise DataError(f"{path / name}: '{spec.labels_key}' must hold one label per image.")
        xs.append(torch.from_numpy(data.astype(np.uint8).reshape(-1, 3, 32, 32)))
        ys.append(torch.as_tensor(np.asarray(labels, dtype=np.int64)))
    return torch.cat(xs), torch.cat(ys)


def load_cifar(name: str, ctx, unverified_data: bool) -> Dataset:
    from trainlab.data.images import ResizePolicy
    from trainlab.data.root import resolve_root

    spec = CIFARS[name]
    root = resolve_root(ctx.data_dir, dataset=name)
    here = (root / spec.folder).is_dir() or (root / spec.archive).is_file()
    if ctx.sources == ("local",) and not here:
        raise DataError(
            f"{spec.folder}/ (or {spec.archive}) is not in {root}. Download {spec.url} and "
            f"put it into {root}/, or fetch it with the network: trainlab data fetch {name}."
        )
    folder = _files(spec, root, ctx.log)
    batches, verified = _read(spec, folder, unverified_data)
    train_x, train_y = _split(spec, batches, spec.train, folder)
    test_x, test_y = _split(spec, batches, spec.test, folder)
    classes = [str(c) for c in batches[spec.meta[0]].get(spec.classes_key, [])]
    if len(classes) < 2:
        raise DataError(f"{folder / spec.meta[0]}: no '{spec.classes_key}' list of class names.")
    mean, std = channel_stats(train_x)
    return Dataset(
        name,
        train_x,
        train_y,
        test_x,
        test_y,
        classes=classes,
        mean=mean,
        std=std,
        info={
            "root": str(root),
            "verified": verified,
            "files": str(folder),
            "preprocess": ResizePolicy((32, 32), 3, "crop").to_dict(),
        },
    )


Unverified = Annotated[
    bool, Opt("cifar: read a copy whose md5s differ from the published ones (recorded)")
]


@register_dataset(
    "cifar10", kind="images", summary="CIFAR-10: 32×32 colour, 10 classes", files=True
)
def cifar10(ctx, unverified_data: Unverified = False):
    return load_cifar("cifar10", ctx, unverified_data)


@register_dataset(
    "cifar100", kind="images", summary="CIFAR-100: 32×32 colour, 100 classes", files=True
)
def cifar100(ctx, unverified_data: Unverified = False):
    return load_cifar("cifar100", ctx, unverified_data)
