"""A run is planned once, built once, then restored and looped: the CLI and ``Trainer.fit``
go through the same steps, each once, and give the same weights."""

from __future__ import annotations

import sys

import pytest
import torch

import trainlab.cli
import trainlab.resolve
import trainlab.trainer
import trainlab.workflow  # noqa: F401 - imported before counting
from trainlab import Trainer, build_model
from trainlab.cli import main
from trainlab.data.dataset import Dataset
from trainlab.engine import checkpoint
from trainlab.engine.distributed import Dist
from trainlab.resolve import resolve_config

SETTINGS = dict(model="mlp", subset=1000, test_subset=300, epochs=1, batch_size=100, seed=3)


@pytest.fixture
def counted(monkeypatch):
    """How many times each step of a run runs: planning, the data cut, joining the process
    group and reading a checkpoint (counted wherever the function was imported)."""
    calls = {"plan": 0, "cut": 0, "join": 0, "read": 0}

    def counting(name, owner, attribute):
        original = getattr(owner, attribute)

        def wrapper(*args, **kwargs):
            calls[name] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, attribute, wrapper)
        for module in list(sys.modules.values()):
            if module is not owner and getattr(module, attribute, None) is original:
                monkeypatch.setattr(module, attribute, wrapper)

    counting("plan", trainlab.resolve, "plan_run")
    counting("cut", Dataset, "cut")
    counting("join", Dist, "join")
    counting("read", checkpoint, "load_checkpoint")
    return calls


def _args(runs, name, **changes):
    settings = {**SETTINGS, **changes}
    args = ["train", "--runs-dir", str(runs), "--run-name", name, "--device", "cpu", "--quiet"]
    for key, value in settings.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def test_each_step_of_a_cli_run_and_its_resume_happens_once(tmp_path, mnist_root, counted):
    runs = tmp_path / "runs"
    base = ["--data-dir", str(mnist_root)]
    assert main([*_args(runs, "cli"), *base]) == 0
    assert counted == {"plan": 1, "cut": 1, "join": 1, "read": 0}
    counted.update(plan=0, cut=0, join=0, read=0)
    assert main(["train", "--resume", str(runs / "cli"), "--epochs", "2", "--quiet"]) == 0
    assert counted == {"plan": 1, "cut": 1, "join": 1, "read": 1}


def test_trainer_fit_takes_the_same_steps_once(tmp_path, mnist, counted):
    cfg = resolve_config({**SETTINGS, "runs_dir": str(tmp_path), "device": "cpu"}).config
    torch.manual_seed(cfg.seed)
    model = build_model("mlp", mnist)
    result = Trainer(cfg, quiet=True).fit(model, mnist)
    assert counted == {"plan": 0, "cut": 1, "join": 1, "read": 0}  # a new run: nothing to plan
    counted.update(plan=0, cut=0, join=0, read=0)
    torch.manual_seed(cfg.seed)
    Trainer(epochs=2, quiet=True).fit(build_model("mlp", mnist), mnist, resume=result.run_dir)
    assert counted["plan"] == 1 and counted["cut"] == 1 and counted["join"] == 1
    assert counted["read"] == 1  # the resumed checkpoint, read once, by the plan


def test_the_cli_and_trainer_fit_build_the_same_run(tmp_path, mnist_root, mnist):
    """Two builds of the pipeline, the same weights bit for bit: the default cnn (fused
    stages, channels-last) through the CLI, and through Trainer.fit from Python."""
    settings = {**SETTINGS, "model": "cnn"}
    assert main([*_args(tmp_path, "cli", model="cnn"), "--data-dir", str(mnist_root)]) == 0
    cfg = resolve_config({**settings, "runs_dir": str(tmp_path), "device": "cpu"}).config
    torch.manual_seed(cfg.seed)  # as the CLI builds its model: seeded by --seed
    api = Trainer(cfg.replace(run_name="api"), quiet=True).fit(build_model("cnn", mnist), mnist)
    cli = checkpoint.load_checkpoint(tmp_path / "cli" / "last.pt")["state_dict"]
    ours = checkpoint.load_checkpoint(api.last_path)["state_dict"]
    assert cli.keys() == ours.keys()
    assert all(torch.equal(cli[k], ours[k]) for k in cli)
