"""torchvision's models by name: trained on a folder dataset, exported with parity, and their
ImageNet weights loaded from the hub cache (a file saved here: the hub cannot be reached)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from trainlab.cli import main


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory, mnist_small):
    root = tmp_path_factory.mktemp("digit-photos")
    pairs = zip(mnist_small.train_x[:300], mnist_small.train_y[:300], strict=True)
    for i, (x, y) in enumerate(pairs):
        folder = root / f"digit {int(y)}"
        folder.mkdir(exist_ok=True)
        rgb = np.repeat(x[0].numpy()[..., None], 3, -1) * np.array([1.0, 0.8, 0.5])
        Image.fromarray(rgb.astype(np.uint8)).resize((40, 40)).save(folder / f"{i}.png")
    return root


def _train(folder, runs, *extra, capsys) -> dict:
    args = ["train", "--dataset", str(folder), "--model", "torchvision:resnet18", "--epochs", "1"]
    args += ["--image-size", "32", "--device", "cpu", "--runs-dir", str(runs), "--json", *extra]
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_resnet18_from_scratch_trains_on_a_folder_and_exports_with_parity(
    digits_folder, tmp_path, capsys
):
    summary = _train(digits_folder, tmp_path, "--run-name", "r", "--no-pretrained", capsys=capsys)
    assert summary["final"]["test_n"] == 60
    from trainlab.engine.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(tmp_path / "r")
    assert checkpoint["model"]["name"] == "torchvision:resnet18"
    assert checkpoint["data"]["transform"]["mean"] == [0.485, 0.456, 0.406]  # ImageNet's
    assert main(["export", str(tmp_path / "r"), "--json"]) == 0
    parity = json.loads(capsys.readouterr().out)["parity"]
    assert parity["inputs"] == "test images" and parity["same_argmax"]
    assert parity["max_abs_logit_diff"] <= parity["tolerance"] and parity["images"] == 60


@pytest.mark.slow
def test_pretrained_weights_come_from_the_hub_cache_and_the_head_is_new(
    digits_folder, tmp_path, monkeypatch, capsys
):
    import torchvision.models as tv

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(7)
    saved = tv.resnet18(weights=None).state_dict()  # stands for ImageNet's: saved by us
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(saved, cache / "resnet18-f37072fd.pth")
    _train(
        digits_folder,
        tmp_path,
        "--run-name",
        "p",
        "--pretrained",
        "--lr",
        "1e-9",
        "--momentum",
        "0",
        "--weight-decay",
        "0",
        capsys=capsys,
    )
    from trainlab.engine.checkpoint import load_checkpoint

    trained = load_checkpoint(tmp_path / "p" / "last.pt")["state_dict"]
    assert torch.allclose(trained["conv1.weight"], saved["conv1.weight"], atol=1e-6)
    assert trained["fc.weight"].shape == (10, 512)  # the head: the folder's 10 classes


def test_offline_without_the_file_the_error_names_it_and_the_ways_on(
    digits_folder, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    args = ["train", "--dataset", str(digits_folder), "--model", "torchvision:resnet18"]
    assert main([*args, "--pretrained", "--image-size", "32", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "resnet18-f37072fd.pth" in err and str(tmp_path / "empty") in err
    assert "--weights PATH" in err and "--no-pretrained" in err


def test_an_unknown_torchvision_name_gets_a_did_you_mean(capsys):
    assert main(["train", "--model", "torchvision:resnet19"]) == 2
    assert "Did you mean 'resnet18'" in capsys.readouterr().err
