"""The benchmarks and scripts import what exists, and the throughput step runs (it once imported
a module that had moved, so `make bench` failed at that step)."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize(
    "path", sorted([*ROOT.glob("benchmarks/*.py"), *ROOT.glob("scripts/*.py")]), ids=str
)
def test_every_trainlab_import_resolves(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("trainlab"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name) or importlib.util.find_spec(
                    f"{node.module}.{alias.name}"
                ), f"{path.name}: from {node.module} import {alias.name}"


def test_the_throughput_step_runs(mnist_root):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import measures
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    result = measures.throughput(str(mnist_root), "mlp", images=1024)
    assert result["train_images_per_s"] > 0 and result["eval_images_per_s"] > 0


def test_a_new_session_keeps_the_measures_of_the_latest_dated_file(tmp_path):
    """The results table once lost every earlier measure: the file it merged was the
    alphabetically last one (transfer-<date>.json, a benchmark of its own), not the latest
    <date>-<host>.json."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    for name in (
        "2026-11-22-vm.json",
        "2026-11-23-vm.json",
        "2026-11-30-other.json",
        "d2l-book-2026-11-23.json",
        "transfer-2026-12-01.json",
    ):
        (tmp_path / name).write_text("{}")
    assert bench.latest_results(tmp_path, "vm") == tmp_path / "2026-11-23-vm.json"
    assert bench.latest_results(tmp_path, "other") == tmp_path / "2026-11-30-other.json"
    assert bench.latest_results(tmp_path, "nobody") is None
