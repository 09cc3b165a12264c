"""The sweep's study: workers racing for trials claim exactly ``--trials`` of them, a dead
worker's parameters are queued again (a bounded number of times) with its trial.json saying
so, and only Optuna's public API is used."""

from __future__ import annotations

import ast
import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest

import trainlab

optuna = pytest.importorskip("optuna")

from trainlab.tune.settings import prepare  # noqa: E402
from trainlab.tune.study import MAX_RETRIES, Requeue, claim, make_storage, open_study  # noqa: E402

SPACE = "[space]\nlr = { low = 0.01, high = 0.5, log = true }\nepochs = 1\n"

CLAIM = """\
import json, pickle, sys
from trainlab.tune.study import claim, make_storage, open_study

sweep = pickle.loads(bytes.fromhex(sys.argv[1]))  # the sweep as prepare made it
storage = make_storage(sweep)
study = open_study(sweep, storage=storage)
print("ready", flush=True)
sys.stdin.readline()  # the start signal: every worker claims at once
numbers = []
while (got := claim(sweep, study, storage)).trial is not None:
    numbers.append(got.trial.number)
print(json.dumps(numbers), flush=True)
"""


@pytest.fixture
def space(tmp_path) -> Path:
    path = tmp_path / "space.toml"
    path.write_text(SPACE)
    return path


@pytest.mark.slow
def test_four_workers_claiming_at_once_take_exactly_the_trials_asked_for(space, tmp_path):
    sweeps, trials = tmp_path / "sweeps", 12
    sweep = prepare(space, {}, trials=trials, sweeps_dir=sweeps)
    open_study(sweep)  # the tables exist before the workers come, as `--workers K` does it
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIM, pickle.dumps(sweep).hex()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for worker in workers:  # each has opened the study and waits for the signal
        assert worker.stdout.readline() == "ready\n", worker.communicate()
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    claimed = []
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err
        claimed.append(json.loads(out))

    numbers = sorted(n for mine in claimed for n in mine)
    assert numbers == list(range(trials)), claimed  # each trial claimed once, none too many
    study = optuna.load_study(study_name="space", storage=sweep.storage)
    assert [t.state.name for t in study.trials] == ["RUNNING"] * trials


def test_a_dead_workers_parameters_are_queued_again_a_bounded_number_of_times(space, tmp_path):
    sweep = prepare(space, {}, trials=3, sweeps_dir=tmp_path / "sweeps")
    storage = make_storage(sweep)
    study = open_study(sweep, storage=storage)
    requeue = storage.get_heartbeat_stale_trial_callback()
    assert isinstance(requeue, Requeue) and requeue.max_retry == MAX_RETRIES == 2

    first = claim(sweep, study, storage).trial
    params, records = first.params, []
    for attempt in range(MAX_RETRIES + 1):
        got = claim(sweep, study, storage).trial if attempt else first
        assert got.params == params  # the queued parameters come back to the next claim
        run_dir = tmp_path / f"run-{got.number}"
        run_dir.mkdir()
        got.set_user_attr("run_dir", str(run_dir))
        # its worker dies: the trial's heartbeats stop, fail_stale_trials fails it and calls
        # the storage's callback with the failed trial
        study.tell(got, state=optuna.trial.TrialState.FAIL)
        requeue(study, study.trials[got.number])
        records.append(json.loads((run_dir / "trial.json").read_text()))

    trials = study.trials
    assert [t.state.name for t in trials] == ["FAIL"] * 3  # nothing is left waiting
    retried = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number
    assert [retried(t) for t in trials] == [None, 0, 0]
    assert all(r["state"] == "failed" and r["trial"] == n for n, r in enumerate(records))
    assert all("heartbeats" in r["reason"] for r in records)
    assert all("queued again and another trial tries them" in r["reason"] for r in records[:2])
    assert "tried 3 times and are not queued again" in records[2]["reason"]
    fresh = claim(sweep, study, storage).trial  # the sweep goes on with new parameters
    assert fresh.number == 3 and retried(study.trials[3]) is None


PRIVATE_OPTUNA = re.compile(r"optuna[\w.]*\._[a-z]|\._storage\b|\._trial_id\b|\._study_id\b")


def test_no_private_optuna_module_or_attribute_is_used():
    """Optuna's private names change without notice; trainlab uses its public API only."""
    src = Path(trainlab.__file__).parent
    found = []
    for path in sorted(src.rglob("*.py")):
        text = path.read_text()
        found += [f"{path.name}: {m.group()}" for m in PRIVATE_OPTUNA.finditer(text)]
        if "optuna" not in text:
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("optuna"):
                names = [*node.module.split("."), *(a.name for a in node.names)]
                found += [f"{path.name}: from {node.module} import {n}" for n in names
                          if n.startswith("_")]  # fmt: skip
            private = isinstance(node, ast.Attribute) and re.fullmatch(r"_[a-z]\w*", node.attr)
            if private and not (isinstance(node.value, ast.Name) and node.value.id == "self"):
                found.append(f"{path.name}:{node.lineno}: .{node.attr}")
    assert found == []
