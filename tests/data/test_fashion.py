"""Fashion-MNIST offline: Debian's package as a source, every file verified by its content md5."""

from __future__ import annotations

import dataclasses
import gzip
import shutil
from pathlib import Path

import pytest

from helpers import assert_clean_error, run_cli, run_here
from trainlab.data import mnist_family
from trainlab.data.mnist_family import SPLIT_FILES, ensure_files
from trainlab.errors import DataError

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
needs_debian = pytest.mark.skipif(
    not DEBIAN.is_dir(), reason="apt-get install dataset-fashion-mnist (.ci/run does)"
)


def _with_system_dirs(monkeypatch, *folders: Path) -> None:
    family = dataclasses.replace(
        mnist_family.FAMILIES["fashion-mnist"], system_dirs=tuple(map(str, folders))
    )
    monkeypatch.setitem(mnist_family.FAMILIES, "fashion-mnist", family)


@needs_debian
def test_fetch_copies_the_debian_files_and_verifies_all_four(tmp_path):
    proc = run_here("data", "fetch", "fashion-mnist", "--data-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count(f"from {DEBIAN}") == 4
    assert "verified: yes" in proc.stdout
    raw = tmp_path / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.glob("*-ubyte")) == sorted(SPLIT_FILES)
    info = run_here("data", "info", "fashion-mnist", "--data-dir", str(tmp_path), "--json")
    assert '"verified": true' in info.stdout and '"train": 60000' in info.stdout


@needs_debian
def test_a_corrupted_copy_is_refused_with_the_md5_message(tmp_path, monkeypatch):
    system = tmp_path / "system"
    shutil.copytree(DEBIAN, system)
    bad = system / "t10k-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress(bad.read_bytes()))
    content[-1] = (content[-1] + 1) % 10  # one label changed
    bad.write_bytes(gzip.compress(bytes(content)))
    _with_system_dirs(monkeypatch, system)
    with pytest.raises(DataError) as e:
        ensure_files("fashion-mnist", tmp_path / "root")
    message = str(e.value)
    assert str(bad) in message and "15d484375f8d13e6eb1aabb0c3f46965" in message
    assert not (tmp_path / "root" / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").exists()


def test_with_nothing_anywhere_the_error_says_where_and_apt_get(tmp_path, monkeypatch):
    _with_system_dirs(monkeypatch)
    with pytest.raises(DataError) as e:
        ensure_files("fashion-mnist", tmp_path, ("local", "system"))
    message = str(e.value)
    assert str(tmp_path / "FashionMNIST" / "raw") in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "train-images-idx3-ubyte" in message


def test_the_cli_error_for_missing_fashion_mnist_is_clean(tmp_path):
    proc = run_cli(
        "data", "fetch", "fashion-mnist", "--data-dir", str(tmp_path), "--source", "local"
    )
    assert_clean_error(proc, "FashionMNIST", "apt-get install dataset-fashion-mnist")
