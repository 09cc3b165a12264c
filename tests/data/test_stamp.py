"""The verification stamp: a file's md5 is computed once, and a file changed since is caught."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from helpers import assert_clean_error, run_here
from trainlab.data import idx, mnist_family
from trainlab.data.mnist_family import STAMP, local_files
from trainlab.errors import DataError


@pytest.fixture
def root(tmp_path, mnist_root) -> Path:
    """Real MNIST, decompressed, in a root of its own (so edits touch only copies)."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for source in sorted((mnist_root / "MNIST" / "raw").glob("*-ubyte*")):
        content = source.read_bytes()
        if source.suffix == ".gz":
            content = gzip.decompress(content)
        (raw / source.name.removesuffix(".gz")).write_bytes(content)
    return tmp_path


@pytest.fixture
def hashes(monkeypatch) -> list[int]:
    """Counts the md5 computations (the real function still runs)."""
    calls: list[int] = []
    real = idx.md5_of

    def counted(content: bytes) -> str:
        calls.append(len(content))
        return real(content)

    monkeypatch.setattr(mnist_family, "md5_of", counted)
    return calls


def test_files_are_hashed_once_then_trusted_while_unchanged(root, hashes):
    first = local_files("mnist", root)
    assert all(f.verified for f in first.values()) and len(hashes) == 4
    stamp = json.loads((root / "MNIST" / "raw" / STAMP).read_text())
    assert sorted(stamp) == sorted(mnist_family.SPLIT_FILES)
    assert {"size", "mtime_ns", "ctime_ns", "md5"} <= set(stamp["t10k-images-idx3-ubyte"])
    hashes.clear()
    again = local_files("mnist", root)
    assert all(f.verified for f in again.values()) and hashes == []
    local_files("mnist", root, verify=True)  # what `data info --verify` asks for
    assert len(hashes) == 4


def test_a_file_changed_after_its_stamp_is_caught_even_with_its_mtime_restored(root):
    local_files("mnist", root)
    path = root / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[5000] ^= 0xFF  # one pixel, same size
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns
    with pytest.raises(DataError, match="md5 of its decompressed content"):
        local_files("mnist", root)


def test_data_info_verify_hashes_again_whatever_the_stamp_says(root):
    env = {"TRAINLAB_DATA": str(root)}
    assert run_here("data", "info", "mnist", env=env).returncode == 0
    raw = root / "MNIST" / "raw"
    path = raw / "train-labels-idx1-ubyte"
    data = bytearray(path.read_bytes())
    data[100] = (data[100] + 1) % 10
    path.write_bytes(bytes(data))
    # a stamp that claims the edited file (as a stale or tampered stamp would)
    stamp = json.loads((raw / STAMP).read_text())
    stamp[path.name].update(mnist_family._identity(path))
    (raw / STAMP).write_text(json.dumps(stamp))
    assert run_here("data", "info", "mnist", env=env).returncode == 0  # trusted: not hashed
    proc = run_here("data", "info", "mnist", "--verify", env=env)
    assert_clean_error(proc, "train-labels-idx1-ubyte", "md5")
