"""CIFAR-10 and CIFAR-100 from files written here in the exact format (the pickled batches,
in the folder and in the .tar.gz), since the real ones cannot be fetched in this workplace."""

from __future__ import annotations

import json
import os
import pickle
import tarfile

import numpy as np
import pytest
import torch

from trainlab.cli import main
from trainlab.data.cifar import CIFARS

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _batch(images, labels, key="labels"):
    x = np.zeros((len(images), 3, 32, 32), np.uint8)
    for c, weight in enumerate((1.0, 0.6, 0.3)):  # the digits in an orange tint, padded to 32
        x[:, c, 2:30, 2:30] = (images[:, 0].numpy() * weight).astype(np.uint8)
    return {"batch_label": "b", key: labels.tolist(), "data": x.reshape(len(x), 3072)}


def write_cifar10(root, mnist_small, protocol=None):
    """CIFAR-10's files as a user writes them with this machine's numpy and pickle."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(5):
        part = slice(200 * i, 200 * (i + 1))
        batch = _batch(mnist_small.train_x[part], mnist_small.train_y[part])
        (folder / f"data_batch_{i + 1}").write_bytes(pickle.dumps(batch, protocol=protocol))
    test = _batch(mnist_small.test_x[:200], mnist_small.test_y[:200])
    (folder / "test_batch").write_bytes(pickle.dumps(test, protocol=protocol))
    meta = pickle.dumps({"label_names": CLASSES}, protocol=protocol)
    (folder / "batches.meta").write_bytes(meta)
    return folder


@pytest.fixture
def cifar_root(tmp_path, mnist_small):
    write_cifar10(tmp_path / "root", mnist_small)
    return tmp_path / "root"


def test_the_md5s_are_torchvisions():
    from torchvision.datasets import CIFAR10, CIFAR100

    for ours, theirs in ((CIFARS["cifar10"], CIFAR10), (CIFARS["cifar100"], CIFAR100)):
        assert ours.archive_md5 == theirs.tgz_md5 and ours.url == theirs.url
        assert [list(f) for f in ours.train] == theirs.train_list
        assert [list(f) for f in ours.test] == theirs.test_list
        assert ours.meta == (theirs.meta["filename"], theirs.meta["md5"])


def test_an_unverified_copy_is_refused_naming_the_md5s(cifar_root, capsys):
    assert main(["train", "--dataset", "cifar10", "--data-dir", str(cifar_root)]) == 2
    err = capsys.readouterr().err
    assert "expected c99cafc152244af753f735de768cd75f" in err and "--unverified-data" in err


@pytest.mark.parametrize("form", ["folder", "tar.gz"])
def test_it_trains_evaluates_and_predicts_with_unverified_data(cifar_root, tmp_path, form, capsys):
    if form == "tar.gz":
        with tarfile.open(cifar_root / "cifar-10-python.tar.gz", "w:gz") as tar:
            tar.add(cifar_root / "cifar-10-batches-py", arcname="cifar-10-batches-py")
        import shutil

        shutil.rmtree(cifar_root / "cifar-10-batches-py")
    args = ["train", "--dataset", "cifar10", "--data-dir", str(cifar_root), "--unverified-data"]
    args += ["--epochs", "2", "--device", "cpu", "--runs-dir", str(tmp_path), "--run-name", "c"]
    assert main([*args, "--json"]) == 0
    final = json.loads(capsys.readouterr().out)["final"]
    assert final["test_n"] == 200 and final["test_acc"] > 0.5
    config = (tmp_path / "c" / "config.toml").read_text()
    assert "unverified_data = true" in config
    if form == "folder":  # --augment picks crops and flips for colour images, and says so
        aug = ["train", "--dataset", "cifar10", "--data-dir", str(cifar_root), "--augment"]
        aug += ["--unverified-data", "--device", "cpu", "--runs-dir", str(tmp_path), "--quiet"]
        aug += ["--run-name", "aug"]
        assert main(aug) == 0
        capsys.readouterr()
        assert (
            'augment = "random crop (±4 px, reflected) and left-right flip"'
            in (tmp_path / "aug" / "config.toml").read_text()
        )
    assert main(["eval", str(tmp_path / "c"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(final["test_acc"])
    from PIL import Image

    Image.new("RGB", (50, 40), (200, 120, 60)).save(tmp_path / "photo.jpg")
    assert main(["predict", str(tmp_path / "c"), str(tmp_path / "photo.jpg"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["predictions"][0]["label"] in CLASSES


def test_offline_with_no_files_the_error_names_the_url_and_the_folder(tmp_path):
    from trainlab.data import load_dataset
    from trainlab.errors import DataError

    with pytest.raises(DataError) as refused:
        load_dataset("cifar100", tmp_path, sources=("local",))
    message = str(refused.value)
    assert CIFARS["cifar100"].url in message and str(tmp_path) in message


@pytest.mark.parametrize("protocol", [2, 4, 5, None])
def test_files_written_by_todays_numpy_are_read_with_any_pickle_protocol(
    tmp_path, mnist_small, protocol
):
    """numpy 2 writes ``numpy._core.multiarray._reconstruct`` (protocols 2-4) and
    ``numpy._core.numeric._frombuffer`` (protocol 5); None is this Python's default."""
    from trainlab.data import load_dataset

    folder = write_cifar10(tmp_path, mnist_small, protocol)
    data = load_dataset("cifar10", tmp_path, unverified_data=True, sources=("local",))
    written = pickle.loads((folder / "data_batch_2").read_bytes())
    assert data.train_x.shape == (1000, 3, 32, 32) and data.train_x.dtype == torch.uint8
    assert np.array_equal(data.train_x[200:400].reshape(200, 3072).numpy(), written["data"])
    assert data.train_y[200:400].tolist() == written["labels"]
    assert data.classes == CLASSES and not data.info["verified"]


def test_a_batch_in_cifars_own_form_with_bytes_keys_is_read(mnist_small):
    """CIFAR's page reads its batches with encoding='bytes' (keys b'data', b'labels'); a
    batch written back that way is read too."""
    from trainlab.data.cifar import read_batch

    batch = _batch(mnist_small.train_x[:50], mnist_small.train_y[:50])
    content = pickle.dumps({key.encode(): value for key, value in batch.items()}, protocol=2)
    images, labels = read_batch(content, "data_batch_1")
    assert np.array_equal(images.reshape(50, 3072).numpy(), batch["data"])
    assert labels.tolist() == batch["labels"]


def test_a_batch_that_would_run_code_is_refused_naming_what_it_asked_for(
    cifar_root, tmp_path, capsys
):
    canary = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {canary}",))

    (cifar_root / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps(Evil()))
    argv = ["train", "--dataset", "cifar10", "--data-dir", str(cifar_root), "--unverified-data"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"test_batch: refused: the file asks for {os.system.__module__}.system" in err
    assert "numpy arrays, lists, dicts, numbers and strings only" in err
    assert not canary.exists()


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ({"data": np.zeros((4, 3, 32, 32), np.uint8), "labels": [0] * 4}, "shape 4×3×32×32"),
        ({"data": np.zeros((4, 3072)), "labels": [0] * 4}, "pixels 0-255 (uint8), got a float64"),
        ({"data": np.zeros((4, 3072), np.uint8), "labels": ["cat"] * 4}, "class indices"),
        ({"data": np.zeros((4, 3072), np.uint8), "labels": [0] * 3}, "3 label(s) for 4 image"),
        ({"data": np.zeros((4, 3072), np.uint8), "labels": [12] * 4}, "goes up to 12, but"),
        ({"images": np.zeros((4, 3072), np.uint8)}, "no 'data' in the batch (its keys: 'images')"),
    ],
)
def test_a_batch_of_the_wrong_shape_says_what_it_holds(batch, message):
    from trainlab.data.cifar import read_batch
    from trainlab.errors import DataError

    with pytest.raises(DataError) as refused:
        read_batch(pickle.dumps(batch), "data_batch_1", num_classes=10)
    assert message in str(refused.value)
