"""The d2l book's chapter programs (tests/d2l_book/), run as its readers run them.

Each file is the book's PyTorch code for one section with only the import line changed, run
in a subprocess on the real Fashion-MNIST (Debian's dataset-fashion-mnist, copied into a fresh
data root). `make test` runs the chapters without images and the softmax and MLP chapters with
their epochs cut (10 -> 2, 100 -> 10) on a subset (TRAINLAB_D2L_SUBSET); `make test-all` adds
the others, the modern CNNs on 256 images at their own resolutions (224 and 96), and LeNet and
batch norm at the book's epochs against its recorded figures (tests/d2l_book/book_figures.json).
`make d2l-book` measures the figures.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BOOK = Path(__file__).parent / "d2l_book"
DEBIAN = Path("/usr/share/datasets/fashion-mnist")
# In `make test`: the linear-network and MLP chapters; the rest in `make test-all` (slow).
QUICK = ["ch3_7_softmax_regression_concise", "ch4_2_mlp_scratch"]
FASHION = [
    "ch3_6_softmax_regression_scratch",
    "ch4_3_mlp_concise",
    "ch4_6_dropout",
    "ch6_6_lenet",
    "ch7_5_batch_norm",
]
NO_DATA = [
    "ch3_2_linear_regression_scratch",
    "ch3_3_linear_regression_concise",
    "ch4_1_activations",
    pytest.param("ch4_5_weight_decay", marks=pytest.mark.slow),
]
MODERN = ["ch7_1_alexnet", "ch7_2_vgg", "ch7_3_nin", "ch7_4_googlenet", "ch7_6_resnet"]
MODERN += ["ch7_7_densenet"]
# the book's recorded figures (loss, train acc, test acc) for each train_ch6 call of a chapter
BOOK_FIGURES = {
    k: v for k, v in json.loads((BOOK / "book_figures.json").read_text()).items() if k[0] != "_"
}

needs_fashion = pytest.mark.skipif(
    not DEBIAN.is_dir(), reason="apt-get install dataset-fashion-mnist (.ci/run does)"
)


def fewer_epochs(source: str, ten: int = 2, hundred: int = 10) -> str:
    """The program with its epoch counts cut: only lines that assign num_epochs change."""

    def cut(line: str) -> str:
        if "num_epochs" not in line.split("=")[0] or "=" not in line:
            return line
        line = re.sub(r"\b100\b", str(hundred), line)
        return re.sub(r"\b10\b", str(ten), line)

    return "\n".join(cut(line) for line in source.splitlines())


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("book-data")


def run_chapter(
    name: str, cwd: Path, data_root: Path, *, subset: str | None = None, cut: bool = True
):
    source = (BOOK / f"{name}.py").read_text()
    assert "from trainlab import d2l" in source and "from d2l" not in source
    program = cwd / f"{name}.py"
    program.write_text(fewer_epochs(source) if cut else source)
    env = {**os.environ, "TRAINLAB_DATA": str(data_root), "MPLBACKEND": "Agg"}
    env.pop("TRAINLAB_D2L_SUBSET", None)
    if subset:
        env["TRAINLAB_D2L_SUBSET"] = subset
    return subprocess.run(
        [sys.executable, str(program)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=1800,
        check=False,
    )


def all_figures(stdout: str) -> list[tuple[float, float, float]]:
    found = re.findall(r"loss ([\d.]+), train acc ([\d.]+), test acc ([\d.]+)", stdout)
    assert found, stdout[-2000:]
    return [tuple(float(v) for v in f) for f in found]


def figures(stdout: str) -> tuple[float, float, float]:
    return all_figures(stdout)[-1]


@pytest.mark.parametrize("name", NO_DATA)
def test_chapters_without_images_run_unchanged(name, tmp_path, data_root):
    proc = run_chapter(name, tmp_path, data_root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr


@needs_fashion
@pytest.mark.parametrize(
    "name", QUICK + [pytest.param(name, marks=pytest.mark.slow) for name in FASHION]
)
def test_fashion_mnist_chapters_run_unchanged(name, tmp_path, data_root):
    # 3.6's own train_ch3 asserts the book's 10-epoch figures (loss < 0.5): it runs as written
    whole = name == "ch3_6_softmax_regression_scratch"
    proc = run_chapter(
        name, tmp_path, data_root, subset=None if whole else "20000,5000", cut=not whole
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    if name in QUICK:  # two epochs of a linear model or an MLP already learn (chance: 0.1)
        loss, train_acc, test_acc = figures(proc.stdout)
        assert loss < 1.5 and train_acc > 0.5 and test_acc > 0.5, proc.stdout[-500:]
    elif name != "ch3_6_softmax_regression_scratch":  # its own train_ch3 prints nothing
        figures(proc.stdout)  # trained, evaluated and reported (sigmoid LeNets need epochs)


@pytest.mark.slow
@needs_fashion
@pytest.mark.parametrize("name", MODERN)
def test_modern_cnn_chapters_run_on_a_subset(name, tmp_path, data_root):
    proc = run_chapter(name, tmp_path, data_root, subset="256,128")
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures(proc.stdout)  # trained, evaluated and reported


@pytest.mark.slow
@needs_fashion
@pytest.mark.parametrize("name", sorted(BOOK_FIGURES))
def test_chapters_at_the_books_epochs_match_its_figures(name, tmp_path, data_root):
    """LeNet and batch norm (both its trainings) at 10 epochs: loss and train acc within 0.02."""
    proc = run_chapter(name, tmp_path, data_root, cut=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ours = all_figures(proc.stdout)
    book = BOOK_FIGURES[name]
    assert len(ours) == len(book), (ours, book)
    for mine, theirs in zip(ours, book, strict=True):
        assert abs(mine[0] - theirs[0]) <= 0.02 and abs(mine[1] - theirs[1]) <= 0.02, (ours, book)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "1", "ch4_5_weight_decay"], "has no `num_epochs = 10` line"),
        (["ch9_nope"], "no chapter ch9_nope"),
    ],
)
def test_make_d2l_book_refuses_what_it_cannot_run_as_asked(args, message):
    """`make d2l-book` stops before running anything, saying why (and records nothing)."""
    bench = Path(__file__).parents[1] / "benchmarks" / "d2l_book.py"
    proc = subprocess.run(
        [sys.executable, str(bench), *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
