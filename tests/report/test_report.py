"""Reports, comparisons, TensorBoard and progress output, checked by reading what they show."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import ensure_chromium, launch_chromium, read_pty, run_cli, run_here

QUICK = ["--subset", "3000", "--test-subset", "1000", "--device", "cpu"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, mnist_root):
    """Two finished runs (different lr), one with TensorBoard on."""
    root = tmp_path_factory.mktemp("runs")
    env = {"TRAINLAB_DATA": str(mnist_root)}
    for name, extra in (
        ("a", ["--tensorboard", "--log-every", "5", "--val-split", "0.1"]),
        ("b", ["--lr", "0.02"]),
    ):
        proc = run_cli(
            "train",
            *QUICK,
            "--epochs",
            "3",
            "--runs-dir",
            str(root),
            "--run-name",
            name,
            *extra,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr
    return root, env


def test_report_figures_show_what_eval_reports(runs):
    from trainlab.engine.predictions import load_predictions
    from trainlab.report import figures, read_run

    root, env = runs
    run_dir = root / "a"
    proc = run_here("report", str(run_dir), env=env)
    assert proc.returncode == 0, proc.stderr
    for name in ("curves.png", "confusion.png", "mistakes.png", "report.html"):
        assert (run_dir / name).read_bytes()[:4] in (b"\x89PNG", b"<!DO")

    evaluated = json.loads(
        run_here("eval", str(run_dir / "best.pt"), "--json", "--no-save", env=env).stdout
    )
    pred = load_predictions(run_dir / "predictions.npz")
    k = len(pred["classes"])
    matrix = np.bincount(pred["labels"] * k + pred["pred"], minlength=k * k).reshape(k, k)
    assert matrix.tolist() == evaluated["confusion"]
    # the numbers drawn in the confusion figure's cells are eval's
    fig = figures.confusion_figure(matrix, [str(c) for c in pred["classes"]])
    drawn = [int(t.get_text()) for t in fig.axes[0].texts]
    assert drawn == [v for row in evaluated["confusion"] for v in row]
    # and the HTML table holds the same counts
    page = (run_dir / "report.html").read_text()
    table = page.split('<table class="confusion">')[1].split("</table>")[0]
    rows_html = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1])
    cells = [int(c) for row in rows_html for c in re.findall(r"<td>(\d+)</td>", row)[1:]]
    assert cells == [v for row in evaluated["confusion"] for v in row]
    assert f"{100 * evaluated['accuracy']:.2f}%" in page
    # curves: one point per epoch for every split
    _, _, rows = read_run(run_dir)
    curves = figures.curves_figure(rows)
    for ax in curves.axes:
        for line in ax.lines:
            assert list(line.get_xdata()) == [1, 2, 3]
    assert {line.get_label() for line in curves.axes[1].lines} == {
        "train acc",
        "val acc",
        "test acc",
    }
    # the page says what chose best.pt, shows no wall-clock column, and only MNIST's settings
    assert "best.pt chosen on the validation split" in page
    epochs_table = page.split('<table class="epochs">')[1].split("</table>")[0]
    assert "<th>time</th>" not in epochs_table and "<th>test_acc</th>" in epochs_table
    settings = page.split("<h2>Configuration</h2>")[1].split("</table>")[0]
    for other_data in ("true_w", "true_b", "samples", "num_classes", "features", "hidden"):
        assert f"<td>{other_data}</td>" not in settings
    assert "<td>widths</td>" in settings and "<td>val_split</td>" in settings
    assert run_here("report", str(root / "b"), env=env).returncode == 0
    # without a validation split nothing is chosen on the test split: best.pt is the last epoch
    assert "best.pt chosen on the last epoch (no validation split" in (
        (root / "b" / "report.html").read_text()
    )
    # mistakes are ordered by loss and really are mistakes
    mistakes = pred["mistakes"]
    assert (pred["pred"][mistakes] != pred["labels"][mistakes]).all()
    assert (np.diff(pred["loss"][mistakes]) <= 0).all()


def test_eval_writes_predictions(runs, tmp_path):
    root, env = runs
    copy = tmp_path / "b"
    shutil.copytree(root / "b", copy)
    (copy / "predictions.npz").unlink()
    assert run_here("eval", str(copy / "last.pt"), env=env).returncode == 0
    from trainlab.engine.predictions import load_predictions

    pred = load_predictions(copy / "predictions.npz")
    assert str(pred["checkpoint"]) == "last.pt" and len(pred["labels"]) == 1000
    assert pred["probs"].shape == (1000, 10)


def test_compare_lists_differences_and_draws_overlaid_curves(runs, tmp_path):
    root, env = runs
    proc = run_cli(
        "compare",
        str(root / "a"),
        str(root / "b"),
        "--output",
        str(tmp_path / "c.png"),
        "--json",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    table = json.loads(proc.stdout)
    header = table["header"]
    assert "lr" in header and "tensorboard" in header and "val_split" in header
    assert "epochs done" in header and "test_acc" in header and "model" not in header
    assert header.count("epochs done") == 1 and "epochs" not in header  # both ran 1 epoch
    lr = header.index("lr")
    assert [r[lr] for r in table["rows"]] == [0.1, 0.02]
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_writes_its_picture_beside_the_runs(runs, tmp_path):
    root, env = runs
    proc = run_here("compare", str(root / "a"), str(root / "b"), env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"curves: {root / 'compare.png'}" in proc.stdout
    assert (root / "compare.png").is_file() and not (tmp_path / "compare.png").exists()


def test_tensorboard_scalars_match_metrics(runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from trainlab.runs import read_metrics

    root, _ = runs
    rows = read_metrics(root / "a")
    events = EventAccumulator(str(root / "a" / "tb"), size_guidance={"images": 0}).Reload()
    tags = events.Tags()
    for key in ("train_loss", "train_acc", "val_acc", "test_loss", "test_acc", "lr"):
        assert [e.step for e in events.Scalars(key)] == [1, 2, 3]
        assert [e.value for e in events.Scalars(key)] == pytest.approx(
            [r[key] for r in rows], rel=1e-6
        )
    assert "batch/train_loss" in tags["scalars"]
    assert "confusion_matrix" in tags["images"]
    assert (root / "a" / "tb" / "hparams").is_dir()


@pytest.mark.slow
def test_piped_output_has_no_control_characters(tmp_path, mnist_root):
    proc = run_cli(
        "train",
        *QUICK,
        "--epochs",
        "1",
        "--log-every",
        "3",
        "--runs-dir",
        str(tmp_path),
        env={"TRAINLAB_DATA": str(mnist_root)},
    )
    assert proc.returncode == 0
    both = proc.stdout + proc.stderr
    assert "\r" not in both and "\x1b" not in both
    assert "batch 3/" in proc.stderr and proc.stdout.startswith("test accuracy")
    quiet = run_cli(
        "train",
        *QUICK,
        "--epochs",
        "1",
        "--quiet",
        "--runs-dir",
        str(tmp_path),
        env={"TRAINLAB_DATA": str(mnist_root)},
    )
    assert quiet.stderr == "" and quiet.stdout.startswith("test accuracy")


@pytest.mark.slow
def test_terminal_gets_a_progress_bar(tmp_path, mnist_root):
    """On a real pseudo-terminal: a redrawn bar with images/s and an ETA, then the epoch line."""
    import fcntl
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trainlab",
            "train",
            *QUICK,
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--runs-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=follower,
        env={**os.environ, "TRAINLAB_DATA": str(mnist_root), "COLUMNS": "120"},
    )
    os.close(follower)
    text = read_pty(leader)
    proc.wait(timeout=120)
    assert proc.returncode == 0
    assert "\r" in text and "epoch 1/1:" in text and ("batch/s" in text or "s/batch" in text)
    assert "img/s" in text and "epoch 1/1  train loss" in text


@pytest.mark.slow
def test_a_terminal_of_zero_columns_still_gets_progress(tmp_path, mnist_root):
    """Some pseudo-terminals (``script -qc``, some CI runners) report a 0×0 size."""
    import fcntl
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainlab", "train", *QUICK, "--epochs", "1"]
        + ["--batch-size", "16", "--runs-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=follower,
        env={**env, "TRAINLAB_DATA": str(mnist_root)},
    )
    os.close(follower)
    text = read_pty(leader)
    proc.wait(timeout=120)
    assert proc.returncode == 0
    assert "epoch 1/1:" in text and "img/s" in text, text[-2000:]
    assert "epoch 1/1  train loss" in text


def test_live_plot_in_a_terminal(tmp_path, mnist_small, capsys):
    import torch

    from trainlab import Trainer, build_model

    torch.manual_seed(0)
    model = build_model("cnn", mnist_small)
    result = Trainer(epochs=2, runs_dir=str(tmp_path), device="cpu").fit(
        model, mnist_small, live_plot=True
    )
    err = capsys.readouterr().err
    assert (result.run_dir / "live.png").read_bytes()[:4] == b"\x89PNG"
    assert err.count("live plot:") == 1 and "epoch 2: train loss" in err


def test_report_renders_in_headless_chromium(runs, tmp_path):
    chromium = ensure_chromium()
    if not chromium:
        pytest.skip(
            "Debian's chromium is not installed and could not be installed here "
            "(needs root and apt-get)"
        )
    from playwright.sync_api import sync_playwright

    root, env = runs
    assert run_here("report", str(root / "a"), env=env).returncode == 0
    errors: list[str] = []
    with sync_playwright() as p:
        browser = launch_chromium(p, chromium)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "request",
            lambda r: (
                errors.append(f"network: {r.url}")
                if not r.url.startswith(("file:", "data:"))
                else None
            ),
        )
        page.goto((root / "a" / "report.html").as_uri())
        images = page.evaluate(
            "Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])"
        )
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    alts = [alt for alt, _, _ in images]
    gallery = alts[3:-2]  # each mistake beside its heat map, then calibration and rejection
    assert alts[:3] == ["loss and accuracy per epoch", "confusion matrix", "top mistakes"]
    assert len(gallery) == 32 and gallery[1] == "heat map of test image 1"
    assert alts[-2:] == [
        "reliability diagram before and after temperature scaling",
        "energy score histogram on the validation split with the threshold",
    ]
    assert all(complete and width > 0 for _, complete, width in images), images
    assert errors == []
    assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 20_000
    if os.environ.get("TRAINLAB_KEEP_SCREENSHOT"):
        shutil.copy(shot, Path(os.environ["TRAINLAB_KEEP_SCREENSHOT"]))
