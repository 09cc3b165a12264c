"""trainlab's lines go through stdlib logging: the CLI and Trainer show them on stderr,
--quiet keeps warnings only, and a program's own logging configuration receives them."""

from __future__ import annotations

import logging

import torch
from tests.helpers import run_cli
from torch import nn

from trainlab import Trainer
from trainlab.data import Dataset
from trainlab.logs import to_stderr


def _table():
    """scikit-learn's iris: 150 flowers, 4 measurements, 3 species."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    x, y = torch.tensor(iris.data, dtype=torch.float32), torch.tensor(iris.target)
    order = torch.randperm(150, generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    return Dataset("iris", x[:120], y[:120], x[120:], y[120:], list(iris.target_names))


def _fit(tmp_path, **kw):
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    return Trainer(epochs=1, runs_dir=str(tmp_path), seed=0, **kw).fit(model, _table())


def test_a_fit_shows_its_lines_and_quiet_keeps_them_back(tmp_path, capsys):
    _fit(tmp_path / "a")
    shown = capsys.readouterr().err
    assert "epoch 1/1" in shown, shown
    _fit(tmp_path / "b", quiet=True)
    assert capsys.readouterr().err == ""


def test_a_programs_own_handler_receives_the_lines(tmp_path, capsys):
    got: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            got.append(record.getMessage())

    handler = Keep()
    logger = logging.getLogger("trainlab")
    logger.addHandler(handler)
    try:
        _fit(tmp_path, quiet=True)  # quiet: not on stderr; a warning or more still arrives
        with to_stderr():
            logging.getLogger("trainlab.build").info("a line")
    finally:
        logger.removeHandler(handler)
    assert "a line" in got
    assert "a line" in capsys.readouterr().err


def test_the_cli_says_what_it_does_and_quiet_keeps_it_back(tmp_path, mnist_root):
    common = ("--subset", "500", "--test-subset", "200", "--runs-dir", str(tmp_path))
    common += ("--data-dir", str(mnist_root))
    loud = run_cli("train", *common)
    quiet = run_cli("train", *common, "--quiet")
    assert loud.returncode == 0 and quiet.returncode == 0, loud.stderr + quiet.stderr
    assert len(quiet.stderr.splitlines()) < len(loud.stderr.splitlines())
    assert quiet.stdout.strip(), "the final summary is printed with --quiet too"
