"""--budget: epochs planned from a pilot that leaves no trace, ended within the budget, kept on
resume."""

import json
import math
import os
import subprocess
import sys
import tomllib

import pytest
import torch

from helpers import ctrl_c_after
from trainlab import Trainer, build_model
from trainlab.errors import ConfigError
from trainlab.resolve import resolve_config


def _cfg(tmp_path, **kw):
    base = dict(model="mlp", hidden=[32], runs_dir=str(tmp_path), device="cpu")
    return resolve_config({**base, **kw}).config


def _model(data):
    torch.manual_seed(0)
    return build_model("mlp", data, hidden=[32])


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
    # a plan run to its end was not stopped by the budget (nor said to be)
    assert (len(rows) == budget["epochs"]) == ("stop" not in rows[-1]), rows[-1]
    assert (len(rows) == budget["epochs"]) == ("the time budget" not in done.stderr)


def test_the_pilot_leaves_no_trace(tmp_path, mnist_small):
    from trainlab.build import build, cut_data, start
    from trainlab.engine.budget import plan_epochs

    plan = resolve_config(dict(model="cnn", runs_dir=str(tmp_path), device="cpu"))
    started = start(plan)
    torch.manual_seed(0)
    model = build_model("cnn", mnist_small)
    run = build(started, model, cut_data(started, mnist_small))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = repr(run.setup.optimizer.state_dict())
    rng = torch.get_rng_state()
    planned = plan_epochs("1h", run.setup, model, mnist_small.num_classes)
    assert planned["epochs"] >= 1 and planned["train_epoch_seconds"] > 0
    # weights, batch-norm statistics, optimizer state and random generator: as they were, so
    # the run that follows is the one --epochs N gives
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert repr(run.setup.optimizer.state_dict()) == optimizer
    assert torch.equal(torch.get_rng_state(), rng)


def test_a_resumed_budget_run_keeps_its_plan(tmp_path, mnist_small):
    cfg = _cfg(tmp_path, budget="6s", run_name="cut")
    cut = Trainer(cfg, callbacks=[ctrl_c_after(0, 3)]).fit(_model(mnist_small), mnist_small)
    assert cut.status == "interrupted"
    planned = tomllib.loads((cut.run_dir / "config.toml").read_text())["budget"]
    resumed = Trainer(cfg).fit(_model(mnist_small), mnist_small, resume=cut.run_dir)
    assert resumed.config.epochs == planned["epochs"]  # not planned again
    again = tomllib.loads((cut.run_dir / "config.toml").read_text())["budget"]
    assert again == planned


def test_the_first_epoch_revises_the_pilots_plan_and_a_resume_keeps_it(
    tmp_path, mnist_small, monkeypatch
):
    """The pilot's allowance made four times too large, it plans about a quarter of what fits.
    The first epoch, measured whole, revises the plan: printed, recorded, run to its end within
    the budget, with its schedule computed on the new count; a run cut after the revision
    resumes with it."""
    from trainlab.engine import budget

    settings = dict(epochs=1, lr=0.05, model="cnn", device="cpu")

    def model():
        torch.manual_seed(0)
        return build_model("cnn", mnist_small)

    # a budget of about fifteen epochs on this machine as it is now (a busy one too)
    measure = resolve_config({**settings, "runs_dir": str(tmp_path), "run_name": "one"}).config
    epoch = Trainer(measure).fit(model(), mnist_small).history[0]["seconds"]
    settings.update(epochs=500, budget=f"{6 + math.ceil(15 * epoch)}s")
    monkeypatch.setattr(budget, "EPOCH_OVERHEAD", 4.0)
    cfg = resolve_config({**settings, "runs_dir": str(tmp_path), "run_name": "whole"}).config
    result = Trainer(cfg).fit(model(), mnist_small)
    record = tomllib.loads((result.run_dir / "config.toml").read_text())
    plan = record["budget"]
    rows = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert plan["revised"]["first_plan"] < plan["epochs"] == record["config"]["epochs"]
    # run to its end (the last epoch may be cut when this machine slows down), by the deadline
    assert plan["revised"]["first_plan"] < len(rows) <= plan["epochs"]
    assert rows[-1]["time"] <= plan["ends_by"]
    # one-cycle on the revised count: the epoch after the first plan's last is still above the
    # schedule's end (on the first plan's count it would be at it, lr/1e4)
    assert rows[plan["revised"]["first_plan"]]["lr"] > cfg.lr / 1000

    cut_cfg = resolve_config({**settings, "runs_dir": str(tmp_path), "run_name": "cut"}).config
    cut = Trainer(cut_cfg, callbacks=[ctrl_c_after(2, 3)]).fit(model(), mnist_small)
    assert cut.status == "interrupted"
    revised = tomllib.loads((cut.run_dir / "config.toml").read_text())["budget"]
    assert revised["revised"]["first_plan"] < revised["epochs"]
    resumed = Trainer(cut_cfg).fit(model(), mnist_small, resume=cut.run_dir)
    assert resumed.config.epochs == revised["epochs"]  # neither planned nor revised again
    assert tomllib.loads((cut.run_dir / "config.toml").read_text())["budget"] == revised


def test_a_budget_without_a_unit_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="budget must be a number and a unit: 90s, 10m or 1.5h"):
        _cfg(tmp_path, budget="10")
