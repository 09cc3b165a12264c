"""--budget: epochs planned from a pilot that leaves no trace, ended within the budget, kept on
resume."""

import json
import os
import signal
import subprocess
import sys
import tomllib

import pytest
import torch

from trainlab import Trainer, build_model
from trainlab.engine.callbacks import Callback
from trainlab.engine.checkpoint import load_checkpoint
from trainlab.errors import ConfigError
from trainlab.resolve import resolve_config


def _cfg(tmp_path, **kw):
    base = dict(model="mlp", hidden=[32], runs_dir=str(tmp_path), device="cpu")
    return resolve_config({**base, **kw}).config


def _model(data):
    torch.manual_seed(0)
    return build_model("mlp", data, hidden=[32])


class _CtrlC(Callback):
    def __init__(self, epoch, batch):
        self.epoch, self.batch = epoch, batch

    def on_batch_end(self, trainer, state, loss_sum, num_batches):  # noqa: ARG002
        if state.epoch == self.epoch and state.batch == self.batch:
            os.kill(os.getpid(), signal.SIGINT)


def test_the_command_plans_says_records_and_ends_within_its_budget(tmp_path, mnist_root):
    command = [sys.executable, "-m", "trainlab", "train", "--budget", "20s", "--subset", "1000"]
    command += ["--test-subset", "200", "--runs-dir", str(tmp_path)]
    env = {**os.environ, "TRAINLAB_DATA": str(mnist_root)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert "budget 20s: " in done.stderr and " s per epoch of training" in done.stderr
    (run_dir,) = tmp_path.iterdir()
    record = tomllib.loads((run_dir / "config.toml").read_text())
    budget = record["budget"]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert (
        budget["seconds"] == 20
        and budget["epochs"] >= 1
        and record["config"]["epochs"] == budget["epochs"]
    )
    # every epoch it ran ended before the deadline (the guard stops before an epoch that would
    # not, and keeps a reserve for what follows the last one)
    assert len(rows) <= budget["epochs"] and rows[-1]["time"] <= budget["ends_by"]
    assert (run_dir / "best.pt").exists()


def test_the_pilot_leaves_no_trace(tmp_path, mnist_small):
    planned = Trainer(_cfg(tmp_path, budget="6s", run_name="budget")).fit(
        _model(mnist_small), mnist_small
    )
    epochs = planned.config.epochs  # however many this machine's pace allowed
    plain = Trainer(_cfg(tmp_path, epochs=epochs, run_name="plain")).fit(
        _model(mnist_small), mnist_small
    )
    a, b = load_checkpoint(planned.last_path), load_checkpoint(plain.last_path)
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k  # the same run, exactly


def test_a_resumed_budget_run_keeps_its_plan(tmp_path, mnist_small):
    cfg = _cfg(tmp_path, budget="6s", run_name="cut")
    cut = Trainer(cfg, callbacks=[_CtrlC(0, 3)]).fit(_model(mnist_small), mnist_small)
    assert cut.status == "interrupted"
    planned = tomllib.loads((cut.run_dir / "config.toml").read_text())["budget"]
    resumed = Trainer(cfg).fit(_model(mnist_small), mnist_small, resume=cut.run_dir)
    assert resumed.config.epochs == planned["epochs"]  # not planned again
    again = tomllib.loads((cut.run_dir / "config.toml").read_text())["budget"]
    assert again == planned


def test_a_budget_without_a_unit_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="budget must be a number and a unit: 90s, 10m or 1.5h"):
        _cfg(tmp_path, budget="10")
