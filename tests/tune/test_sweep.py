"""trainlab sweep on Optuna: exact trial counts across workers, best.toml that retrains to the
same figure, a killed worker's trial re-queued, PostgreSQL for real, and a test metric refused."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from helpers import assert_clean_error, run_cli, run_here

SPACE = """\
[space]
lr = { low = 0.01, high = 0.5, log = true }
hidden = { choices = [[32], [64], [128]] }
epochs = 2
"""
FLAGS = ["--model", "mlp", "--subset", "2000", "--test-subset", "200", "--device", "cpu"]


def _trials(directory: Path, name: str, storage: str | None = None):
    import optuna

    url = storage or f"sqlite:///{directory / 'study.db'}"
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


@pytest.fixture
def space(tmp_path) -> Path:
    path = tmp_path / "space.toml"
    path.write_text(SPACE)
    return path


@pytest.mark.slow
def test_six_trials_on_two_workers_one_sqlite_file(space, tmp_path, mnist_root):
    env = {"TRAINLAB_DATA": str(mnist_root)}
    sweeps = tmp_path / "sweeps"
    proc = run_cli(
        "sweep", str(space), *FLAGS, "--trials", "6", "--workers", "2",
        "--sweeps-dir", str(sweeps), "--json", env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    directory = sweeps / "space"
    trials = _trials(directory, "space")
    assert len(trials) == 6 and sorted(t.number for t in trials) == list(range(6))
    assert {t.state.name for t in trials} <= {"COMPLETE", "PRUNED", "FAIL"}
    params = [json.dumps(t.params, sort_keys=True) for t in trials]
    assert len(set(params)) == 6  # no trial run twice
    runs = sorted(p.name for p in (directory / "trials").iterdir())
    assert runs == [f"trial-{i:04d}" for i in range(6)]
    for t in trials:  # each run directory says how its trial ended
        record = json.loads(
            (directory / "trials" / f"trial-{t.number:04d}" / "trial.json").read_text()
        )
        assert (
            record["state"]
            == {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}[t.state.name]
        )
    assert summary["counted"] == 6 and summary["states"].get("complete", 0) >= 1
    assert "Warning" not in proc.stderr, proc.stderr  # Optuna's notices, from either worker
    page = (directory / "sweep.html").read_text()
    assert page.count("data:image/png;base64,") >= 2 and "http" not in page.split("<h2>")[0]

    # best.toml retrains to the best trial's validation figure
    best = summary["best"][0]
    retrain = run_cli(
        "train", "--config", summary["best_toml"], "--runs-dir", str(tmp_path / "again"),
        "--json", "--quiet", env=env,
    )  # fmt: skip
    assert retrain.returncode == 0, retrain.stderr
    again = json.loads(retrain.stdout)["best"]
    assert again["monitor"] == "val_acc" and again["value"] == best["value"]
    settings = tomllib.loads(Path(summary["best_toml"]).read_text())
    assert (
        settings["lr"] == best["params"]["lr"]
        and settings["model_options"]["hidden"] == (best["params"]["hidden"])
    )

    # the same command again: the sweep is complete, nothing more runs
    more = run_cli(
        "sweep", str(space), *FLAGS, "--trials", "6", "--sweeps-dir", str(sweeps), env=env
    )
    assert more.returncode == 0, more.stderr
    assert len(_trials(directory, "space")) == 6


@pytest.mark.slow
def test_a_trial_that_ran_all_its_epochs_completes_and_its_parameters_read_well(
    tmp_path, mnist_root
):
    """The pruner judges a trial after each epoch but its last: a trial that ran all its epochs
    is COMPLETE, even one the median pruner finds worse than the others there, so the sampler
    and the importances get its figure. Parameters print to 4 significant digits (files keep
    them whole), and Optuna's notices about its experimental API do not show."""
    import optuna

    space = tmp_path / "lr.toml"
    space.write_text("[space]\nlr = { low = 1e-4, high = 0.5, log = true }\nepochs = 2\n")
    sweeps = tmp_path / "sweeps"
    (sweeps / "lr").mkdir(parents=True)
    study = optuna.create_study(
        study_name="lr", storage=f"sqlite:///{sweeps / 'lr' / 'study.db'}", direction="maximize"
    )
    rates = [0.1, 0.041652066074075685, 1e-4]  # two that train, then one far too small
    for lr in rates:
        study.enqueue_trial({"lr": lr})
    proc = run_cli(
        "sweep", str(space), *FLAGS, "--trials", "3", "--sweeps-dir", str(sweeps),
        env={"TRAINLAB_DATA": str(mnist_root)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    trials = _trials(sweeps / "lr", "lr")
    assert [t.params["lr"] for t in trials] == rates
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    # the third was worse than both others at every epoch, the last included
    assert max(trials[2].intermediate_values.values()) < min(
        t.intermediate_values[1] for t in trials[:2]
    )
    for t in trials:
        run_dir = sweeps / "lr" / "trials" / f"trial-{t.number:04d}"
        assert (run_dir / "metrics.jsonl").read_text().count("\n") == 2  # both epochs ran
        record = json.loads((run_dir / "trial.json").read_text())
        assert record["state"] == "complete" and record["params"]["lr"] == rates[t.number]
    page = (sweeps / "lr" / "sweep.html").read_text()
    assert "From the 3 completed trials" in page
    assert "trial 1: lr=0.04165 -> val_acc" in proc.stderr
    assert "trial 2: lr=0.0001 -> val_acc" in proc.stderr and "pruned" not in proc.stderr
    assert "Warning" not in proc.stderr, proc.stderr


def _wait_for(event, worker: subprocess.Popen) -> None:
    """Until ``event()`` holds (what the worker writes), failing at once if the worker ends."""
    while not event():
        try:
            worker.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"the worker ended first: {worker.communicate()}")


@pytest.mark.slow  # waits out the heartbeat's grace period (5 s here) and trains 4 trials
def test_a_killed_worker_leaves_no_trial_running_and_the_rerun_completes(tmp_path, mnist_root):
    import optuna

    space = tmp_path / "long.toml"
    space.write_text("[space]\nlr = { low = 0.01, high = 0.2, log = true }\nepochs = 20\n")
    env = {**os.environ, "TRAINLAB_DATA": str(mnist_root)}
    env |= {"TRAINLAB_SWEEP_HEARTBEAT": "1", "TRAINLAB_SWEEP_GRACE": "5"}
    sweeps = tmp_path / "sweeps"
    command = [sys.executable, "-m", "trainlab", "sweep", str(space), *FLAGS, "--trials", "3",
               "--pruner", "none", "--sweeps-dir", str(sweeps)]  # fmt: skip
    worker = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    metrics = sweeps / "long" / "trials" / "trial-0000" / "metrics.jsonl"
    _wait_for(lambda: metrics.is_file() and metrics.read_text().count("\n") >= 2, worker)
    worker.send_signal(signal.SIGKILL)  # mid-trial: two of its 20 epochs done
    worker.wait()
    assert [t.state.name for t in _trials(sweeps / "long", "long")] == ["RUNNING"]

    rerun = subprocess.run(command + ["--json"], env=env, capture_output=True, text=True,
                           timeout=1800, check=False)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    trials = _trials(sweeps / "long", "long")
    states = [t.state.name for t in trials]
    assert "RUNNING" not in states and "WAITING" not in states
    killed = [t for t in trials if t.state.name == "FAIL" and "error" not in t.user_attrs]
    assert [t.number for t in killed] == [0]
    retried_from = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number
    retried = [t for t in trials if retried_from(t) == 0]
    assert len(retried) == 1 and retried[0].params == killed[0].params  # queued again
    assert states.count("COMPLETE") == 3  # the requested number, the killed one not counted
    record = json.loads((sweeps / "long" / "trials" / "trial-0000" / "trial.json").read_text())
    assert record["state"] == "failed" and "heartbeats" in record["reason"]


@pytest.mark.slow
def test_ctrl_c_fails_the_running_trial_uncounted_and_queues_its_parameters(tmp_path, mnist_root):
    """Ctrl-C stops the running trial's run mid-way: the trial is failed, not complete (its
    figure would be an unfinished run's) and not counted, and its parameters wait for the next
    worker, or the same command run again."""
    import optuna

    space = tmp_path / "long.toml"
    space.write_text("[space]\nlr = { low = 0.01, high = 0.2, log = true }\nepochs = 20\n")
    sweeps = tmp_path / "sweeps"
    command = [sys.executable, "-m", "trainlab", "sweep", str(space), *FLAGS, "--trials", "3",
               "--sweeps-dir", str(sweeps)]  # fmt: skip
    env = {**os.environ, "TRAINLAB_DATA": str(mnist_root)}
    worker = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    metrics = sweeps / "long" / "trials" / "trial-0000" / "metrics.jsonl"
    _wait_for(lambda: metrics.is_file() and metrics.read_text().count("\n") >= 1, worker)
    worker.send_signal(signal.SIGINT)  # one epoch of 20 done
    _, err = worker.communicate(timeout=600)
    assert worker.returncode == 130 and "aborted." in err.decode(), err.decode()

    trials = _trials(sweeps / "long", "long")
    assert [t.state.name for t in trials] == ["FAIL", "WAITING"]
    retried_from = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number
    assert retried_from(trials[1]) == 0 and trials[1].params == trials[0].params
    record = json.loads((metrics.parent / "trial.json").read_text())
    assert record["state"] == "failed"
    assert record["reason"] == (
        "interrupted; its parameters were queued again and another trial tries them"
    )


def test_a_test_metric_is_refused_and_the_reason_given(space, tmp_path):
    proc = run_here("sweep", str(space), "--monitor", "test_acc", cwd=tmp_path)
    assert_clean_error(proc, "--monitor test_acc", "optimistic", "val_acc")
    assert not (tmp_path / "sweeps").exists()


def test_without_optuna_the_error_says_how_to_install_it(space, tmp_path):
    code = (
        "import sys; sys.modules['optuna'] = None\n"
        "from trainlab.cli import main\n"
        f"sys.exit(main(['sweep', {str(space)!r}]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, check=False)  # fmt: skip
    assert_clean_error(proc, "pip install 'trainlab[sweep]'")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[space]\nlrr = { low = 0.1, high = 1.0 }\n", "Did you mean 'lr'"),
        ("[space]\nlr = { low = 1.0, high = 0.1 }\n", "low (1.0) must be below high (0.1)"),
        ("[space]\nlr = { low = 0, high = 1.0, log = true }\n", "log scale needs low > 0"),
        ("[space]\nlr = { choices = [] }\n", "non-empty list"),
        ("[space]\nlr = { low = 0.1 }\n", "a range is { low = ..., high = ... }"),
        ("[space\n", "not a readable TOML file"),
    ],
)
def test_a_bad_space_gets_a_clear_error(tmp_path, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert_clean_error(run_here("sweep", str(path), cwd=tmp_path), needle)


def _postgres_cluster(tmp_path: Path):
    """A temporary PostgreSQL cluster, owned by the postgres user when run as root (in a
    folder of its own under /tmp: pytest's folders are closed to other users)."""
    bindir = Path("/usr/lib/postgresql")
    initdb = shutil.which("initdb") or next(iter(sorted(bindir.glob("*/bin/initdb"))), None)
    if initdb is None:
        pytest.skip("apt-get install postgresql (.ci/run does)")
    pg_ctl = str(Path(initdb).parent / "pg_ctl")
    data, sock = tmp_path / "pgdata", tmp_path / "pgsock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(tmp_path, "postgres")
        shutil.chown(sock, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*prefix, str(initdb), "-D", str(data), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)  # fmt: skip
    port = "54329"
    options = f"-p {port} -k {sock} -c listen_addresses=''"
    subprocess.run([*prefix, pg_ctl, "-D", str(data), "-o", options, "-w", "start",
                    "-l", str(tmp_path / "pg.log")], check=True, capture_output=True)  # fmt: skip
    return prefix, pg_ctl, data, f"postgresql://postgres@/postgres?host={sock}&port={port}"


@pytest.mark.slow
def test_two_processes_share_one_study_on_a_real_postgresql(space, tmp_path, mnist_root):
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="trainlab-pg-"))
    prefix, pg_ctl, data, url = _postgres_cluster(home)
    try:
        env = {**os.environ, "TRAINLAB_DATA": str(mnist_root)}
        command = [sys.executable, "-m", "trainlab", "sweep", str(space), *FLAGS, "--trials",
                   "8", "--storage", url, "--sweep-name", "shared"]  # fmt: skip
        machines = [  # two "machines": separate folders, one database
            subprocess.Popen(
                command + ["--sweeps-dir", str(tmp_path / f"m{i}")],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )  # fmt: skip
            for i in range(2)
        ]
        for machine in machines:
            _, err = machine.communicate(timeout=1800)
            assert machine.returncode == 0, err.decode()
        trials = _trials(tmp_path, "shared", storage=url)
        assert len(trials) == 8 and sorted(t.number for t in trials) == list(range(8))
        assert {t.state.name for t in trials} <= {"COMPLETE", "PRUNED", "FAIL"}
        ran = [len(list((tmp_path / f"m{i}" / "shared" / "trials").iterdir())) for i in range(2)]
        assert sum(ran) == 8 and min(ran) >= 1  # both took part
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True, check=False)  # fmt: skip
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.slow
def test_timeout_stops_claiming_and_says_how_to_continue(space, tmp_path, mnist_root):
    env = {"TRAINLAB_DATA": str(mnist_root)}
    sweeps = tmp_path / "sweeps"
    proc = run_cli(
        "sweep", str(space), *FLAGS, "--trials", "50", "--timeout", "0.5",
        "--sweeps-dir", str(sweeps), env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "--timeout 0.5 s reached; no new trials" in proc.stderr
    assert "run the same command again to continue it" in proc.stdout
    trials = _trials(sweeps / "space", "space")
    assert 1 <= len(trials) < 50 and all(t.state.name != "RUNNING" for t in trials)


@pytest.mark.slow
def test_the_halving_pruner_stops_worse_trials_at_its_first_rung(tmp_path, mnist_root):
    """``--pruner halving`` (Optuna's successive halving): once a first trial has set the rungs,
    a trial goes on past its first rung (epoch 2 of 3 here) only if it is among the best that
    reached it; a pruned trial's run stops at that epoch and says so."""
    space = tmp_path / "wide.toml"  # a range where the rate matters and nothing diverges
    space.write_text("[space]\nlr = { low = 1e-3, high = 0.2, log = true }\nepochs = 3\n")
    sweeps = tmp_path / "sweeps"
    proc = run_here(
        "sweep", str(space), *FLAGS, "--trials", "8", "--pruner", "halving",
        "--sweeps-dir", str(sweeps), "--json", env={"TRAINLAB_DATA": str(mnist_root)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    trials = _trials(sweeps / "wide", "wide")
    assert len(trials) == 8
    # Trial 0 sets the rungs and trial 1 has no rival yet; after that a trial survives only as
    # the best so far, so none pruned among 8 random rates is a 1-in-5040 chance.
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert pruned, [(t.state.name, t.intermediate_values) for t in trials]
    at_rung = {t.number: t.intermediate_values[1] for t in trials if 1 in t.intermediate_values}
    for t in pruned:
        assert sorted(t.intermediate_values) == [0, 1]  # stopped at epoch 2, before epoch 3
        assert at_rung[t.number] < max(v for n, v in at_rung.items() if n != t.number)
        run_dir = sweeps / "wide" / "trials" / f"trial-{t.number:04d}"
        rows = (run_dir / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(r)["epoch"] for r in rows] == [1, 2]
        assert json.loads((run_dir / "trial.json").read_text())["state"] == "pruned"
        assert f"trial {t.number}: " in proc.stderr and "pruned at epoch 2" in proc.stderr
    for t in trials:
        if t.state.name == "COMPLETE":  # ran all its epochs
            assert sorted(t.intermediate_values) == [0, 1, 2]
