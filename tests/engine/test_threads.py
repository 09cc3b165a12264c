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
    env = _without("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
    proc = subprocess.run(  # run_cli adds to os.environ; this child must not see them at all
        [sys.executable, "-m", "trainlab", "train", "--model", "mlp", "--subset", "500",
         "--test-subset", "100", "--data-dir", str(mnist_root), "--runs-dir", str(tmp_path),
         "--device", "cpu", "--json", "--quiet"],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run = Path(json.loads(proc.stdout)["run_dir"])
    resolved = tomllib.loads((run / "config.toml").read_text())["resolved"]
    # the same count on a busy machine as on an idle one: a seed gives the same weights
    assert resolved["threads_chosen"].startswith(f"the cores this process may use ({CORES}, ")
    assert 1 <= resolved["threads"] <= CORES
    free = _resolved(tmp_path / "free", mnist_root, {"TRAINLAB_THREADS": "free"})
    assert free["threads_chosen"].startswith(f"free (TRAINLAB_THREADS=free): {CORES} cores, ")
    assert resolved["omp_wait_policy"] == "PASSIVE (set by trainlab: idle threads sleep)"


def test_an_explicit_omp_num_threads_and_wait_policy_are_kept(tmp_path, mnist_root):
    resolved = _resolved(
        tmp_path, mnist_root, {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "ACTIVE"}
    )
    assert resolved["threads"] == 1
    assert resolved["threads_chosen"] == "OMP_NUM_THREADS=1 (set before the run)"
    assert resolved["omp_wait_policy"] == "OMP_WAIT_POLICY=ACTIVE (set before the run)"


def test_import_trainlab_sets_the_wait_policy_before_torch_loads_openmp():
    """libgomp reads OMP_WAIT_POLICY once, when torch loads it: the variable must be there by
    then, whether a program starts at ``import trainlab`` or at the CLI."""
    code = (
        "import os, trainlab, torch;"
        "from trainlab.engine import threads;"
        "print(os.environ.get('OMP_WAIT_POLICY'), '|', threads.wait_policy(), '|',"
        "threads.environment_as_given().get('OMP_WAIT_POLICY'))"
    )
    env = _without("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )
    # children get it; a benchmark's peers can have the environment as the user gave it
    assert out.stdout.strip() == "PASSIVE | PASSIVE (set by trainlab: idle threads sleep) | None"
    late = code.replace("import os, trainlab, torch", "import os, torch, trainlab")
    out = subprocess.run(
        [sys.executable, "-c", late], env=env, capture_output=True, text=True, timeout=600
    )
    value, policy, given = out.stdout.strip().split(" | ")
    assert value == "None" and policy.startswith("libgomp's default (spin, then sleep)")
    assert given == "None"


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


def test_a_seed_gives_the_same_weights_beside_a_busy_process(tmp_path, mnist_root):
    """The thread count does not follow the load (it changes how float sums are split), so a
    run beside a process that keeps a core busy ends with the weights of the run without it."""
    import hashlib

    def weights(name: str) -> str:
        proc = run_cli(
            "train", "--subset", "2000", "--test-subset", "100", "--seed", "3",
            "--data-dir", str(mnist_root), "--runs-dir", str(tmp_path), "--run-name", name,
            "--device", "cpu", "--quiet", env=_without("OMP_NUM_THREADS", "TRAINLAB_THREADS"),
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
