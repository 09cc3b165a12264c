"""Run directories written before the registries (checkpoint format version 1) still work:
they evaluate to the figures recorded when they were made, resume, predict and export.

The fixtures in tests/fixtures/v1/ were written by trainlab at commit ab6768d on an AMD EPYC
(tests/fixtures/make_v1.sh says how), with eval.json holding what `trainlab eval --json` said.

The promise checked here is the one that holds across machines: float32 sums are not
bit-identical across CPU kinds (other kernels, other orders of accumulation), so losses agree
within 1e-6 relative, and predictions are identical (no test image is within 1e-4 of a tie,
checked below, so no rounding can flip one). A version-1 run records no precision, so it scores
in float32 on every CPU, with or without native bf16 (both are forced below).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trainlab.cli import main
from trainlab.engine.checkpoint import load_checkpoint

V1 = Path(__file__).parent / "fixtures" / "v1"
RUNS = ["cnn-mnist", "mlp-mnist", "linreg"]


def test_the_fixtures_are_version_1():
    for run in RUNS:
        assert torch.load(V1 / run / "best.pt", weights_only=True)["version"] == 1


@pytest.mark.parametrize("native_bf16", [False, True], ids=["avx2", "avx512-bf16"])
@pytest.mark.parametrize("run", RUNS)
def test_eval_gives_the_recorded_figures_on_any_cpu(run, native_bf16, mnist_root, monkeypatch):
    import trainlab.engine.device
    from trainlab.workflow import evaluate_checkpoint

    monkeypatch.setattr(trainlab.engine.device, "cpu_has_native_bf16", lambda: native_bf16)
    expected = json.loads((V1 / run / "eval.json").read_text())
    report, (outputs, _) = evaluate_checkpoint(
        V1 / run, device="cpu", data_dir=str(mnist_root), return_predictions=True
    )
    report = report.to_dict()
    assert abs(report["loss"] - expected["loss"]) <= 1e-6 * max(1.0, abs(expected["loss"]))
    for key in ("split", "n", "classes"):
        assert report[key] == expected[key], key
    if expected["classes"]:  # identical predictions: no image is near a tie
        top2 = outputs.float().topk(2, dim=1).values
        assert float((top2[:, 0] - top2[:, 1]).min()) > 1e-4
        assert report["accuracy"] == expected["accuracy"]
        assert report["confusion"] == expected["confusion"]


@pytest.mark.parametrize("run", ["cnn-mnist", "linreg"])
def test_they_resume(run, tmp_path, mnist_root, capsys):
    copy = tmp_path / run
    shutil.copytree(V1 / run, copy)
    code = main(
        ["train", "--resume", str(copy), "--epochs", "2", "--data-dir", str(mnist_root), "--json"]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["final"]["epoch"] == 2 and summary["changed"]["epochs"] == [1, 2]
    resumed = load_checkpoint(copy / "last.pt")
    assert resumed["version"] == 2 and resumed["epoch"] == 2
    # the version-1 options were carried into the run's option tables
    if run == "cnn-mnist":
        assert resumed["config"]["model_options"] == {"widths": [4, 8]}
    else:
        assert resumed["config"]["data_options"]["samples"] == 200


def test_they_predict_and_export(tmp_path, mnist):
    from trainlab.inference import Predictor
    from trainlab.inference.export import export_model, run_exported

    digits = mnist.test_x[:32]
    predictor = Predictor(V1 / "cnn-mnist", device="cpu")
    assert predictor.kind == "digits"  # chosen by name for a version-1 checkpoint
    images = [Image.fromarray(255 - x[0].numpy()) for x in digits]  # dark on light, as drawn
    labels = [p.label for p in predictor.predict(images)]
    assert sum(a == str(int(b)) for a, b in zip(labels, mnist.test_y[:32], strict=True)) >= 16
    run = tmp_path / "cnn-mnist"
    shutil.copytree(V1 / "cnn-mnist", run)
    info = export_model(run, verify=False)
    onnx_out = run_exported(info["path"], "onnx", digits.float() / 255)
    with torch.inference_mode():
        torch_out = predictor.model(predictor.transform(digits)).float().numpy()
    assert np.abs(onnx_out - torch_out).max() < 1e-4


def test_an_old_run_chosen_on_the_test_split_resumes_without_choosing_on_it(tmp_path, mnist_root):
    """Runs written before trainlab stopped choosing best.pt on the test split: a resume keeps
    the last epoch instead, and its record says so."""
    import tomllib

    run = tmp_path / "mlp-mnist"
    shutil.copytree(V1 / "mlp-mnist", run)
    assert load_checkpoint(run / "last.pt")["best"]["monitor"] == "test_acc"
    args = ["train", "--resume", str(run), "--epochs", "2", "--data-dir", str(mnist_root)]
    assert main([*args, "--quiet"]) == 0
    recorded = tomllib.loads((run / "config.toml").read_text())["run"]
    assert recorded["monitor"] == "epoch" and recorded["best_checkpoint_chosen_on"].startswith(
        "the last epoch"
    )
    assert load_checkpoint(run / "best.pt")["epoch"] == 2
