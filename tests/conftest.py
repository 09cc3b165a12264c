"""Shared fixtures: real MNIST (small stratified subsets), temp data roots, CLI subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trainlab.data.idx import encode_idx

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _has_mnist(root: Path) -> bool:
    raw = root / "MNIST" / "raw"
    return raw.is_dir() and len(list(raw.glob("*ubyte*"))) >= 4


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory) -> Path:
    """A root holding real MNIST: $TRAINLAB_DATA, else ../shared, else fetched from the index."""
    for candidate in (os.environ.get("TRAINLAB_DATA"), SHARED):
        if candidate and _has_mnist(Path(candidate)):
            return Path(candidate)
    from trainlab.data.mnist_family import ensure_files

    root = tmp_path_factory.mktemp("mnist-root")
    ensure_files("mnist", root, ("index",))
    return root


@pytest.fixture(scope="session")
def mnist(mnist_root):
    from trainlab.data import load_dataset

    return load_dataset("mnist", mnist_root, sources=("local",))


@pytest.fixture(scope="session")
def mnist_small(mnist):
    """2,000 training and 500 test images, stratified."""
    return mnist.subset(2000, 500, seed=0)


def write_family(
    root: Path, folder: str = "FashionMNIST", n_train: int = 60, n_test: int = 20, seed: int = 0
) -> Path:
    """Write small, valid IDX files in torchvision's layout; return the raw folder."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(encode_idx(images))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(encode_idx(labels))
    return raw


def run_cli(
    *args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run ``python -m trainlab ARGS`` in a real subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "trainlab", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def assert_clean_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """A one-paragraph error for people: non-zero exit, 'error:', no traceback, the needles."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "error:" in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, f"{needle!r} not in: {proc.stderr}"


@pytest.fixture(scope="session")
def default_run(tmp_path_factory, mnist_root) -> Path:
    """The README's default run: `trainlab train` (the cnn, 2 epochs, full MNIST)."""
    runs = tmp_path_factory.mktemp("default-run")
    proc = run_cli(
        "train",
        "--runs-dir",
        str(runs),
        "--run-name",
        "default",
        "--device",
        "cpu",
        env={"TRAINLAB_DATA": str(mnist_root)},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return runs / "default"
