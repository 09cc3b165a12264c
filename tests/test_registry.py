"""One registry for models, datasets and kinds of data: a name registered twice is refused with
both sources named, and a plugin that fails to import is reported the same way by each."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainlab.errors import ConfigError
from trainlab.registry import Registry


class Shape:
    def __init__(self, name: str):
        self.name = name


def test_a_name_twice_is_refused_naming_both_sources():
    shapes: Registry[Shape] = Registry("shape", Shape)
    shapes.add("square", Shape("square"))
    plugin = {"kind": "plugin", "entry_point": "square = geo:Square", "package": "geo"}
    with pytest.raises(ConfigError, match="registered twice: by trainlab itself and by the "
                       "plugin 'square = geo:Square' of package geo"):  # fmt: skip
        shapes.add("square", Shape("square"), plugin)
    with pytest.raises(ConfigError, match="unknown shape 'sqare'.*Did you mean 'square'"):
        shapes.get("sqare")


def _installed_plugin(root: Path, group: str, entry: str, module: str, code: str) -> dict:
    """A package installed as pip installs one (its code and a dist-info with entry points)."""
    (root / f"{module}.py").write_text(code)
    info = root / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{entry}\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ["PYTHONPATH"]])}


def _ask(env: dict, code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(autouse=True)
def _pythonpath(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))


def test_a_plugin_model_reusing_a_builtin_name_is_refused_not_swapped_in(tmp_path):
    env = _installed_plugin(
        tmp_path,
        "trainlab.models",
        "mlp = evilnet:build",
        "evilnet",
        "def build(num_classes):\n    raise AssertionError('never built')\n",
    )
    proc = _ask(env, "from trainlab.models import get_spec; get_spec('no-such-model')")
    assert proc.returncode != 0
    assert "model 'mlp' is registered twice: by trainlab itself and by the plugin " in proc.stderr
    assert "'mlp = evilnet:build' of package evilnet 0.1" in proc.stderr


def test_a_plugin_dataset_reusing_a_builtin_name_is_refused_not_skipped(tmp_path):
    env = _installed_plugin(
        tmp_path,
        "trainlab.datasets",
        "mnist = mydata:load",
        "mydata",
        "def load(ctx):\n    raise AssertionError('never loaded')\n",
    )
    proc = _ask(env, "from trainlab.data import dataset_names; dataset_names()")
    assert "dataset 'mnist' is registered twice: by trainlab itself and by the plugin" in (
        proc.stderr
    )


@pytest.mark.parametrize(
    ("group", "what", "ask"),
    [
        ("trainlab.models", "model", "from trainlab.models import registered; registered()"),
        ("trainlab.datasets", "dataset", "from trainlab.data import dataset_names as d; d()"),
        ("trainlab.kinds", "kind of data", "from trainlab.data.kinds import KINDS; KINDS.all()"),
    ],
)
def test_a_broken_plugin_is_reported_the_same_way_by_every_registry(tmp_path, group, what, ask):
    env = _installed_plugin(
        tmp_path, group, "broken = brokenplug:thing", "brokenplug", "import no_such_module\n"
    )
    proc = _ask(env, ask)
    assert proc.returncode != 0
    assert (
        f"the {what} plugin 'broken' (brokenplug:thing) failed to load: ModuleNotFoundError"
        in proc.stderr
    )
    assert "Fix or uninstall that package." in proc.stderr
