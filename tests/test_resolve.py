"""One plan per run: --config reproduces a run, a resume reads its checkpoint once, an option is
added in one place, early stopping ends and records a run, and fits do not share state."""

from __future__ import annotations

import json
import logging
import shutil
import tomllib
from typing import Annotated

import pytest
import torch
from torch import nn

from trainlab import Trainer
from trainlab.cli import main
from trainlab.engine.checkpoint import load_checkpoint
from trainlab.models import register_model
from trainlab.options import Opt
from trainlab.runs import read_metrics

SMALL = ["--subset", "600", "--test-subset", "200", "--device", "cpu", "--batch-size", "50"]


def _train(capsys, *args: str) -> dict:
    assert main(["train", *SMALL, "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_runs_own_config_toml_reproduces_its_weights_bit_for_bit(tmp_path, mnist_root, capsys):
    runs = ["--runs-dir", str(tmp_path), "--data-dir", str(mnist_root)]
    first = _train(
        capsys,
        *runs,
        "--run-name",
        "a",
        "--model",
        "mlp",
        "--hidden",
        "24",
        "--seed",
        "3",
        "--lr",
        "0.05",
        "--amp",
        "off",
    )
    config = tmp_path / "a" / "config.toml"
    again = _train(capsys, "--config", str(config), "--run-name", "b", "--runs-dir", str(tmp_path))
    a, b = (load_checkpoint(tmp_path / n / "last.pt")["state_dict"] for n in ("a", "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert first["final"]["test_loss"] == again["final"]["test_loss"]
    # and a flag on top of the file wins: another seed, other weights
    _train(
        capsys,
        "--config",
        str(config),
        "--run-name",
        "c",
        "--runs-dir",
        str(tmp_path),
        "--seed",
        "4",
    )
    c = load_checkpoint(tmp_path / "c" / "last.pt")["state_dict"]
    assert not torch.equal(a["1.weight"], c["1.weight"])


def test_a_resume_reads_its_checkpoint_once(tmp_path, mnist_root, capsys, monkeypatch):
    _train(capsys, "--runs-dir", str(tmp_path), "--run-name", "r", "--data-dir", str(mnist_root))
    reads = []
    real_load = torch.load

    def counting_load(path, *args, **kwargs):
        reads.append(str(path))
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counting_load)
    _train(capsys, "--resume", str(tmp_path / "r"), "--epochs", "2")
    assert [p for p in reads if p.endswith("last.pt")] == [str(tmp_path / "r" / "last.pt")]
    assert not [p for p in reads if p.endswith(".pt") and not p.endswith("last.pt")]


def test_an_option_added_in_one_place_reaches_the_model(tmp_path, mnist_root, capsys):
    @register_model("test-act-mlp", summary="an MLP with a choice of activation", flat=True)
    def act_mlp(
        input_shape,  # noqa: ARG001 - flat: the input size is fixed here
        outputs,
        act: Annotated[str, Opt("the activation", choices=("relu", "tanh"))] = "relu",
    ):
        layer = nn.Tanh() if act == "tanh" else nn.ReLU()
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 16), layer, nn.Linear(16, outputs))

    summary = _train(
        capsys,
        "--model",
        "test-act-mlp",
        "--model-arg",
        "act=tanh",
        "--runs-dir",
        str(tmp_path),
        "--run-name",
        "t",
        "--data-dir",
        str(mnist_root),
    )
    from trainlab.engine.loading import load_model

    model, checkpoint = load_model(tmp_path / "t")
    assert isinstance(model[2], nn.Tanh) and checkpoint["config"]["model_options"] == {
        "act": "tanh"
    }
    assert summary["final"]["epoch"] == 1
    assert main(["train", *SMALL, "--model", "test-act-mlp", "--model-arg", "act=gelu"]) == 2
    assert "option 'act' must be one of relu, tanh" in capsys.readouterr().err


@pytest.mark.slow
def test_early_stopping_keeps_the_best_epoch_and_a_resume_says_it_is_finished(
    tmp_path, mnist_root, capsys
):
    args = ["--runs-dir", str(tmp_path), "--run-name", "e", "--data-dir", str(mnist_root)]
    args += ["--val-split", "0.2", "--epochs", "6", "--early-stop", "2", "--min-delta", "0.5"]
    summary = _train(capsys, *args)
    rows = read_metrics(tmp_path / "e")
    assert len(rows) == 3 and summary["stopped"]["epoch"] == 3  # 1 best, 2 and 3 without gain
    best = load_checkpoint(tmp_path / "e" / "best.pt")
    best_epoch = max(rows, key=lambda r: r["val_acc"])["epoch"]  # the first of equals
    assert best["epoch"] == best_epoch and best["best"]["monitor"] == "val_acc"
    config = tomllib.loads((tmp_path / "e" / "config.toml").read_text())
    assert config["stopped"]["epoch"] == 3 and "for 2 epoch(s)" in config["stopped"]["reason"]
    assert main(["train", "--resume", str(tmp_path / "e"), "--epochs", "8"]) == 2
    assert "the run is finished: it stopped early after epoch 3" in capsys.readouterr().err


def test_the_early_stopping_state_survives_a_resume(tmp_path, mnist_root, capsys):
    args = ["--runs-dir", str(tmp_path), "--run-name", "s", "--data-dir", str(mnist_root)]
    _train(
        capsys,
        *args,
        "--val-split",
        "0.2",
        "--epochs",
        "2",
        "--early-stop",
        "2",
        "--min-delta",
        "0.5",
    )
    state = load_checkpoint(tmp_path / "s" / "last.pt")["callbacks"]["early_stop"]
    assert state == {"best": pytest.approx(state["best"]), "best_epoch": 1, "wait": 1}
    shutil.copytree(tmp_path / "s", tmp_path / "s2")
    summary = _train(capsys, "--resume", str(tmp_path / "s2"), "--epochs", "6")
    assert summary["stopped"]["epoch"] == 3  # one more epoch without gain, counted on from 1


def test_a_second_fit_does_not_inherit_the_first(tmp_path, mnist):
    from trainlab import build_model

    trainer = Trainer(epochs=1, runs_dir=str(tmp_path), device="cpu")
    first = trainer.fit(build_model("mlp", mnist, hidden=[8]), mnist.subset(300, 100))
    second = trainer.fit(build_model("softmax", mnist), mnist.subset(500, 100, seed=1))
    assert (first.config.model, first.config.subset) == ("mlp", 300)
    assert (second.config.model, second.config.subset, second.config.model_options) == (
        "softmax",
        500,
        {},
    )
    assert trainer.config.model == "cnn" and trainer.config.subset == 0  # its own settings again


def test_under_torchrun_a_default_batch_is_rounded_and_a_chosen_one_kept(caplog):
    """What the 3-process torchrun tests (slow) check end to end, here without processes."""
    import torch

    from trainlab.data.batches import Batches
    from trainlab.errors import ConfigError
    from trainlab.resolve import plan_run

    caplog.set_level(logging.INFO, logger="trainlab")
    plan = plan_run({})
    plan.fit_processes(3)
    assert plan.config.batch_size == 63 and "rounded to 63" in plan.notes["batch_size"]
    assert "a multiple of the 3 processes" in caplog.text
    chosen = plan_run({"batch_size": 64})
    chosen.fit_processes(3)
    assert chosen.config.batch_size == 64 and not chosen.notes
    with pytest.raises(ConfigError, match="must divide evenly among 3 processes"):
        Batches(torch.zeros(10, 1), torch.zeros(10), 64, shard=(0, 3))
