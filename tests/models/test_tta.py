"""--tta flip: a run scored on each image and its mirror, the same way in its epochs, eval,
predict (and so serve) and the exported ONNX graph; refused for digits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from data.test_cifar import write_cifar10
from trainlab.cli import main
from trainlab.engine.loading import load_model


@pytest.fixture(scope="module")
def tta_run(tmp_path_factory, mnist_small):
    tmp = tmp_path_factory.mktemp("tta")
    write_cifar10(tmp / "root", mnist_small)
    args = ["train", "--dataset", "cifar10", "--data-dir", str(tmp / "root"), "--unverified-data"]
    args += ["--epochs", "2", "--device", "cpu", "--runs-dir", str(tmp), "--run-name", "t"]
    assert main([*args, "--tta", "flip", "--amp", "off", "--quiet"]) == 0
    return tmp / "t"


def _by_hand(run, x: torch.Tensor) -> torch.Tensor:
    """The checkpoint's model on the images and on their mirrors, logits averaged."""
    from trainlab.data.batches import InputTransform

    model, ckpt = load_model(run / "best.pt")
    transform = InputTransform.from_dict(ckpt["data"]["transform"])
    model.eval()
    with torch.inference_mode():
        x = transform(x)
        return (model(x) + model(x.flip(-1))) / 2


def test_the_runs_test_figure_is_the_flip_averaged_one(tta_run, capsys):
    from trainlab.data import load_dataset

    config = (tta_run / "config.toml").read_text()
    assert 'tta = "flip"' in config
    final = json.loads((tta_run / "metrics.jsonl").read_text().splitlines()[-1])
    data = load_dataset("cifar10", tta_run.parent / "root", unverified_data=True)
    logits = _by_hand(tta_run, data.test_x)
    by_hand = (logits.argmax(1) == data.test_y).float().mean().item()
    assert final["test_acc"] == pytest.approx(by_hand)
    saved = np.load(tta_run / "predictions.npz")
    assert np.allclose(saved["probs"], logits.softmax(1).numpy(), atol=1e-3)  # stored as float16
    assert main(["eval", str(tta_run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(final["test_acc"])


def test_predict_answers_the_same_for_a_photo_and_its_mirror(tta_run, tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 255, (40, 52, 3), dtype=np.uint8))
    photo.save(tmp_path / "a.png")
    photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp_path / "b.png")
    files = [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    assert main(["predict", str(tta_run), *files, "--json"]) == 0
    a, b = json.loads(capsys.readouterr().out)["predictions"]
    # the same up to the resize's rounding, which is not exactly mirror-symmetric
    assert a["label"] == b["label"] and a["probability"] == pytest.approx(b["probability"], 1e-4)
    assert [t["label"] for t in a["top"]] == [t["label"] for t in b["top"]]
    assert [t["probability"] for t in a["top"]] == pytest.approx(
        [t["probability"] for t in b["top"]], 1e-4
    )


def test_the_exported_graph_averages_the_flip_too(tta_run, tmp_path):
    import onnxruntime

    from trainlab.inference.export import export_model

    export_model(tta_run, tmp_path / "m.onnx", data_dir=str(tta_run.parent / "root"))
    session = onnxruntime.InferenceSession(
        str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]
    )
    pixels = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    x = pixels.float() / 255  # the graph's input: floats in [0, 1]
    name = session.get_inputs()[0].name
    out = session.run(None, {name: x.numpy()})[0]
    mirrored = session.run(None, {name: x.flip(-1).numpy()})[0]
    assert np.allclose(out, mirrored, atol=1e-5)  # invariant to the mirror: both are scored
    assert np.allclose(out, _by_hand(tta_run, pixels).numpy(), atol=1e-4)


def test_digits_are_never_flipped(tmp_path, mnist_root, capsys):
    args = ["train", "--data-dir", str(mnist_root), "--runs-dir", str(tmp_path), "--tta", "flip"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--tta flip is for natural images" in err and "mnist" in err


def test_features_are_not_cached_under_tta():
    from trainlab.config import TrainConfig
    from trainlab.engine.features import why_not

    cfg = TrainConfig(freeze_features=True, tta="flip")
    assert why_not(cfg, None, None) == "--tta flip scores the mirrored images too"
