"""What a default run imports, and the optimizer that keeps ``torch._dynamo`` out of it.

``torch.optim.Optimizer``'s methods import ``torch._dynamo`` on their first call (1.5-2.8 s of a
run that never compiles); trainlab's SGD runs torch's functional ``sgd`` instead. These tests
fail if a change brings the import back, or if the update stops being torch's.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from trainlab.engine.optim import SGD

PROBE = """
import json, sys
from trainlab.cli import main
code = main(sys.argv[1:])
heavy = ["torch._dynamo", "torch._inductor", "sklearn", "matplotlib", "tensorboard", "PIL"]
print(json.dumps({"code": code, "loaded": [m for m in heavy if m in sys.modules]}))
"""


def test_a_default_run_does_not_import_dynamo_or_unused_libraries(tmp_path, mnist_root):
    args = ["train", "--subset", "1000", "--test-subset", "200", "--epochs", "1", "--quiet"]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args, "--runs-dir", str(tmp_path), "--device", "cpu"],
        capture_output=True,
        text=True,
        env={"TRAINLAB_DATA": str(mnist_root), "PATH": "/usr/bin:/bin"},
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "loaded": []}, result


COMPILED = """
import torch
from trainlab.engine.optim import SGD
model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
SGD(model.parameters(), lr=0.1).step()  # trainlab's optimizer first, as a run does
x = torch.randn(5, 4)
compiled = torch.compile(model, backend="eager")
print(torch.allclose(compiled(x), model(x)), compiled(x).shape == (5, 2))
"""


@pytest.mark.slow
def test_compile_is_still_there_when_asked_for():
    """The guard is about the default path only: a model still compiles (and gives the same
    outputs) in a process that uses trainlab's optimizer."""
    proc = subprocess.run(
        [sys.executable, "-c", COMPILED], capture_output=True, text=True, check=False, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True"]


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))


@pytest.mark.parametrize(
    "settings",
    [
        {"momentum": 0.9, "nesterov": True, "weight_decay": 5e-4},
        {"momentum": 0.9, "nesterov": False, "weight_decay": 0.0},
        {"momentum": 0.0, "nesterov": False, "weight_decay": 1e-3},
    ],
)
def test_sgd_takes_torch_sgd_steps_bit_for_bit_and_shares_its_state_dict(settings):
    ours_model, torch_model = _model(), _model()
    ours = SGD(ours_model.parameters(), lr=0.1, **settings)
    theirs = torch.optim.SGD(torch_model.parameters(), lr=0.1, **settings)
    g = torch.Generator().manual_seed(1)
    for step in range(5):
        x, y = torch.randn(8, 6, generator=g), torch.randint(0, 3, (8,), generator=g)
        for model, opt in ((ours_model, ours), (torch_model, theirs)):
            for group in opt.param_groups:
                group["lr"] = 0.1 / (step + 1)
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    for a, b in zip(ours_model.parameters(), torch_model.parameters(), strict=True):
        assert torch.equal(a, b)
    # the state dicts are interchangeable: a checkpoint from either resumes in the other
    mine, torchs = ours.state_dict(), theirs.state_dict()
    assert mine["state"].keys() == torchs["state"].keys()
    for i, values in torchs["state"].items():
        for key, value in values.items():
            assert torch.equal(mine["state"][i][key], value)
    assert {k: v for k, v in mine["param_groups"][0].items()} == {
        k: v for k, v in torchs["param_groups"][0].items() if k in mine["param_groups"][0]
    }
    restored = SGD(_model().parameters(), lr=1.0)
    restored.load_state_dict(torchs)
    assert restored.param_groups[0]["lr"] == theirs.param_groups[0]["lr"]
    back = torch.optim.SGD(_model().parameters(), lr=1.0)
    back.load_state_dict(mine)


def test_sgd_refuses_a_state_dict_for_other_parameters():
    opt = SGD(_model().parameters(), lr=0.1)
    other = SGD(nn.Linear(2, 2).parameters(), lr=0.1).state_dict()
    from trainlab.errors import CheckpointError

    with pytest.raises(CheckpointError, match="parameter groups of other sizes"):
        opt.load_state_dict(other)
