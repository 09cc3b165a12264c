"""CIFAR-10 and CIFAR-100 in torchvision's layout: ``ROOT/cifar-10-batches-py/`` (or the
``cifar-10-python.tar.gz`` beside it), verified by the md5s torchvision's classes carry.

Example:
    >>> from trainlab.data import load_dataset
    >>> data = load_dataset("cifar10")            # fetched when the network allows it
    >>> data.input_shape, data.classes[:3]
    ((3, 32, 32), ['airplane', 'automobile', 'bird'])

A copy whose md5s differ is refused unless ``unverified_data`` (``--unverified-data``) is set;
then it is read, shape-checked and recorded as unverified. The batches are pickles, so they are
read by ``safe_pickle``, which builds numpy arrays (as numpy 1.x and 2.x write them, any pickle
protocol), lists, dicts, numbers and strings and nothing else: a file that names any other
class or function is refused, by that name, instead of run.
"""

from __future__ import annotations

import hashlib
import logging
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch

from trainlab.data.dataset import Dataset, channel_stats
from trainlab.data.registry import register_dataset
from trainlab.data.safe_pickle import load_arrays
from trainlab.errors import DataError
from trainlab.options import Opt

_LOG = logging.getLogger(__name__)


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


def _unpickle(content: bytes, path: str) -> dict:
    """The dict a batch file holds, its keys as strings (``b'data'`` or ``'data'``)."""
    value = load_arrays(
        content,
        path,
        "a CIFAR batch",
        "pickle.dump({'data': x, 'labels': y}, f) with x a uint8 N×3072 numpy array",
    )
    if not isinstance(value, dict):
        raise DataError(f"{path}: not a CIFAR batch (a {type(value).__name__}, not a dict).")
    return {_text(key): item for key, item in value.items()}


def _text(value: Any) -> Any:
    """Bytes as text: batches written as CIFAR's own are read back (``b'data'``)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _described(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {'×'.join(map(str, value.shape)) or '()'}"
    return f"a {type(value).__name__}"


def read_batch(
    content: bytes, path: str, labels_key: str = "labels", num_classes: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch file: its images (uint8 N×3×32×32) and labels (int64 N), as tensors.

    Args:
        content: the file's bytes.
        path: what to call the file in errors.
        labels_key: "labels" (CIFAR-10) or "fine_labels" (CIFAR-100).
        num_classes: labels must lie below it (the meta file's class names), when given.

    Raises:
        DataError: the file is not a pickled dict of a uint8 N×3072 array and N labels, or it
            names anything but numpy arrays and plain values.
    """
    batch = _unpickle(content, path)
    data, labels = batch.get("data"), batch.get(labels_key)
    if data is None or labels is None:
        missing = "data" if data is None else labels_key
        raise DataError(
            f"{path}: no '{missing}' in the batch (its keys: "
            f"{', '.join(repr(k) for k in list(batch)[:10]) or 'none'}); a CIFAR batch holds "
            f"'data' (a uint8 N×3072 array) and '{labels_key}' (N class indices)."
        )
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(
            f"{path}: 'data' must be a uint8 N×3072 array (each row 3×32×32: the red, green "
            f"and blue planes), got {_described(data)}."
        )
    whole = data.dtype.kind in "iu"  # another integer type holding 0-255 is read as uint8
    if data.dtype != np.uint8 and not (
        whole and (not data.size or 0 <= data.min() <= data.max() <= 255)
    ):
        raise DataError(
            f"{path}: 'data' must hold pixels 0-255 (uint8), got {_described(data)}"
            + (f" with values {data.min()} to {data.max()}" if whole and data.size else "")
            + "."
        )
    try:
        labels = np.asarray(labels)
    except Exception:  # noqa: BLE001 - ragged or odd values: refused below by their type
        labels = None
    if labels is None or labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(
            f"{path}: '{labels_key}' must be a list of class indices (integers), got "
            f"{_described(batch[labels_key])}."
        )
    if len(labels) != len(data) or (len(labels) and labels.min() < 0):
        raise DataError(
            f"{path}: '{labels_key}' must hold one class index (0 or more) per image: "
            f"{len(labels)} label(s) for {len(data)} image(s)"
            + (f", the smallest {labels.min()}." if len(labels) else ".")
        )
    if num_classes is not None and len(labels) and labels.max() >= num_classes:
        raise DataError(
            f"{path}: '{labels_key}' goes up to {labels.max()}, but the meta file names "
            f"{num_classes} classes (labels 0 to {num_classes - 1})."
        )
    images = torch.from_numpy(data.astype(np.uint8).reshape(-1, 3, 32, 32))
    return images, torch.from_numpy(labels.astype(np.int64))


def _md5(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()  # noqa: S324 - the published checksums are md5s


def _files(spec: Cifar, root: Path) -> Path:
    """The batch folder, extracted from the archive or fetched when it is not there."""
    folder = root / spec.folder
    if folder.is_dir():
        return folder
    archive = root / spec.archive
    if not archive.is_file():
        _download(spec, archive)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(root, filter="data")  # no paths outside root, no links out
    if not folder.is_dir():
        raise DataError(f"{archive}: it holds no {spec.folder}/ folder; is it the right file?")
    return folder


def _download(spec: Cifar, archive: Path) -> None:
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
    _LOG.info(f"fetched {spec.archive} ({len(content) / 1e6:.0f} MB) into {archive.parent}")


def _read(spec: Cifar, folder: Path, unverified: bool) -> tuple[dict[str, bytes], bool]:
    """Every file's bytes, each file's md5 checked (or, unverified, only reported) before any
    of them is unpickled."""
    wrong, contents = [], {}
    for name, md5 in (*spec.train, *spec.test, spec.meta):
        path = folder / name
        if not path.is_file():
            raise DataError(
                f"{path}: missing; {folder} must hold {', '.join(n for n, _ in spec.train)}, "
                f"{spec.test[0][0]} and {spec.meta[0]} (extract {spec.archive} there)."
            )
        contents[name] = path.read_bytes()
        got = _md5(contents[name])
        if got != md5:
            wrong.append(f"{name}: md5 {got}, expected {md5}")
    if wrong and not unverified:
        raise DataError(
            f"{folder}: these files are not the published CIFAR files ({'; '.join(wrong)}). "
            "Fetch them again, or, for a copy of your own in the same format, pass "
            "--unverified-data (it is then read, checked for shape and recorded as unverified)."
        )
    return contents, not wrong


def _split(spec: Cifar, contents: dict, names, folder: Path, classes: list[str]):
    """The images and labels of the batches ``names``, the labels within ``classes``."""
    xs, ys = [], []
    for name, _ in names:
        x, y = read_batch(contents[name], str(folder / name), spec.labels_key, len(classes))
        xs.append(x)
        ys.append(y)
    return torch.cat(xs), torch.cat(ys)


def _classes(spec: Cifar, contents: dict, folder: Path) -> list[str]:
    path = folder / spec.meta[0]
    names = _unpickle(contents[spec.meta[0]], str(path)).get(spec.classes_key)
    if not isinstance(names, list | tuple) or not all(isinstance(n, str | bytes) for n in names):
        names = []
    if len(names) < 2:
        raise DataError(f"{path}: no '{spec.classes_key}' list of class names (two or more).")
    return [str(_text(n)) for n in names]


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
    folder = _files(spec, root)
    contents, verified = _read(spec, folder, unverified_data)
    classes = _classes(spec, contents, folder)
    train_x, train_y = _split(spec, contents, spec.train, folder, classes)
    test_x, test_y = _split(spec, contents, spec.test, folder, classes)
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
