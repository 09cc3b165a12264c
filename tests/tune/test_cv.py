"""trainlab cv: K fold figures, mean ± std, a fold rerun to the same figure, and its refusals."""

from __future__ import annotations

import json
import tomllib

import pytest

from helpers import assert_clean_error, run_here


@pytest.mark.slow
def test_cv_reports_each_fold_and_a_rerun_fold_gives_the_same_figure(tmp_path, mnist_root):
    env = {"TRAINLAB_DATA": str(mnist_root)}
    flags = ["--model", "mlp", "--subset", "900", "--test-subset", "200", "--device", "cpu"]
    flags += ["--runs-dir", str(tmp_path), "--run-name", "cv"]
    proc = run_here("cv", "--folds", "3", *flags, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    values = [r["value"] for r in result["results"]]
    assert len(values) == 3 and result["monitor"] == "val_acc"
    mean = sum(values) / 3
    std = (sum((v - mean) ** 2 for v in values) / 2) ** 0.5
    assert abs(result["mean"] - mean) < 1e-12 and abs(result["std"] - std) < 1e-12
    folds = [
        tomllib.loads((tmp_path / "cv" / f"fold-{i}" / "config.toml").read_text())
        for i in (1, 2, 3)
    ]
    assert [(c["config"]["folds"], c["config"]["fold"]) for c in folds] == [(3, 1), (3, 2), (3, 3)]
    # the folds partition the 900 training images: 300 validation images each
    assert [c["data"]["val"] for c in folds] == [300, 300, 300]
    assert json.loads((tmp_path / "cv" / "cv.json").read_text())["mean"] == result["mean"]

    again = run_here("cv", "--folds", "3", "--only-fold", "2", *flags, "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["results"][0]["value"] == values[1]
    # a fold's own config reruns it too
    rerun = run_here(
        "train", "--config", str(tmp_path / "cv" / "fold-2" / "config.toml"),
        "--runs-dir", str(tmp_path / "more"), "--json", "--quiet", env=env,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["best"]["value"] == values[1]


def test_cv_refuses_a_validation_split_and_too_few_images(tmp_path, mnist_root):
    env = {"TRAINLAB_DATA": str(mnist_root)}
    assert_clean_error(
        run_here("cv", "--folds", "3", "--val-split", "0.1", env=env), "drop --val-split"
    )
    proc = run_here("cv", "--folds", "5", "--model", "mlp", "--subset", "20",
                   "--runs-dir", str(tmp_path), env=env)  # fmt: skip
    assert_clean_error(proc, "a class has fewer than 5 training images")
