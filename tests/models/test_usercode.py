"""A user's own nn.Module from the command line: trained, resumed, evaluated, predicted, exported
and served, and never imported without --trust-code (a canary in the module would say so)."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from helpers import assert_clean_error, run_cli

MODEL_FILE = Path(__file__).parents[1] / "fixtures" / "usermodel" / "small_resnet.py"


@pytest.fixture(scope="module")
def user_run(tmp_path_factory, mnist_root):
    """`trainlab train --model FILE.py:SmallResNet --model-arg width=12` in a subprocess, so
    this test process never imports the file itself."""
    root = tmp_path_factory.mktemp("usercode")
    model_file = root / "nets" / "small_resnet.py"
    model_file.parent.mkdir()
    shutil.copy(MODEL_FILE, model_file)
    canary = root / "canary"
    env = {"TRAINLAB_DATA": str(mnist_root), "TRAINLAB_CANARY": str(canary)}
    proc = run_cli(
        "train",
        "--model",
        f"{model_file}:SmallResNet",
        "--model-arg",
        "width=12",
        *("--subset", "1200", "--test-subset", "300", "--epochs", "1", "--device", "cpu"),
        *("--runs-dir", str(root / "runs")),  # no --run-name, as README's command
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    assert canary.read_text() == "imported\n"  # training ran the file, as it must
    canary.unlink()
    (run,) = (root / "runs").iterdir()  # named by the file's stem and class, not its path
    assert re.fullmatch(r"\d{8}-\d{6}-small_resnet-SmallResNet", run.name), run.name
    return {"run": run, "file": model_file, "canary": canary, "env": env}


def test_the_run_records_the_code_and_its_option(user_run):
    config = tomllib.loads((user_run["run"] / "config.toml").read_text())
    assert config["config"]["model"] == f"{user_run['file']}:SmallResNet"
    assert config["config"]["model_options"] == {"width": 12}
    import hashlib

    source = config["model"]["source"]
    assert source["kind"] == "file" and source["path"] == str(user_run["file"])
    assert source["sha256"] == hashlib.sha256(user_run["file"].read_bytes()).hexdigest()
    # width 12 reached the layers: the head takes 12 features
    from trainlab.engine.checkpoint import load_checkpoint

    assert tuple(load_checkpoint(user_run["run"])["state_dict"]["head.weight"].shape) == (10, 12)


REFUSALS = """
import io, json, os, sys, contextlib
from trainlab.cli import main
run, image, canary = sys.argv[1:4]
results = {}
for name, argv in {
    "eval": ["eval", run],
    "predict": ["predict", run, image],
    "export": ["export", run, "-o", run + "/x.onnx"],
    "serve": ["serve", run, "--port", "8999"],
    "resume": ["train", "--resume", run, "--epochs", "2"],
}.items():
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    results[name] = {"code": code, "stderr": err.getvalue(), "canary": os.path.exists(canary),
                     "imported": any(m.startswith("trainlab_user") for m in sys.modules)}
print(json.dumps(results))
"""


@pytest.mark.slow
def test_without_trust_code_nothing_is_imported(user_run, tmp_path):
    image = tmp_path / "digit.png"
    Image.new("L", (28, 28)).save(image)
    proc = subprocess.run(
        [sys.executable, "-c", REFUSALS, str(user_run["run"]), str(image), str(user_run["canary"])],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, **user_run["env"]},
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert set(results) == {"eval", "predict", "export", "serve", "resume"}
    for name, result in results.items():
        assert result["code"] == 2, (name, result)
        assert "--trust-code" in result["stderr"] and str(user_run["file"]) in result["stderr"]
        assert "Nothing was imported" in result["stderr"] and "Traceback" not in result["stderr"]
        assert not result["canary"] and not result["imported"], name


@pytest.mark.slow
def test_with_trust_code_it_evaluates_predicts_and_exports(user_run, mnist_root):
    from trainlab.cli import main
    from trainlab.inference.export import run_exported
    from trainlab.runs import read_metrics
    from trainlab.workflow import evaluate_checkpoint

    run = user_run["run"]
    report = evaluate_checkpoint(run, device="cpu", trust_code=True)
    assert report.accuracy == read_metrics(run)[-1]["test_acc"] and report.n == 300
    from trainlab.inference import Predictor

    predictor = Predictor(run, device="cpu", trust_code=True)
    from trainlab.data import load_dataset

    test = load_dataset("mnist", mnist_root, sources=("local",)).test_x[:64]
    previews = [Image.fromarray(x[0].numpy()) for x in test]
    labels = [p.label for p in predictor.predict(previews)]
    assert len(labels) == 64 and all(label in predictor.classes for label in labels)
    assert main(["export", str(run), "-o", str(run / "mine.onnx"), "--trust-code"]) == 0
    onnx_out = run_exported(run / "mine.onnx", "onnx", test.float() / 255)
    import torch

    with torch.inference_mode():
        torch_out = predictor.model(predictor.transform(test)).float().numpy()
    assert np.abs(onnx_out - torch_out).max() < 1e-4


def test_with_trust_code_it_serves(user_run, mnist):
    from serve.serving import Server

    server = Server(user_run["run"], "--trust-code", env=user_run["env"])
    try:
        buffer = io.BytesIO()
        digit = Image.fromarray(255 - mnist.test_x[0, 0].numpy()).resize((84, 84))
        digit.save(buffer, format="JPEG")  # dark ink on light paper, as people write
        answer = httpx.post(
            server.url + "/api/predict", files={"file": ("x.jpg", buffer.getvalue())}
        )
        assert answer.status_code == 200 and answer.json()["label"] in [str(d) for d in range(10)]
        assert httpx.get(server.url + "/api/model").json()["model"].endswith(":SmallResNet")
    finally:
        server.stop()


@pytest.mark.slow
def test_with_trust_code_it_resumes_and_an_edit_is_reported(user_run, tmp_path):
    run = tmp_path / "mine"
    shutil.copytree(user_run["run"], run)
    proc = run_cli(
        "train",
        "--resume",
        str(run),
        "--epochs",
        "2",
        "--trust-code",
        env=user_run["env"],
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    assert "after 2 epoch(s)" in proc.stdout
    source = user_run["file"]
    original = source.read_text()
    try:
        source.write_text(original + textwrap.dedent("\n# an edit after training\n"))
        proc = run_cli("eval", str(run), "--trust-code", env=user_run["env"])
        assert proc.returncode == 0, proc.stderr
        assert f"warning: {source} changed since this run was trained" in proc.stderr
    finally:
        source.write_text(original)


@pytest.mark.slow
def test_an_unknown_option_gets_a_did_you_mean(user_run):
    proc = run_cli(
        "train",
        "--model",
        f"{user_run['file']}:SmallResNet",
        "--model-arg",
        "widht=12",
        env=user_run["env"],
    )
    assert_clean_error(proc, "has no option 'widht'", "Did you mean 'width'")
    proc = run_cli("train", "--model", f"{user_run['file']}:Missing", env=user_run["env"])
    assert_clean_error(proc, "has no 'Missing'")


@pytest.mark.slow
def test_a_class_defined_in_a_script_says_how_to_make_it_loadable(tmp_path, mnist_root):
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from torch import nn
            from trainlab import Trainer, load_dataset

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(784, 10)

                def forward(self, x):
                    return self.fc(x.flatten(1))

            data = load_dataset("mnist", {str(mnist_root)!r}, sources=("local",)).subset(200, 100)
            result = Trainer(epochs=1, runs_dir={str(tmp_path / "runs")!r}, device="cpu").fit(
                Net(), data
            )
            print(result.run_dir)
            """
        )
    )
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr
    run = proc.stdout.strip().splitlines()[-1]
    proc = run_cli("eval", run)
    assert_clean_error(proc, "defined in the script or notebook", "FILE.py:Net")
