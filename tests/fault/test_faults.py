"""Fault injection with real processes: SIGKILL at random moments, a full disk, a read-only or
deleted runs directory, two runs with one name, a NaN mid-epoch. Nothing already written is
lost, and every failure ends with a clear error.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import assert_clean_error, run_cli
from trainlab.engine.checkpoint import load_checkpoint, validate_payload
from trainlab.runs import read_metrics

SMALL = ["--subset", "1200", "--test-subset", "300", "--device", "cpu", "--batch-size", "100"]


def _env(mnist_root):
    return {**os.environ, "TRAINLAB_DATA": str(mnist_root)}


def _assert_intact(run_dir: Path) -> None:
    """Checkpoints absent or loadable (and resumable); metrics.jsonl parses line by line."""
    for name in ("last.pt", "best.pt"):
        if (run_dir / name).exists():
            payload = load_checkpoint(run_dir / name)
            validate_payload(payload, resume=True)
    lines = (
        (run_dir / "metrics.jsonl").read_text().splitlines()
        if (run_dir / "metrics.jsonl").exists()
        else []
    )
    for line in lines[:-1]:
        json.loads(line)
    # a killed write may leave its temp file, but only ever one named for a file of the run,
    # beside it, and never in the place of the file itself
    known = ("last.pt", "best.pt", "metrics.jsonl", "config.toml", "predictions.npz")
    for tmp in run_dir.glob(".*.tmp"):
        assert tmp.name.startswith(tuple(f".{name}." for name in known)), tmp.name


@pytest.mark.parametrize(
    "kills",
    # both in `make test-all` and `make fuzz`: `make test` stays under 10 minutes
    [
        pytest.param(3, marks=pytest.mark.slow, id="3-kills"),
        pytest.param(20, marks=pytest.mark.slow, id="20-kills"),
    ],
)
def test_sigkill_at_random_moments_loses_nothing(tmp_path, mnist_root, kills):
    # a large MLP, so that a good share of the time goes to writing 46 MB checkpoints
    base = [sys.executable, "-m", "trainlab", "train", *SMALL, "--model", "mlp"]
    base += ["--hidden", "2048", "2048", "--schedule", "constant", "--runs-dir", str(tmp_path)]
    rng = random.Random(kills)
    survived, run_dir, killed_during_write = 0, None, 0
    while survived < kills:
        args = (
            ["--resume", str(run_dir)]
            if run_dir and (run_dir / "last.pt").exists()
            else ["--epochs", "30"]
        )
        proc = subprocess.Popen(
            [*base, *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=_env(mnist_root),
        )
        for line in proc.stderr:  # wait until training starts
            if line.startswith("run "):
                run_dir = Path(line.split()[1])
                break
        if survived % 2:  # every other time: the moment a checkpoint is being written
            deadline = time.time() + 10
            while time.time() < deadline and not list(run_dir.glob(".*.pt.*.tmp")):
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.05))
        else:
            time.sleep(rng.uniform(0.0, 2.5))
        if list(run_dir.glob(".*.tmp")):
            killed_during_write += 1
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.returncode == 0:  # finished before the kill: start another run
            run_dir = None
            continue
        _assert_intact(run_dir)
        survived += 1
    finish = (
        run_cli(
            "train",
            "--resume",
            str(run_dir),
            "--json",
            env={"TRAINLAB_DATA": str(mnist_root)},
            timeout=600,
        )
        if (run_dir / "last.pt").exists()
        else run_cli(
            "train",
            *SMALL,
            "--model",
            "mlp",
            "--epochs",
            "1",
            "--runs-dir",
            str(tmp_path),
            "--json",
            env={"TRAINLAB_DATA": str(mnist_root)},
        )
    )
    assert finish.returncode == 0, finish.stderr
    result = json.loads(finish.stdout)
    assert result["status"] == "completed"
    rows = read_metrics(result["run_dir"])
    assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1))
    print(
        f"SIGKILL: {survived} of {kills} kill points survived "
        f"({killed_during_write} during a checkpoint write); the run resumed to completion"
    )


@pytest.mark.slow
def test_disk_full_keeps_the_previous_checkpoint(tmp_path, mnist_root):
    env = {"TRAINLAB_DATA": str(mnist_root)}
    args = [*SMALL, "--model", "mlp", "--hidden", "1024", "1024", "--runs-dir", str(tmp_path)]
    first = run_cli("train", *args, "--epochs", "1", "--run-name", "full", env=env)
    assert first.returncode == 0, first.stderr
    run_dir = tmp_path / "full"
    before = (run_dir / "last.pt").read_bytes()
    size = len(before)

    def small_file_limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, size // 2))

    proc = subprocess.run(
        [sys.executable, "-m", "trainlab", "train", "--resume", str(run_dir), "--epochs", "2"],
        capture_output=True,
        text=True,
        env=_env(mnist_root),
        preexec_fn=small_file_limit,
        timeout=300,
        check=False,
    )
    assert_clean_error(proc, "last.pt: could not be written", "the previous one is kept")
    assert (run_dir / "last.pt").read_bytes() == before
    assert load_checkpoint(run_dir / "last.pt")["epoch"] == 1
    assert [r["epoch"] for r in read_metrics(run_dir)] == [1]  # no row for the lost epoch
    assert not list(run_dir.glob(".*.tmp"))
    again = run_cli("train", "--resume", str(run_dir), "--epochs", "2", env=env)
    assert again.returncode == 0, again.stderr


def _mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def test_a_full_filesystem_stops_the_run_cleanly(tmp_path, mnist_root):
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "size=3m"):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        proc = run_cli(
            "train",
            *SMALL,
            "--model",
            "mlp",
            "--hidden",
            "1024",
            "1024",
            "--epochs",
            "2",
            "--runs-dir",
            str(disk),
            env={"TRAINLAB_DATA": str(mnist_root)},
        )
        assert_clean_error(proc, "could not be written", "disk may be full")
        for run_dir in disk.iterdir():
            _assert_intact(run_dir)
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_a_read_only_runs_directory(tmp_path, mnist_root):
    runs = tmp_path / "ro"
    if not _mount_tmpfs(runs, "ro,size=1m"):
        if os.geteuid() == 0:
            pytest.skip("cannot mount a read-only tmpfs here")
        runs.chmod(0o555)
    try:
        proc = run_cli(
            "train",
            *SMALL,
            "--epochs",
            "1",
            "--runs-dir",
            str(runs),
            env={"TRAINLAB_DATA": str(mnist_root)},
        )
        assert_clean_error(proc, str(runs))
        assert "Read-only" in proc.stderr or "ermission" in proc.stderr
    finally:
        subprocess.run(["umount", str(runs)], check=False, capture_output=True)


def test_a_runs_directory_deleted_mid_run(tmp_path, mnist_small):
    from trainlab import Trainer, build_model
    from trainlab.engine.callbacks import Callback
    from trainlab.errors import TrainlabError

    class DeleteAfterFirstEpoch(Callback):
        def on_epoch_end(self, trainer, row):  # noqa: ARG002
            if row["epoch"] == 1:
                shutil.rmtree(tmp_path / "gone")

    model = build_model("mlp", mnist_small, hidden=[16])
    trainer = Trainer(
        epochs=3,
        runs_dir=str(tmp_path),
        run_name="gone",
        device="cpu",
        callbacks=[DeleteAfterFirstEpoch()],
    )
    with pytest.raises(TrainlabError, match="the run directory is gone"):
        trainer.fit(model, mnist_small)
    assert not (tmp_path / "gone").exists()  # not silently re-created with half a run


def test_two_runs_started_with_one_name_never_share_a_directory(tmp_path, mnist_root):
    cmd = [
        sys.executable,
        "-m",
        "trainlab",
        "train",
        *SMALL,
        "--epochs",
        "1",
        "--runs-dir",
        str(tmp_path),
        "--run-name",
        "same",
        "--json",
        "--quiet",
    ]
    procs = [
        subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(mnist_root)
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    dirs = sorted(json.loads(out)["run_dir"] for out, _ in outs)
    assert [Path(d).name for d in dirs] == ["same", "same-2"]
    for d in dirs:
        assert [r["epoch"] for r in read_metrics(d)] == [1]


def test_a_nan_mid_epoch_stops_with_the_last_good_checkpoint(tmp_path, mnist_small):
    from trainlab import Trainer, build_model
    from trainlab.errors import TrainingDiverged

    model = build_model("mlp", mnist_small, hidden=[16])
    trainer = Trainer(epochs=3, runs_dir=str(tmp_path), run_name="nan", device="cpu")
    calls = {"n": 0}
    per_epoch = -(-len(mnist_small.train_y) // trainer.config.batch_size)

    def poison(module, args, output):  # noqa: ARG001 - a forward hook's signature
        if module.training:
            calls["n"] += 1
            if calls["n"] == per_epoch + 5:  # mid-way through epoch 2
                return output * float("nan")
        return output

    model.register_forward_hook(poison)
    with pytest.raises(TrainingDiverged, match="diverged in epoch 2.*last good checkpoint"):
        trainer.fit(model, mnist_small)
    saved = load_checkpoint(tmp_path / "nan" / "last.pt")
    assert saved["epoch"] == 1
    assert all(
        torch.isfinite(v).all() for v in saved["state_dict"].values() if v.is_floating_point()
    )
    assert [r["epoch"] for r in read_metrics(tmp_path / "nan")] == [1]


def test_a_kill_between_the_checkpoint_and_its_metrics_row(tmp_path, mnist_small):
    """The window the SIGKILL test found: last.pt written, its metrics.jsonl row not yet."""
    from trainlab import Trainer, build_model

    first = Trainer(epochs=1, runs_dir=str(tmp_path), run_name="w", device="cpu").fit(
        build_model("mlp", mnist_small, hidden=[16]), mnist_small
    )
    (first.run_dir / "metrics.jsonl").write_text("")  # as if killed before the append
    resumed = Trainer(epochs=2).fit(
        build_model("mlp", mnist_small, hidden=[16]), mnist_small, resume=first.run_dir
    )
    assert [r["epoch"] for r in read_metrics(first.run_dir)] == [1, 2]
    assert read_metrics(first.run_dir)[0] == first.history[0]
    assert [r["epoch"] for r in resumed.history] == [1, 2]
