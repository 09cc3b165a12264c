"""engine/threads.py: a run computes on the cores left free unless the user chose, says so in
config.toml, and its idle OpenMP threads sleep unless the environment says otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

from helpers import run_cli
from trainlab import Trainer
from trainlab.models import build_model
from trainlab.resolve import resolve_config

CORES = len(os.sched_getaffinity(0))


def _resolved(tmp_path: Path, mnist_root: Path, env: dict) -> dict:
    proc = run_cli(
        "train", "--model", "mlp", "--subset", "500", "--test-subset", "100", "--epochs", "2",
        "--data-dir", str(mnist_root), "--runs-dir", str(tmp_path), "--device", "cpu",
        "--json", "--quiet", env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run = Path(json.loads(proc.stdout)["run_dir"])
    return tomllib.loads((run / "config.toml").read_text())["resolved"]


def _without(*names: str) -> dict:
    return {k: v for k, v in os.environ.items() if k not in names}


def test_a_run_records_the_threads_it_chose_from_the_free_cores(tmp_path, mnist_root):
    env = _without("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "TRAINLAB_THREADS")
    proc = subprocess.run(  # run_cli adds to os.environ; this child must not see them at all
        [sys.executable, "-m", "trainlab", "train", "--model", "mlp", "--subset", "500",
         "--test-subset", "100", "--data-dir", str(mnist_root), "--runs-dir", str(tmp_path),
         "--device", "cpu", "--json", "--quiet"],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run = Path(json.loads(proc.stdout)["run_dir"])
    resolved = tomllib.loads((run / "config.toml").read_text())["resolved"]
    assert resolved["threads_chosen"].startswith(f"free cores: {CORES} cores, ")
    assert 1 <= resolved["threads"] <= CORES
    assert resolved["omp_wait_policy"] == "libgomp's default (a short spin, then sleep)"
    pinned = _resolved(tmp_path / "cores", mnist_root, {"TRAINLAB_THREADS": "cores"})
    assert pinned["threads"] == CORES  # the physical cores; one per vCPU here
    assert pinned["threads_chosen"].startswith("cores (TRAINLAB_THREADS=cores)")


def test_an_explicit_omp_num_threads_and_wait_policy_are_kept(tmp_path, mnist_root):
    resolved = _resolved(
        tmp_path, mnist_root, {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "ACTIVE"}
    )
    assert resolved["threads"] == 1
    assert resolved["threads_chosen"] == "OMP_NUM_THREADS=1 (set before the run)"
    assert resolved["omp_wait_policy"] == "OMP_WAIT_POLICY=ACTIVE (set before the run)"


def test_an_unknown_threads_mode_is_refused_by_name(tmp_path, mnist_root):
    proc = run_cli(
        "train", "--model", "mlp", "--subset", "100", "--data-dir", str(mnist_root),
        "--runs-dir", str(tmp_path), env={"TRAINLAB_THREADS": "4"},
    )  # fmt: skip
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "TRAINLAB_THREADS=4: expected free" in proc.stderr and "OMP_NUM_THREADS" in proc.stderr


@pytest.mark.skipif(CORES < 2, reason="one core: torch.set_num_threads(1) is the default")
def test_torch_set_num_threads_before_a_fit_is_kept(tmp_path, mnist_small):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = resolve_config(
            {"epochs": 1, "runs_dir": str(tmp_path), "device": "cpu", "model": "mlp"}
        ).config
        torch.manual_seed(0)
        model = build_model("mlp", mnist_small)
        result = Trainer(config, quiet=True).fit(model, mnist_small)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    resolved = tomllib.loads((result.run_dir / "config.toml").read_text())["resolved"]
    assert resolved["threads"] == 1
    assert resolved["threads_chosen"] == "torch.set_num_threads(1) (called before the run)"


def test_pinned_threads_give_a_seed_the_same_weights_beside_a_busy_process(tmp_path, mnist_root):
    """The thread count changes how float sums are split: with TRAINLAB_THREADS=cores it does
    not follow the load, and a run beside a process that keeps a core busy ends with the
    weights of the run without it."""
    import hashlib

    def weights(name: str) -> str:
        proc = run_cli(
            "train", "--subset", "2000", "--test-subset", "100", "--seed", "3",
            "--data-dir", str(mnist_root), "--runs-dir", str(tmp_path), "--run-name", name,
            "--device", "cpu", "--quiet", env={"TRAINLAB_THREADS": "cores"},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        state = torch.load(tmp_path / name / "last.pt", weights_only=False)["state_dict"]
        digest = hashlib.sha256()
        for key in sorted(state):
            digest.update(key.encode() + state[key].cpu().numpy().tobytes())
        return digest.hexdigest()

    alone = weights("alone")
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        beside = weights("beside")
    finally:
        hog.kill()
        hog.wait()
    assert beside == alone
