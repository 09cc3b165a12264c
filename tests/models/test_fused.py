"""The default cnn's fused [max-pool, batch norm, ReLU] kernel: it runs where it should, gives
what PyTorch's modules give, keeps a run repeatable, and steps aside where it cannot."""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch
from torch import nn

from helpers import run_cli
from trainlab.models import build_model, fused

pytestmark = pytest.mark.skipif(
    isinstance(fused.library(), str), reason=f"no fused kernel here: {fused.library()}"
)


def _stages(width: int = 16) -> list[nn.Module]:
    return [
        nn.Conv2d(3, width, 5, padding=2, bias=False),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        nn.Conv2d(width, 24, 5, padding=2, bias=False),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(24),
        nn.ReLU(inplace=True),
    ]


def _step(model: nn.Module, x: torch.Tensor, bf16: bool):
    """One forward and backward; what the layers gave and what they learned."""
    x = x.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        y = model(x)
    (y.float() * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    buffers = [b.clone() for b in model.buffers()]
    return y.float(), x.grad, grads, buffers


def _graph_names(y: torch.Tensor) -> set[str]:
    names, todo = set(), [y.grad_fn]
    while todo:
        fn = todo.pop()
        if fn is not None and type(fn).__name__ not in names:
            names.add(type(fn).__name__)
            todo += [f for f, _ in fn.next_functions]
    return names


@pytest.mark.parametrize("bf16", [False, True], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("size", [(32, 32), (28, 28), (15, 17)], ids=["32", "28", "odd"])
def test_the_fused_stage_gives_what_pytorchs_modules_give(bf16, size):
    torch.manual_seed(0)
    plain = nn.Sequential(*_stages()).to(memory_format=torch.channels_last)
    fast = fused.FusedStages(*copy.deepcopy(list(plain)))
    x = torch.randn(64, 3, *size).contiguous(memory_format=torch.channels_last)
    if bf16:
        x = x.round()  # many ties inside the pooling windows
    y0, gx0, grads0, buffers0 = _step(plain, x, bf16)
    y1, gx1, grads1, buffers1 = _step(fast, x, bf16)

    assert "_StageBackward" in _graph_names(copy.deepcopy(fast)(x.requires_grad_(True)))
    tol = 3e-2 if bf16 else 1e-4  # bfloat16 keeps 8 bits: one rounding step of the largest
    assert (y0 - y1).abs().max() <= tol * y0.abs().max()
    assert (gx0 - gx1).abs().max() <= tol * gx0.abs().max()
    for g0, g1 in zip(grads0, grads1, strict=True):
        assert (g0 - g1).abs().max() <= tol * g0.abs().max()
    for b0, b1 in zip(buffers0, buffers1, strict=True):  # running mean, var, batches tracked
        torch.testing.assert_close(b0, b1, rtol=1e-5, atol=1e-6)
    assert int(fast[2].num_batches_tracked) == 1


def test_the_pool_gives_each_window_s_gradient_to_its_first_maximum_as_pytorch_does():
    torch.manual_seed(0)
    plain = nn.Sequential(*_stages()[1:4])
    fast = fused.FusedStages(*copy.deepcopy(list(plain)))
    x = torch.randint(0, 2, (8, 16, 8, 8)).float().contiguous(memory_format=torch.channels_last)
    x[0, 0, 0, 0] = float("nan")  # a NaN takes its window (and spoils its channel's statistics)
    _, gx0, _, _ = _step(plain, x, False)
    _, gx1, _, _ = _step(fast, x, False)
    assert torch.equal(gx0 != 0, gx1 != 0)
    assert torch.equal(gx0.isnan(), gx1.isnan())


def test_the_kernel_steps_aside_where_it_would_not_give_the_same():
    torch.manual_seed(0)
    model = build_model("cnn", input_shape=(3, 32, 32), outputs=10)
    x = torch.randn(4, 3, 32, 32, requires_grad=True)
    assert "_StageBackward" not in _graph_names(model(x))  # NCHW: PyTorch's kernels
    last = x.contiguous(memory_format=torch.channels_last)
    model = model.to(memory_format=torch.channels_last)
    assert "_StageBackward" in _graph_names(model(last))
    model.eval()  # running statistics: PyTorch's kernels
    assert "_StageBackward" not in _graph_names(model(last))
    model.train()
    seen = []
    handle = model[2].register_forward_hook(lambda _m, _i, o: seen.append(o.shape))
    names = _graph_names(model(last))  # a hook must see its module run: that stage is PyTorch's
    handle.remove()
    assert "MaxPool2DWithIndicesBackward0" in names and "_StageBackward" in names
    assert seen == [torch.Size([4, 16, 16, 16])]
    handle = model[5].register_full_backward_hook(lambda _m, _gi, go: seen.append(go[0].shape))
    model(last).sum().backward()  # a backward hook too: stage 2 is PyTorch's
    handle.remove()
    assert seen[1:] == [torch.Size([4, 24, 8, 8])]
    odd = build_model("cnn", input_shape=(3, 32, 32), outputs=10, widths=[12, 24])
    odd = odd.to(memory_format=torch.channels_last)
    names = _graph_names(odd(last))  # 12 channels are not a multiple of 8; 24 are
    assert "MaxPool2DWithIndicesBackward0" in names and "_StageBackward" in names
    assert isinstance(model[:-1], fused.FusedStages)  # slicing keeps the class


def _train(seed: int) -> list[torch.Tensor]:
    torch.manual_seed(seed)
    model = build_model("cnn", input_shape=(3, 32, 32), outputs=10)
    model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(5):
        x = torch.randn(32, 3, 32, 32).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (32,))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return [t.detach().clone() for t in model.state_dict().values()]


def test_a_seed_gives_the_same_weights_twice():
    for a, b in zip(_train(3), _train(3), strict=True):
        assert torch.equal(a, b)


def test_the_kernel_shares_pytorchs_openmp_runtime():
    """A second OpenMP runtime would bring a second team of threads to the same cores."""
    code = (
        "import json, torch; from pathlib import Path; from trainlab.models import fused;"
        "assert not isinstance(fused.library(), str);"
        "maps = Path('/proc/self/maps').read_text().splitlines();"
        "print(json.dumps(sorted({m.split()[-1] for m in maps if 'gomp' in m})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True
    )
    gomp = json.loads(out.stdout)
    assert len(gomp) == 1 and Path(gomp[0]).parent == Path(torch.__file__).parent / "lib", gomp


def test_the_kernel_is_built_once_into_the_cache_whole(tmp_path):
    code = (
        "from trainlab.models import fused; lib = fused.library();"
        "print(lib if isinstance(lib, str) else lib.path)"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}

    def build() -> Path:
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
        )
        assert out.returncode == 0, out.stderr
        return Path(out.stdout.strip())

    first = build()
    assert first.parent == tmp_path / "trainlab" / "kernels" and first.is_file()
    stamp = first.stat().st_mtime_ns
    assert build() == first and first.stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no temp file left


def test_runs_record_the_kernel_and_train_alike_without_it(tmp_path, mnist_root):
    """The same run with the kernel, with TRAINLAB_FUSED=0, and with no C compiler: each
    records what it ran, and they learn alike.

    The two kernels round differently, so after a few steps the runs are two different runs
    of one recipe, not one run twice; their test accuracies differ as two runs' do. The bound
    is a statement about that: each accuracy is a mean over n = 500 test images with standard
    error sqrt(p(1 - p) / n), and the difference of two, sqrt(2 p(1 - p) / n) at most (the
    shared test images only make it smaller). Runs that learn alike differ by more than 3 of
    those about 3 times in 1000; a kernel that computes the wrong thing loses far more. One
    epoch of batches of 16 (125 steps) over the 2,000 images converges to about 96%, where
    the bound is about 0.037 (at 87%, one epoch of batches of 64, it was 0.064).
    """
    n_test = 500
    results = {}
    for label, env in (
        ("fused", {}),
        ("off", {"TRAINLAB_FUSED": "0"}),
        ("no compiler", {"CC": "no-such-cc", "XDG_CACHE_HOME": str(tmp_path / "cache")}),
    ):
        proc = run_cli(
            "train", "--subset", "2000", "--batch-size", "16", "--test-subset", str(n_test),
            "--epochs", "1",
            "--data-dir", str(mnist_root), "--runs-dir", str(tmp_path / label), "--json",
            "--device", "cpu", "--seed", "1", env=env, timeout=1800,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        run = Path(json.loads(proc.stdout)["run_dir"])
        config = tomllib.loads((run / "config.toml").read_text())
        results[label] = (config["environment"]["stage_kernel"], json.loads(proc.stdout))
    assert results["fused"][0].startswith("fused pool+BN+ReLU")
    assert results["off"][0] == "off (TRAINLAB_FUSED=0)"
    assert results["no compiler"][0].startswith("off: no C compiler")
    accuracy = {k: v[1]["final"]["test_acc"] for k, v in results.items()}
    assert accuracy["off"] == accuracy["no compiler"]  # both PyTorch's kernels
    assert accuracy["off"] >= 0.9, accuracy  # it learnt: the bound below is a tight one
    p = (accuracy["fused"] + accuracy["off"]) / 2
    bound = 3 * math.sqrt(2 * p * (1 - p) / n_test)
    assert abs(accuracy["fused"] - accuracy["off"]) <= bound, (accuracy, bound)


def test_other_cpus_are_left_to_pytorchs_kernels(monkeypatch):
    monkeypatch.setattr(fused.platform, "machine", lambda: "aarch64")
    assert fused._cpu_problem() == "off: the kernel is built for x86-64 CPUs, this is aarch64"
