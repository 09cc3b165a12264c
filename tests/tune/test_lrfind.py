"""trainlab lr-find (a suggestion that trains well, a valid PNG, no weights left behind) and
--lr auto."""

from __future__ import annotations

import json
import tomllib

import pytest
from PIL import Image

from helpers import assert_clean_error, run_here

DATA = ["--subset", "10000", "--test-subset", "1000", "--device", "cpu"]


@pytest.mark.slow
def test_lr_find_suggests_a_rate_that_trains_well_and_leaves_no_weights(tmp_path, mnist_root):
    env = {"TRAINLAB_DATA": str(mnist_root)}
    proc = run_here("lr-find", *DATA, "--json", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert found["rule"].startswith("a tenth of the lr where the smoothed loss is lowest")
    assert 50 <= found["steps"] <= 100 and found["stopped"]  # about 100, or until it diverged
    with Image.open(tmp_path / "lr_find.png") as image:
        image.verify()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr_find.png"]  # no runs/, no .pt

    # training with the suggestion works: one epoch of the default CNN
    lr = f"{found['suggested_lr']:.3g}"
    trained = run_here(
        "train", *DATA, "--lr", lr, "--runs-dir", str(tmp_path / "runs"), "--json", "--quiet",
        env=env,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert json.loads(trained.stdout)["final"]["test_acc"] >= 0.96
    # and it is within a factor of 3 of the default 0.1 (one-cycle), which trains to 99%
    assert 0.1 / 3 <= found["suggested_lr"] <= 0.3


@pytest.mark.slow
def test_lr_auto_runs_the_range_test_first_and_records_the_value(tmp_path, mnist_root):
    env = {"TRAINLAB_DATA": str(mnist_root)}
    proc = run_here(
        "train", *DATA, "--lr", "auto", "--runs-dir", str(tmp_path), "--run-name", "auto",
        "--json", env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "--lr auto: running the learning-rate range test first" in proc.stderr
    config = tomllib.loads((tmp_path / "auto" / "config.toml").read_text())
    assert "--lr auto" in config["notes"]["lr"]
    assert f"{config['config']['lr']:g}" in config["notes"]["lr"]
    bad = run_here("train", "--lr", "fast", env=env)
    assert bad.returncode == 2 and "a number (e.g. 0.1) or auto" in bad.stderr


@pytest.mark.slow
def test_lr_find_takes_its_range_steps_and_output(tmp_path, mnist_root):
    env = {"TRAINLAB_DATA": str(mnist_root)}
    out = tmp_path / "curve.png"
    proc = run_here(
        "lr-find", *DATA, "--steps", "30", "--start-lr", "1e-4", "--end-lr", "1",
        "--output", str(out), "--json", env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert found["steps"] <= 30 and 1e-5 <= found["suggested_lr"] <= 0.1  # a tenth of <= 1
    assert found["png"] == str(out) and out.stat().st_size > 1000
    bad = run_here("lr-find", "--start-lr", "1", "--end-lr", "0.1", env=env, cwd=tmp_path)
    assert_clean_error(bad, "need 0 < start < end")
