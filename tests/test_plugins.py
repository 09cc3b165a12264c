"""A third-party package adds a dataset and a model through the entry-point groups
``trainlab.datasets`` and ``trainlab.models`` (one file each), installed with pip, and trainlab
trains, evaluates and predicts with them with no trainlab file changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from helpers import assert_clean_error, run_cli

PLUGIN = Path(__file__).parent / "fixtures" / "plugin"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    """The plugin installed by pip into a folder of its own, put on the Python path."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(PLUGIN),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    assert (target / "trainlab_demo_plugin-0.1.0.dist-info" / "entry_points.txt").is_file()
    return {"PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}


def test_a_plugins_dataset_and_model_train_evaluate_and_predict(plugin_env, tmp_path):
    runs = tmp_path / "runs"
    proc = run_cli(
        "train",
        "--dataset",
        "stripes",
        "--model",
        "tinynet",
        "--data-arg",
        "samples=800",
        "--model-arg",
        "channels=8",
        "--epochs",
        "3",
        "--lr",
        "0.05",
        "--device",
        "cpu",
        "--runs-dir",
        str(runs),
        "--run-name",
        "p",
        "--json",
        env=plugin_env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    final = json.loads(proc.stdout)["final"]
    assert final["test_n"] == 200 and final["test_acc"] > 0.9  # stripes are easy
    config = (runs / "p" / "config.toml").read_text()
    assert 'kind = "plugin"' in config and "trainlab-demo-plugin" in config
    proc = run_cli("eval", str(runs / "p"), "--json", env=plugin_env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["accuracy"] == pytest.approx(final["test_acc"], abs=1e-9)
    vertical = Image.new("L", (48, 48))
    for x in range(0, 48, 12):
        vertical.paste(255, (x, 0, x + 6, 48))
    vertical.save(tmp_path / "vertical.png")
    proc = run_cli(
        "predict", str(runs / "p"), str(tmp_path / "vertical.png"), "--json", env=plugin_env
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["predictions"][0]["label"] == "vertical"


@pytest.mark.slow
def test_the_registries_list_the_plugins(plugin_env):
    proc = run_cli("models", env=plugin_env)
    assert proc.returncode == 0 and "tinynet" in proc.stdout and "[plugin]" in proc.stdout
    proc = run_cli("data", "info", "stripes", env=plugin_env)
    assert proc.returncode == 0 and "options: samples=400, contrast=1.0" in proc.stdout
    proc = run_cli("train", "--help", env=plugin_env)
    assert "stripes" in proc.stdout
    proc = run_cli("train", "--dataset", "stripe", env=plugin_env)
    assert_clean_error(proc, "unknown dataset 'stripe'", "Did you mean 'stripes'")
