"""Read and write IDX files (the MNIST family's format), plain or gzip-compressed.

Example:
    >>> images = read_idx("MNIST/raw/t10k-images-idx3-ubyte.gz", ndim=3)
    >>> images.shape
    torch.Size([10000, 28, 28])

The layout: two zero bytes, a dtype code, the number of dimensions, each dimension as a
big-endian int32, then the items, big-endian. Every check failure raises ``DataError`` naming the
file, what was expected and what was found.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np
import torch

from trainlab.errors import DataError

# IDX dtype codes -> big-endian numpy dtypes.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# The largest decompressed IDX file read (the biggest of the family is 47 MB): a gzip bomb
# stops here instead of filling memory.
MAX_DECOMPRESSED = 1 << 30
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in IDX_DTYPES.items()}


def read_bytes(path: str | Path) -> bytes:
    """The file's content, decompressed when the name ends in ``.gz``."""
    path = Path(path)
    try:
        if path.suffix != ".gz":
            return path.read_bytes()
        with gzip.open(path, "rb") as f:
            content = f.read(MAX_DECOMPRESSED + 1)
        if len(content) > MAX_DECOMPRESSED:
            raise DataError(
                f"{path}: decompresses to more than {MAX_DECOMPRESSED // 2**20} MiB, far more "
                "than any dataset of this format; refused (a damaged or hostile file)."
            )
        return content
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except DataError:
        raise
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(
            f"{path}: cannot be read or decompressed ({e}). Delete it and fetch it again "
            "(`trainlab data fetch NAME`)."
        ) from None


def md5_of(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()


def parse_idx(
    content: bytes, name: str, ndim: int | None = None, dtype: str = "uint8"
) -> torch.Tensor:
    """Parse IDX bytes, checking magic, dtype, dimensions and item count.

    Args:
        content: the decompressed file content.
        name: the file name, for error messages.
        ndim: expected number of dimensions, or None for any.
        dtype: expected numpy dtype name of the items.

    Returns:
        A tensor with the file's shape (uint8 for MNIST-family files).
    """
    fix = "Delete the file and fetch it again (`trainlab data fetch NAME`)."
    if len(content) < 4:
        raise DataError(f"{name}: too short to be an IDX file ({len(content)} bytes). {fix}")
    zero, code, dims = content[0:2], content[2], content[3]
    if zero != b"\x00\x00" or code not in IDX_DTYPES:
        raise DataError(
            f"{name}: not an IDX file (magic number {content[:4].hex()}, expected 0000 then a "
            f"dtype code among {sorted(hex(c) for c in IDX_DTYPES)} and the dimension count). {fix}"
        )
    item = IDX_DTYPES[code]
    if item.newbyteorder("=") != np.dtype(dtype):
        raise DataError(f"{name}: items are {item.newbyteorder('=')}, expected {dtype}. {fix}")
    if ndim is not None and dims != ndim:
        raise DataError(f"{name}: {dims} dimensions, expected {ndim}. {fix}")
    header = 4 + 4 * dims
    if len(content) < header:
        raise DataError(f"{name}: header cut short ({len(content)} bytes, need {header}). {fix}")
    shape = tuple(int(d) for d in np.frombuffer(content, dtype=">i4", count=dims, offset=4))
    if any(d < 0 for d in shape):
        raise DataError(f"{name}: negative dimension in the header {shape}. {fix}")
    # Python ints: a header cannot overflow the product into a small, matching size; and the
    # size is checked against the file before anything is allocated.
    expected = item.itemsize
    for d in shape:
        expected *= d
    got = len(content) - header
    if got != expected:
        raise DataError(
            f"{name}: header promises {shape} ({expected} bytes of data) but the file holds "
            f"{got} bytes: it is "
            f"{'truncated' if got < expected else 'longer than its header says'}. "
            f"{fix}"
        )
    array = np.frombuffer(content, dtype=item, offset=header).reshape(shape)
    return torch.from_numpy(array.astype(item.newbyteorder("="), copy=True))


def read_idx(path: str | Path, ndim: int | None = None, dtype: str = "uint8") -> torch.Tensor:
    """Read an IDX file (``.gz`` or plain); see ``parse_idx``."""
    return parse_idx(read_bytes(path), str(path), ndim, dtype)


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX encoding of an array (the inverse of ``parse_idx``)."""
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise DataError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    return header + array.astype(IDX_DTYPES[code], copy=False).tobytes()
