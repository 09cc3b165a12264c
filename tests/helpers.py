"""Helpers the tests import: real CLI subprocesses, clean-error checks, small IDX files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from trainlab.data.idx import encode_idx


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
    *args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 1800
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


def run_here(
    *args: str, env: dict | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """``trainlab ARGS`` through ``trainlab.cli.main`` in this process, its output caught.

    For refusals: what they print and return is the same as in a subprocess, without a second
    interpreter and torch import for each (about 2.5 s). Anything main lets escape (a bare
    traceback, in a subprocess) fails the test as it is raised.
    """
    import contextlib
    import io

    from trainlab.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    try:
        os.environ.update({k: v for k, v in (env or {}).items() if v is not None})
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as stop:  # argparse's own refusals
                code = stop.code if isinstance(stop.code, int) else 2
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
    return subprocess.CompletedProcess(["trainlab", *args], code, out.getvalue(), err.getvalue())


def assert_clean_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """A one-paragraph error for people: non-zero exit, 'error:', no traceback, the needles."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "error:" in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, f"{needle!r} not in: {proc.stderr}"


FUZZ_COUNTS: dict[str, list[int]] = {}  # fuzz target -> [inputs tried, ended cleanly]


def fuzz_target(target: str):
    """Count each input a property test tries, and those it ends cleanly on (no unexpected
    exception, every assertion held); the counts are printed at the end of the run."""
    import functools

    def decorate(test):
        @functools.wraps(test)
        def run(*args, **kwargs):
            counts = FUZZ_COUNTS.setdefault(target, [0, 0])
            counts[0] += 1
            try:
                result = test(*args, **kwargs)
            except BaseException as e:
                # Hypothesis abandons a draw that ran out of data (StopTest and the like):
                # no input was tried, so it is not counted
                if type(e).__module__.startswith("hypothesis"):
                    counts[0] -= 1
                raise
            counts[1] += 1
            return result

        return run

    return decorate


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def ensure_chromium() -> str | None:
    """Debian's chromium (installed with apt-get when missing and root), or None."""
    import shutil

    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "chromium", "fonts-dejavu-core"],
        capture_output=True,
        check=False,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    return shutil.which("chromium")


def launch_chromium(playwright, executable: str):
    """Headless Chromium through Playwright, with nothing reaching for the network."""
    return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)


def read_pty(leader: int) -> str:
    """Everything a process wrote to a pseudo-terminal until it closed."""
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


def write_sklearn_table(name: str, path: Path, seed: int = 0, missing: float = 0.03) -> Path:
    """One of scikit-learn's bundled tables (breast_cancer, wine, diabetes) as a CSV file, with
    an added categorical column ("colour", three values) and a share of empty cells."""
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    rng = np.random.default_rng(seed)
    columns = [str(c).replace(" ", "_") for c in bunch.feature_names]
    colour = rng.choice(["red", "green", "blue"], size=len(bunch.target))
    rows = [[*columns, "colour", "target"]]
    for i, (x, y) in enumerate(zip(bunch.data, bunch.target, strict=True)):
        cells = ["" if rng.random() < missing else repr(float(v)) for v in x]
        label = repr(float(y)) if name == "diabetes" else str(bunch.target_names[y])
        rows.append([*cells, str(colour[i]), label])
    import csv

    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def ctrl_c_after(epoch: int, batch: int):
    """A callback that presses Ctrl-C (a real SIGINT to this process) after ``batch`` of
    ``epoch`` (both as the loop counts them), to interrupt a run where a test wants it."""
    import signal

    from trainlab.engine.callbacks import Callback

    class CtrlC(Callback):
        def on_batch_end(self, trainer, state, loss_sum, num_batches):  # noqa: ARG002
            if state.epoch == epoch and state.batch == batch:
                os.kill(os.getpid(), signal.SIGINT)

    return CtrlC()
