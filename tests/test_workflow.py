"""workflow: train from a config, evaluate a checkpoint as training did, resume what ran."""

import json
import tomllib

import pytest
import torch

from helpers import assert_clean_error, run_cli, run_here
from trainlab import Trainer, build_model
from trainlab.engine.checkpoint import load_checkpoint
from trainlab.resolve import resolve_config
from trainlab.runs import read_metrics
from trainlab.workflow import evaluate_checkpoint, resumed_config, train


@pytest.fixture(scope="module")
def api_run(tmp_path_factory, mnist):
    """The issue's example: a Python API run on subsets, with a non-default model."""
    runs = tmp_path_factory.mktemp("api-runs")
    torch.manual_seed(0)
    model = build_model("lenet-relu", mnist)
    result = Trainer(epochs=1, runs_dir=str(runs), device="cpu").fit(
        model, mnist.subset(5000, 1000)
    )
    return result


def test_a_python_api_run_records_what_ran(api_run):
    run_dir = api_run.run_dir
    assert run_dir.name.endswith("-lenet-relu")
    written = tomllib.loads((run_dir / "config.toml").read_text())
    checkpoint = load_checkpoint(run_dir / "best.pt")
    for config in (written["config"], checkpoint["config"]):
        assert config["model"] == "lenet-relu"
        assert (config["subset"], config["test_subset"]) == (5000, 1000)
    assert written["data"]["train"] == 5000 and written["data"]["test"] == 1000
    assert written["model"]["name"] == checkpoint["model"]["name"] == "lenet-relu"


def test_eval_scores_the_runs_own_images(api_run, mnist_root):
    env = {"TRAINLAB_DATA": str(mnist_root)}
    proc = run_here("eval", str(api_run.run_dir), "--json", "--no-save", env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["n"] == 1000
    assert report["loss"] == pytest.approx(api_run.final["test_loss"], abs=1e-6)
    assert report["accuracy"] == api_run.final["test_acc"]


@pytest.mark.slow
def test_the_python_api_run_resumes_from_the_cli_and_from_python(api_run, mnist_root, mnist):
    env = {"TRAINLAB_DATA": str(mnist_root)}
    proc = run_here("train", "--resume", str(api_run.run_dir), "--epochs", "2", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["final"]["epoch"] == 2 and summary["changed"] == {"epochs": [1, 2]}
    assert "resume: changed --epochs 1 -> 2" in proc.stderr
    # from Python: the full dataset is given; the saved run's subsets are cut from it
    model = build_model("lenet-relu", mnist)
    result = Trainer(epochs=3).fit(model, mnist, resume=api_run.run_dir)
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    assert load_checkpoint(result.last_path)["config"]["subset"] == 5000


@pytest.mark.slow
@pytest.mark.parametrize(
    "settings",
    [
        {"val_split": 0.1, "label_smoothing": 0.1},  # default cnn: channels-last, best on val
        {
            "model": "mlp",
            "hidden": [32],
            "log_softmax": True,
            "norm_mean": [0.5],
            "norm_std": [0.5],
        },
        {"amp": "bf16", "eval_batch_size": 300},
    ],
)
def test_eval_reproduces_the_recorded_epoch(tmp_path, mnist_root, settings):
    cfg = resolve_config(
        dict(
            subset=2000,
            test_subset=700,
            epochs=2,
            device="cpu",
            data_dir=str(mnist_root),
            runs_dir=str(tmp_path),
            **settings,
        )
    ).config
    result = train(cfg)
    best = load_checkpoint(result.best_path)
    row = next(r for r in read_metrics(result.run_dir) if r["epoch"] == best["best"]["epoch"])
    report = evaluate_checkpoint(result.best_path, device="cpu")
    assert report.n == 700
    assert abs(report.loss - row["test_loss"]) <= 1e-6
    assert abs(report.accuracy - row["test_acc"]) <= 1e-6


def test_resumed_config_applies_changes_on_the_saved_run(api_run):
    saved = load_checkpoint(api_run.run_dir / "last.pt")["config"]["epochs"]
    resolved = resumed_config(api_run.run_dir, epochs=5, log_every=3)
    assert resolved.config.model == "lenet-relu" and resolved.config.epochs == 5
    assert resolved.changed == {"epochs": (saved, 5), "log_every": (0, 3)}


def test_an_unusable_device_fails_before_any_data_is_fetched(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    empty = tmp_path / "data"
    empty.mkdir()
    proc = run_cli(
        "train", "--device", "cuda", "--runs-dir", str(tmp_path), env={"TRAINLAB_DATA": str(empty)}
    )
    assert_clean_error(proc, "CUDA is not available", "--device cpu")
    assert list(empty.iterdir()) == []
    assert "fetch" not in proc.stderr.lower() and "download" not in proc.stderr.lower()


@pytest.mark.slow
def test_eval_scores_the_validation_split(tmp_path, mnist_root, capsys):
    from trainlab.cli import main

    args = ["train", "--subset", "600", "--test-subset", "100", "--val-split", "0.2"]
    args += ["--device", "cpu", "--runs-dir", str(tmp_path), "--run-name", "v", "--json"]
    assert main([*args, "--data-dir", str(mnist_root)]) == 0
    final = json.loads(capsys.readouterr().out)["final"]
    assert main(["eval", str(tmp_path / "v"), "--split", "val", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["split"], report["n"]) == ("val", 120)
    assert report["accuracy"] == pytest.approx(final["val_acc"], abs=1e-9)
    assert main(["eval", str(tmp_path / "v"), "--split", "val", "--all"]) == 0
    plain = tmp_path / "plain"
    assert (
        main(
            [*args[:5], "--device", "cpu", "--runs-dir", str(plain), "--data-dir", str(mnist_root)]
        )
        == 0
    )
    capsys.readouterr()
    run = next(plain.iterdir())
    assert main(["eval", str(run), "--split", "val"]) == 2
    assert "no validation split" in capsys.readouterr().err


@pytest.mark.slow
def test_export_says_what_it_compared_when_the_data_is_gone(tmp_path, mnist, capsys):
    """A run on a Dataset built in Python cannot load its data again: the parity check runs on
    random inputs and says so, and the metadata claims nothing about the images' polarity."""
    from trainlab import Dataset
    from trainlab.cli import main

    part = mnist.subset(500, 100)
    mine = Dataset(
        "my-shapes",
        255 - part.train_x,
        part.train_y,
        255 - part.test_x,
        part.test_y,
        classes=part.classes,
        mean=[0.87],
        std=[0.3],
    )
    result = Trainer(epochs=1, runs_dir=str(tmp_path), device="cpu").fit(
        build_model("cnn", mine, widths=[4, 4]), mine
    )
    assert main(["export", str(result.run_dir), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parity"]["inputs"] == "random inputs (the run's data could not be loaded)"
    assert "light ink" not in info["metadata"]["input"]
    assert main(["export", str(result.run_dir)]) == 0
    out = capsys.readouterr().out
    assert "checked on 256 random inputs" in out and "test images" not in out
