"""CIFAR-10 and CIFAR-100 from files written here in the exact format (the pickled batches,
in the folder and in the .tar.gz), since the real ones cannot be fetched in this workplace."""

from __future__ import annotations

import json
import pickle
import tarfile

import numpy as np
import pytest

from trainlab.cli import main
from trainlab.data.cifar import CIFARS

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _batch(images, labels, key="labels"):
    x = np.zeros((len(images), 3, 32, 32), np.uint8)
    for c, weight in enumerate((1.0, 0.6, 0.3)):  # the digits in an orange tint, padded to 32
        x[:, c, 2:30, 2:30] = (images[:, 0].numpy() * weight).astype(np.uint8)
    return {"batch_label": "b", key: labels.tolist(), "data": x.reshape(len(x), 3072)}


def write_cifar10(root, mnist_small):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(5):
        part = slice(200 * i, 200 * (i + 1))
        batch = _batch(mnist_small.train_x[part], mnist_small.train_y[part])
        (folder / f"data_batch_{i + 1}").write_bytes(pickle.dumps(batch))
    test = _batch(mnist_small.test_x[:200], mnist_small.test_y[:200])
    (folder / "test_batch").write_bytes(pickle.dumps(test))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": CLASSES}))
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


def test_a_batch_that_would_run_code_is_refused(cifar_root, capsys):
    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    (cifar_root / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps(Evil()))
    argv = ["train", "--dataset", "cifar10", "--data-dir", str(cifar_root), "--unverified-data"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "refused: the file names builtins.print" in captured.err and "ran" not in captured.out
