"""trainlab export: one ONNX (or pt2) file that matches the checkpoint on real test images."""

import json

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from helpers import run_cli
from trainlab.inference.export import export_model
from trainlab.workflow import evaluate_checkpoint


@pytest.fixture(scope="module")
def onnx_file(default_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "model.onnx"
    proc = run_cli("export", str(default_run), "--output", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)  # stdout holds the result alone
    assert info["parity"]["same_argmax"] and info["parity"]["max_abs_logit_diff"] <= 1e-4
    return out


def test_one_file_that_onnx_checks_with_its_metadata(onnx_file, default_run):
    assert [p.name for p in onnx_file.parent.iterdir()] == ["model.onnx"]  # no .onnx.data
    model = onnx.load(str(onnx_file))
    onnx.checker.check_model(model)
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["classes"]) == [str(d) for d in range(10)]
    assert meta["run_id"] == default_run.name and "trainlab_version" in meta
    assert json.loads(meta["normalisation"])["mean"] == [pytest.approx(0.13066, abs=1e-4)]
    assert "[0, 1]" in meta["input"]


def test_onnx_runtime_agrees_with_eval_on_all_test_images(onnx_file, default_run, mnist):
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    images = mnist.test_x.float().div(255).numpy()
    logits = np.concatenate(
        [session.run(None, {"images": images[i : i + 1000]})[0] for i in range(0, 10000, 1000)]
    )
    report, (outputs, targets) = evaluate_checkpoint(
        default_run / "best.pt",
        device="cpu",
        return_predictions=True,
        whole_split=True,
        amp="off",  # the exported graph computes in float32; bf16 can flip a close call
    )
    assert report.n == 10000
    assert np.array_equal(logits.argmax(1), outputs.argmax(1).numpy())
    assert np.array_equal(targets.numpy(), mnist.test_y.numpy())


@pytest.mark.parametrize("batch", [1, 7, 256])
def test_logits_match_at_several_batch_sizes(onnx_file, default_run, mnist, batch):
    from trainlab.inference import Predictor

    predictor = Predictor(default_run, device="cpu")
    x = mnist.test_x[:batch]
    with torch.inference_mode():
        expected = predictor.model(predictor.transform(x)).numpy()
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": x.float().div(255).numpy()})[0]
    assert got.shape == (batch, 10)
    assert np.abs(got - expected).max() <= 1e-4


def test_pt2_loads_back_and_gives_the_same_logits(default_run, tmp_path, mnist):
    info = export_model(default_run, tmp_path / "model.pt2", format="pt2")
    program = torch.export.load(str(tmp_path / "model.pt2"))
    x = mnist.test_x[:7].float().div(255)
    with torch.inference_mode():
        got, score = program.module()(x)  # the logits, and the "none of these" score
    assert info["parity"]["max_abs_logit_diff"] <= 1e-4
    from trainlab.inference import Predictor

    predictor = Predictor(default_run, device="cpu")
    with torch.inference_mode():
        expected = predictor.model(predictor.transform(mnist.test_x[:7]))
    assert (got - expected).abs().max() <= 1e-4
    assert (score + torch.logsumexp(expected, dim=1)).abs().max() <= 1e-4


def test_an_mlp_exports_too(tmp_path, mnist_root):
    from trainlab.config import TrainConfig
    from trainlab.workflow import train

    cfg = TrainConfig(
        model="mlp",
        model_options={"log_softmax": True},
        subset=1000,
        test_subset=300,
        epochs=1,
        device="cpu",
        data_dir=str(mnist_root),
        runs_dir=str(tmp_path),
    )
    result = train(cfg)
    info = export_model(result.run_dir, tmp_path / "mlp.onnx", data_dir=str(mnist_root))
    assert info["metadata"]["output"] == "log-probabilities"
    assert info["parity"]["max_abs_logit_diff"] <= 1e-4


@pytest.mark.slow
def test_alexnet_exports_with_its_resize_inside(tmp_path, mnist_root):
    from trainlab.config import TrainConfig
    from trainlab.workflow import train

    cfg = TrainConfig(
        model="alexnet",
        subset=200,
        test_subset=50,
        epochs=1,
        batch_size=50,
        device="cpu",
        data_dir=str(mnist_root),
        runs_dir=str(tmp_path),
    )
    result = train(cfg)
    info = export_model(result.run_dir, tmp_path / "alexnet.onnx", parity_images=8)
    assert "bilinear resize" in info["metadata"]["preprocessing_in_graph"]
    assert info["parity"]["same_argmax"] and info["parity"]["max_abs_logit_diff"] <= 1e-4


def test_without_the_extra_the_error_says_what_to_install(default_run, tmp_path):
    # a python whose import of onnx fails: a site directory with an onnx that raises
    fake = tmp_path / "site"
    (fake / "onnx").mkdir(parents=True)
    (fake / "onnx" / "__init__.py").write_text("raise ImportError('no onnx here')\n")
    proc = run_cli("export", str(default_run), env={"PYTHONPATH": str(fake)})
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "pip install 'trainlab[export]'" in proc.stderr
