"""A report of a real run, made once: the v1 CNN fixture (MNIST, 200 test images, 46 mistakes)
with the figures its own `trainlab eval` recorded in eval.json."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

V1_CNN = Path(__file__).resolve().parents[1] / "fixtures" / "v1" / "cnn-mnist"


@pytest.fixture(scope="session")
def v1_report(tmp_path_factory):
    """(run directory, the paths make_report wrote) for an unchanged copy of the run."""
    from trainlab.report import make_report

    run_dir = tmp_path_factory.mktemp("report") / "cnn-mnist"
    shutil.copytree(V1_CNN, run_dir)
    return run_dir, make_report(run_dir)
