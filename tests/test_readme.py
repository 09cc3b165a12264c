"""The documentation's Python runs as written: each ```python block of README.md and the docs'
tutorials and how-to guides that needs more than small data (a trained run, an export, the d2l
book's epochs) is executed here in a fresh folder, its placeholders (``runs/<id>``,
``seen/my_digit.png``) made real first. A renamed function or argument fails here; the other
blocks are compiled, and the runnable ones run, in test_docs.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*/*.md"))]
BLOCKS = [
    block
    for page in PAGES
    for block in re.findall(r"```python\n(.*?)```", page.read_text("utf-8"), flags=re.S)
]


def _block(needle: str) -> str:
    found = [b for b in BLOCKS if needle in b]
    assert len(found) == 1, f"docs: one python block with {needle!r}, found {len(found)}"
    return found[0]


def _run(code: str, cwd: Path, mnist_root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRAINLAB_DATA": str(mnist_root), "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=1800, check=False,
    )  # fmt: skip


def test_every_python_block_that_needs_a_setup_is_checked_here():
    checked = ("Trainer(epochs=5).fit", "onnxruntime.InferenceSession", "d2l.train_ch6",
               "@register_model")  # fmt: skip
    assert all(_block(needle) for needle in checked)


@pytest.mark.slow
def test_the_python_tour_runs_as_written(tmp_path, mnist_root):
    proc = _run(_block("Trainer(epochs=5).fit"), tmp_path, mnist_root)
    assert proc.returncode == 0, proc.stderr
    accuracy, run_dir, best = proc.stdout.split()[:3]
    assert float(accuracy) > 0.9 and (tmp_path / best).is_file() and (tmp_path / run_dir).is_dir()
    assert "epoch 5/5" in proc.stderr  # the resume ran the 2 more epochs


def test_adding_a_model_as_shown_registers_it(tmp_path, mnist_root):
    code = _block("@register_model") + (
        "\nfrom trainlab import build_model, load_dataset"
        "\nmodel = build_model('wide-mlp', load_dataset('mnist'), width=32)"
        "\nprint(sum(p.numel() for p in model.parameters()))"
    )
    proc = _run(code, tmp_path, mnist_root)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) == 784 * 32 + 32 + 32 * 10 + 10


@pytest.mark.slow
def test_the_onnx_snippet_runs_on_an_exported_run(tmp_path, mnist_root):
    from tests.helpers import run_cli

    common = ("--data-dir", str(mnist_root))
    train = run_cli("train", "--model", "mlp", "--subset", "2000", "--test-subset", "200",
                    "--runs-dir", str(tmp_path / "runs"), "--run-name", "r", *common)  # fmt: skip
    assert train.returncode == 0, train.stderr
    assert run_cli("export", str(tmp_path / "runs" / "r")).returncode == 0
    from PIL import Image

    from trainlab.data import load_dataset

    data = load_dataset("mnist", str(mnist_root))
    (tmp_path / "seen").mkdir()
    Image.fromarray(data.test_x[0, 0].numpy()).save(tmp_path / "seen" / "my_digit.png")
    code = _block("onnxruntime.InferenceSession").replace("runs/<id>", "runs/r")
    proc = _run(code, tmp_path, mnist_root)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"[{int(data.test_y[0])}]"


@pytest.mark.slow
def test_the_d2l_snippet_runs_as_written(tmp_path, mnist_root):
    proc = _run(_block("d2l.train_ch6"), tmp_path, mnist_root)
    assert proc.returncode == 0, proc.stderr
