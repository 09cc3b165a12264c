"""trainlab under real ``torchrun`` subprocesses: gloo on the CPU, on loopback, no mocks.

What a user would check: the weights 2 processes end with against 1 process, the files in the
run directory, the test count in metrics.jsonl, what happens when a rank is killed, Ctrl-C, a
restart by torchrun, and a resume on another number of processes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import torch

from helpers import assert_clean_error, run_cli

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="this torch has no torch.distributed"
)

# An MLP: no batch norm, so 1 and 2 processes take the same steps to float precision.
MLP = ["--model", "mlp", "--hidden", "64", "--subset", "6000", "--test-subset", "1000"]
# The default CNN, slow enough per epoch to kill a rank in the middle of one.
CNN = ["--subset", "8000", "--test-subset", "1000", "--batch-size", "100", "--epochs", "2"]
RUN_FILES = {"config.toml", "metrics.jsonl", "last.pt", "best.pt", "predictions.npz"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args: str, launcher: list[str] | None = None, **kwargs) -> subprocess.Popen:
    """``torchrun [launcher] -m trainlab train ARGS`` in its own process group."""
    launcher = launcher or ["--standalone", "--nproc-per-node", "2"]
    command = [sys.executable, "-m", "torch.distributed.run", *launcher]
    command += ["-m", "trainlab", "train", "--device", "cpu", *args]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        **kwargs,
    )


def finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"torchrun did not finish in {timeout} s:\n{out[-4000:]}")
    return out


@pytest.fixture
def env(mnist_root):
    return {**os.environ, "TRAINLAB_DATA": str(mnist_root), "PYTHONUNBUFFERED": "1"}


def launch(tmp_path, env, *args, launcher=None, timeout=300) -> tuple[int, str]:
    proc = torchrun(*args, launcher=launcher, cwd=tmp_path, env=env)
    out = finish(proc, timeout)
    return proc.returncode, out


def weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "last.pt", weights_only=False, map_location="cpu")["state_dict"]


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def ancestors(pid: int) -> list[int]:
    out = []
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state: ppid
        out.append(pid)
    return out


def rank_pid(launcher_pid: int, rank: int, timeout: float = 60) -> int:
    """The pid of the worker with global rank ``rank`` started under this torchrun."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if (
                f"RANK={rank}".encode() in env
                and b"trainlab" in cmd
                and b"torch.distributed.run" not in cmd
                and launcher_pid in ancestors(int(pid))
            ):
                return int(pid)
        time.sleep(0.05)
    raise AssertionError(f"no rank {rank} under torchrun {launcher_pid}")


def wait_for_checkpoint(run: Path, proc: subprocess.Popen, batch_at_least: int = 1) -> dict:
    """Wait until last.pt holds a mid-epoch position (written by --checkpoint-every)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, finish(proc)
        if (run / "last.pt").exists():
            try:
                payload = torch.load(run / "last.pt", weights_only=False)
            except (EOFError, RuntimeError):
                payload = None
            if payload and (payload["batch"] >= batch_at_least or payload["epoch"] >= 1):
                return payload
        time.sleep(0.02)
    raise AssertionError("no mid-epoch checkpoint appeared")


@pytest.fixture(scope="module")
def cnn_reference(mnist_root, tmp_path_factory) -> dict[str, torch.Tensor]:
    """An uninterrupted 2-process run of the CNN configuration, to compare with."""
    where = tmp_path_factory.mktemp("reference")
    env = {**os.environ, "TRAINLAB_DATA": str(mnist_root)}
    code, out = launch(where, env, *CNN, "--run-name", "ref")
    assert code == 0, out
    return weights(where / "runs" / "ref")


def test_two_processes_take_the_same_steps_as_one_and_only_rank_0_writes(tmp_path, env):
    args = [*MLP, "--epochs", "3", "--batch-size", "60"]  # 100 steps an epoch, 300 in all
    code, out = launch(tmp_path, env, *args, "--run-name", "two")
    assert code == 0, out
    single = run_cli("train", *args, "--device", "cpu", "--run-name", "one", cwd=tmp_path, env=env)
    assert single.returncode == 0, single.stderr
    runs = tmp_path / "runs"
    assert max_diff(weights(runs / "two"), weights(runs / "one")) <= 1e-5
    # one run directory, written by rank 0 alone, with exactly the files of a run
    assert sorted(p.name for p in runs.iterdir()) == ["one", "two"]
    assert {p.name for p in (runs / "two").iterdir()} == RUN_FILES
    rows = [line for line in (runs / "two" / "metrics.jsonl").read_text().splitlines() if line]
    assert len(rows) == 3 and all('"test_n": 1000' in row for row in rows)
    launch_record = tomllib.loads((runs / "two" / "config.toml").read_text())["launch"]
    assert launch_record["world_size"] == 2 and launch_record["batch_per_process"] == 30
    assert launch_record["backend"] == "gloo"
    # one voice: the summary line once, not once per rank
    assert out.count("test accuracy") == 1, out


@pytest.mark.slow  # `make test-all`: keeps `make test` under 10 minutes
def test_sync_bn_computes_batch_statistics_over_all_processes(tmp_path, env):
    """One step of the CNN on one global batch of 100: with --sync-bn each batch-norm layer's
    running mean is that of all 100 images (as on one process); without, rank 0's 50."""
    one_batch = ["--subset", "100", "--test-subset", "100", "--batch-size", "100", "--epochs", "1"]
    for name, extra in (("sync", ["--sync-bn"]), ("plain", [])):
        code, out = launch(tmp_path, env, *one_batch, *extra, "--run-name", name)
        assert code == 0, out
    single = run_cli(
        "train", *one_batch, "--device", "cpu", "--run-name", "one", cwd=tmp_path, env=env
    )
    assert single.returncode == 0, single.stderr
    runs = tmp_path / "runs"
    one, sync, plain = (weights(runs / n) for n in ("one", "sync", "plain"))
    means = [k for k in one if k.endswith("running_mean")]
    assert means
    assert max((sync[k] - one[k]).abs().max().item() for k in means) < 1e-5
    assert max((plain[k] - one[k]).abs().max().item() for k in means) > 1e-4


@pytest.mark.slow  # `make test-all`: keeps `make test` under 10 minutes
def test_two_machines_on_loopback_complete_a_run_together(tmp_path, env):
    port = free_port()
    nodes = []
    for rank in (0, 1):
        launcher = ["--nnodes", "2", "--node-rank", str(rank), "--rdzv-backend", "c10d"]
        launcher += ["--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "loopback"]
        launcher += ["--nproc-per-node", "1"]
        args = [*MLP, "--epochs", "1", "--batch-size", "100", "--run-name", "pair"]
        nodes.append(torchrun(*args, launcher=launcher, cwd=tmp_path, env=env))
    outs = [finish(proc) for proc in nodes]
    assert [proc.returncode for proc in nodes] == [0, 0], "\n".join(outs)
    run = tmp_path / "runs" / "pair"
    assert {p.name for p in run.iterdir()} == RUN_FILES
    assert tomllib.loads((run / "config.toml").read_text())["launch"]["world_size"] == 2
    assert sum("test accuracy" in out for out in outs) == 1


def test_a_killed_rank_ends_the_job_from_the_failure_with_last_pt_intact(tmp_path, env):
    """The job ends because the survivor sees its peer's connection close, not because a
    collective timed out: the timeout is set to an hour, and the message names the peer."""
    env = {**env, "TRAINLAB_DIST_TIMEOUT": "3600"}
    proc = torchrun(*CNN, "--checkpoint-every", "10", "--run-name", "kill", cwd=tmp_path, env=env)
    run = tmp_path / "runs" / "kill"
    wait_for_checkpoint(run, proc)
    os.kill(rank_pid(proc.pid, 1), signal.SIGKILL)
    out = finish(proc, timeout=1800)  # a safety net only: an hour's timeout never fires here
    assert proc.returncode != 0, out
    assert "timed out" not in out.lower(), out
    assert "another process of this job stopped" in out or "launcher stopped" in out, out
    assert "last.pt" in out and "is intact" in out, out
    payload = torch.load(run / "last.pt", weights_only=False)  # intact: it loads
    assert payload["batch"] % 10 == 0
    assert not list(run.glob("*.tmp*")), list(run.iterdir())


@pytest.mark.slow  # 40 s with its reference run; make test keeps the kill test
def test_torchrun_restart_resumes_the_run_to_the_uninterrupted_weights(
    tmp_path, env, cnn_reference
):
    proc = torchrun(
        *CNN,
        "--checkpoint-every",
        "10",
        "--run-name",
        "restart",
        launcher=["--standalone", "--nproc-per-node", "2", "--max-restarts", "1"],
        cwd=tmp_path,
        env=env,
    )
    run = tmp_path / "runs" / "restart"
    wait_for_checkpoint(run, proc)
    os.kill(rank_pid(proc.pid, 1), signal.SIGKILL)
    out = finish(proc)
    assert proc.returncode == 0, out
    assert "torchrun restart 1: resuming" in out, out
    assert max_diff(weights(run), cnn_reference) <= 1e-6
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2


@pytest.mark.slow  # `make test-all`: keeps `make test` under 10 minutes
def test_ctrl_c_saves_one_checkpoint_and_the_resume_matches(tmp_path, env, cnn_reference):
    proc = torchrun(*CNN, "--run-name", "int", cwd=tmp_path, env=env)
    run = tmp_path / "runs" / "int"
    while not (run / "config.toml").exists():
        assert proc.poll() is None, finish(proc)
        time.sleep(0.05)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal sends on Ctrl-C
    out = finish(proc)
    assert "interrupted: checkpoint saved" in out, out
    assert out.count("interrupt: finishing this batch") == 1, out
    payload = torch.load(run / "last.pt", weights_only=False)
    assert payload["batch"] > 0 and payload["partial"]["n"] == payload["batch"] * 100
    code, out = launch(tmp_path, env, "--resume", str(run))
    assert code == 0, out
    assert max_diff(weights(run), cnn_reference) <= 1e-6


@pytest.mark.slow  # `make test-all`: keeps `make test` under 10 minutes
def test_a_resume_on_another_number_of_processes_reshards_exactly(tmp_path, env):
    """--batch-size is global, so the batches of 2 processes are those of 1: an MLP run stopped
    after one epoch on 2 processes and resumed on 1 ends where a 2-process run ends."""
    args = [*MLP, "--batch-size", "60", "--schedule", "constant"]  # lr independent of --epochs
    code, out = launch(tmp_path, env, *args, "--epochs", "2", "--run-name", "straight")
    assert code == 0, out
    code, out = launch(tmp_path, env, *args, "--epochs", "1", "--run-name", "moved")
    assert code == 0, out
    runs = tmp_path / "runs"
    proc = run_cli("train", "--resume", str(runs / "moved"), "--epochs", "2", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "2 process(es) -> 1" in proc.stderr, proc.stderr
    assert max_diff(weights(runs / "moved"), weights(runs / "straight")) <= 1e-5


@pytest.mark.slow  # three processes on two cores; the rounding has a unit test in test_plan.py
def test_a_global_batch_that_does_not_split_evenly_is_refused(tmp_path, env):
    code, out = launch(tmp_path, env, *MLP, "--batch-size", "101", "--epochs", "1")
    assert code != 0
    assert "--batch-size 101 is the global batch" in out and "multiple of 2" in out, out
    assert "error (rank 0):" in out, out
    assert "src/trainlab/" not in out and "site-packages/trainlab/" not in out, out  # no traceback


@pytest.mark.slow  # three processes on two cores; the rounding has a unit test in test_plan.py
def test_the_default_batch_size_is_rounded_for_three_processes(tmp_path, env):
    launcher = ["--standalone", "--nproc-per-node", "3"]
    args = ["--subset", "600", "--test-subset", "100", "--epochs", "1", "--run-name", "r"]
    code, out = launch(tmp_path, env, *args, launcher=launcher, timeout=1800)
    assert code == 0, out
    assert "the default --batch-size 64 rounded to 63, a multiple of the 3 processes" in out
    config = tomllib.loads((tmp_path / "runs" / "r" / "config.toml").read_text())
    assert config["config"]["batch_size"] == 63 and config["launch"]["batch_per_process"] == 21
    assert "rounded to 63" in config["notes"]["batch_size"]
    assert config["data"]["train"] == 600


def test_sync_bn_on_one_process_is_a_clean_error(tmp_path, env):
    proc = run_cli("train", *MLP, "--sync-bn", "--epochs", "1", cwd=tmp_path, env=env)
    assert_clean_error(proc, "--sync-bn", "torchrun")


@pytest.mark.slow
def test_the_default_run_on_two_processes_reaches_99_percent_on_all_10000(tmp_path, env):
    code, out = launch(tmp_path, env, "--run-name", "default", timeout=1200)
    assert code == 0, out
    run = tmp_path / "runs" / "default"
    import json

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["test_n"] == 10_000
    assert rows[-1]["test_acc"] >= 0.99, rows[-1]
    assert {p.name for p in run.iterdir()} == RUN_FILES
