"""The shape of the code, held by tests: short functions, a small Trainer, and inference that
stands without the trainer."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import trainlab
from test_layering import _imports

SRC = Path(trainlab.__file__).parent


def test_no_function_is_over_80_lines():
    long = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > 80:
                    long.append(f"{path.relative_to(SRC)}:{node.name} ({lines} lines)")
    assert long == []


def test_the_trainer_class_is_small():
    tree = ast.parse((SRC / "trainer.py").read_text())
    trainer = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Trainer")
    assert trainer.end_lineno - trainer.lineno + 1 < 380


def test_inference_and_serve_never_import_the_trainer():
    graph = _imports()
    seen: set[str] = set()
    todo = [m for m in graph if m.startswith(("trainlab.inference", "trainlab.serve"))]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += graph.get(module, ())
    assert not seen & {"trainlab.trainer", "trainlab.workflow", "trainlab.resolve"}


def test_predicting_loads_no_training_code(default_run):
    code = (
        "import sys, trainlab.inference as i; i.Predictor(sys.argv[1], device='cpu');"
        "print(sorted(m for m in sys.modules if m in "
        "('trainlab.trainer', 'trainlab.workflow', 'trainlab.engine.optim')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(default_run)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert out.strip() == "[]"


def test_errors_of_the_engine_and_data_are_config_errors(capsys):
    import pytest
    import torch

    from trainlab.cli import main
    from trainlab.data.batches import Batches
    from trainlab.engine.loop import loss_function
    from trainlab.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown loss 'hinge'"):
        loss_function("hinge")
    with pytest.raises(ConfigError, match="shard"):
        Batches(torch.zeros(4, 2), torch.zeros(4), 2, shard=(2, 2))
    assert main(["data", "fetch", "mnist", "--source", "nowhere"]) == 2
    assert "error: --source: unknown source(s) nowhere" in capsys.readouterr().err


def test_dead_code_stays_gone():
    from trainlab.engine import distributed, optim
    from trainlab.models import zoo
    from trainlab.trainer import Trainer

    assert not hasattr(optim, "set_lr") and not hasattr(distributed, "note")
    assert not hasattr(zoo, "LogSoftmaxHead") and not hasattr(Trainer, "device")
    package = ast.parse((SRC / "engine" / "__init__.py").read_text())  # no re-exports
    assert not [n for n in package.body if isinstance(n, ast.Import | ast.ImportFrom)]
    # gone in the restructuring of the pipeline ("one house")
    from trainlab import resolve
    from trainlab.engine import setup
    from trainlab.tune import commands

    assert not hasattr(resolve.Plan, "resume_dir") and not hasattr(resolve, "Resolved")
    assert not hasattr(setup, "model_record") and not hasattr(commands, "raise_config")
