import gzip

import numpy as np
import pytest
import torch

from trainlab.data.idx import encode_idx, parse_idx, read_idx
from trainlab.errors import DataError


def test_roundtrip_plain_and_gzip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    (tmp_path / "a").write_bytes(encode_idx(images))
    (tmp_path / "a.gz").write_bytes(gzip.compress(encode_idx(images)))
    for name in ("a", "a.gz"):
        got = read_idx(tmp_path / name, ndim=3)
        assert got.dtype == torch.uint8
        assert torch.equal(got, torch.from_numpy(images))


def test_other_dtypes_roundtrip():
    values = np.arange(12, dtype=np.int32).reshape(3, 4) - 5
    got = parse_idx(encode_idx(values), "x", ndim=2, dtype="int32")
    assert torch.equal(got, torch.from_numpy(values))


def test_wrong_magic():
    content = bytearray(encode_idx(np.zeros((2, 3), dtype=np.uint8)))
    content[0] = 7
    with pytest.raises(DataError, match="not an IDX file"):
        parse_idx(bytes(content), "bad-file")


def test_short_data_is_truncated():
    content = encode_idx(np.zeros((10, 28, 28), dtype=np.uint8))
    with pytest.raises(DataError, match="truncated") as e:
        parse_idx(content[:-100], "short-file", ndim=3)
    assert "short-file" in str(e.value)


def test_extra_data_is_refused():
    content = encode_idx(np.zeros((10,), dtype=np.uint8)) + b"\x00"
    with pytest.raises(DataError, match="longer than its header"):
        parse_idx(content, "long-file", ndim=1)


def test_wrong_dimensions_and_dtype():
    labels = encode_idx(np.zeros((10,), dtype=np.uint8))
    with pytest.raises(DataError, match="1 dimensions, expected 3"):
        parse_idx(labels, "labels-as-images", ndim=3)
    floats = encode_idx(np.zeros((4,), dtype=np.float32))
    with pytest.raises(DataError, match="expected uint8"):
        parse_idx(floats, "floats", ndim=1)


def test_header_cut_short():
    with pytest.raises(DataError, match="header cut short"):
        parse_idx(bytes([0, 0, 8, 3, 0, 0]), "h", ndim=3)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match="cannot be read or decompressed"):
        read_idx(path)
