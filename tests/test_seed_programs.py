"""The seeds' programs (tests/seeds/) run against trainlab with only their import lines changed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SEEDS = Path(__file__).parent / "seeds"


def run_program(code: str, cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    script = cwd / "program.py"
    script.write_text(code, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def seed(name: str) -> str:
    return (SEEDS / name).read_text(encoding="utf-8")


@pytest.fixture
def env(mnist_root, tmp_path):
    return {"TRAINLAB_DATA": str(mnist_root), "XDG_CACHE_HOME": str(tmp_path / "cache")}


def test_seed001_linear_regression(tmp_path, env):
    out = run_program(
        seed("seed001_linreg.py") + "\nprint('w', net[0].weight.data.tolist(), "
        "'b', net[0].bias.item())\n",
        tmp_path,
        env,
    )
    losses = [float(v) for v in re.findall(r"epoch \d, loss ([\d.]+)", out)]
    assert len(losses) == 3 and losses[-1] < 1e-3
    w = [float(v) for v in re.search(r"w \[\[([-\d.e]+), ([-\d.e]+)\]\]", out).groups()]
    assert w == pytest.approx([2.0, -3.4], abs=0.01)


CH3_DRIVER = """
from torch import nn
net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
net.apply(lambda m: nn.init.normal_(m.weight, std=0.01) if type(m) == nn.Linear else None)
loss = nn.CrossEntropyLoss(reduction='none')
trainer = torch.optim.SGD(net.parameters(), lr=0.1)
train_iter, test_iter = d2l.load_data_mnist(256)
train_ch3(net, train_iter, test_iter, loss, 3, trainer)
print('seed', evaluate_accuracy(net, test_iter))
print('ours', d2l.evaluate_accuracy(net, test_iter))
"""


@pytest.mark.slow
def test_seed001_train_ch3_with_its_own_animator(tmp_path, env):
    out = run_program(seed("seed001_ch3.py") + CH3_DRIVER, tmp_path, env)
    seed_acc = float(re.search(r"seed ([\d.]+)", out).group(1))
    ours = float(re.search(r"ours ([\d.]+)", out).group(1))
    assert seed_acc == pytest.approx(ours) and seed_acc > 0.85  # its asserts passed too
    assert (tmp_path / "animator.png").stat().st_size > 1000


CH6_DRIVER = """
from trainlab.data import load_dataset
mnist = load_dataset("mnist").subset(2048, 512)
X, Xt = mnist.train_x.float() / 255, mnist.test_x.float() / 255
train_iter = d2l.load_array((X, mnist.train_y), 256)
test_iter = d2l.load_array((Xt, mnist.test_y), 256, is_train=False)
def lenet():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, 10))
train_ch6(lenet(), train_iter, test_iter, 2, 0.9, try_gpu())
print("=== trainlab.d2l.train_ch6")
d2l.train_ch6(lenet(), train_iter, test_iter, 2, 0.9, d2l.try_gpu())
"""


@pytest.mark.slow
def test_seed001_train_ch6_and_ours_without_the_hot_loop_print(tmp_path, env):
    out = run_program(seed("seed001_ch6.py") + CH6_DRIVER, tmp_path, env)
    seed_part, ours = out.split("=== trainlab.d2l.train_ch6")
    assert seed_part.count("tensor(") == 16  # the seed prints y_hat for each of 2 × 8 batches
    assert "tensor(" not in ours
    for part in (seed_part, ours):
        assert "training on cpu" in part and "examples/sec on cpu" in part
        assert re.search(r"loss [\d.]+, train acc [\d.]+, test acc [\d.]+", part)


def test_seed002_basics_runs_as_written(tmp_path, env):
    out = run_program(seed("seed002_basics.py"), tmp_path, env)
    assert out.count("Epoch [") == 5
    assert 0.0 <= float(re.search(r"Test Accuracy: ([\d.]+)", out).group(1)) <= 1.0


@pytest.mark.slow  # 75 s: five epochs through the seed's own per-sample DataLoader
def test_seed002_mnist_mlp_offline(tmp_path, env):
    """The seed's own program (torchvision DataLoader, 5 epochs), data through trainlab.compat."""
    out = run_program(seed("seed002_mnist.py"), tmp_path, env)
    assert out.count("Epoch [") == 5
    assert float(re.search(r"Test Accuracy: ([\d.]+)", out).group(1)) > 0.85
    assert (
        sorted(p.name for p in (tmp_path / "data" / "MNIST" / "raw").iterdir())[0]
        == "t10k-images-idx3-ubyte"
    )


ALEXNET_DRIVER = """
from torch.utils.data import Subset
cached = torch.load(CACHED, weights_only=True)
assert torch.equal(alexnet.net.features[0].weight, cached["features.0.weight"])
assert alexnet.net.classifier[-1].out_features == 10
small_train = DataLoader(Subset(train_set, range(128)), batch_size=64, shuffle=True)
small_test = DataLoader(Subset(test_set, range(128)), batch_size=64)
print("train", train_model(small_train, alexnet, optimizer, criterion, torch.device("cpu"), 1, 1))
print("test", test_model(small_test, alexnet, criterion, torch.device("cpu")))
torch.save(alexnet.state_dict(), "alexnet_weight.pth")
"""


@pytest.mark.slow
def test_seed000_alexnet_with_cached_weights(tmp_path, env):
    """The seed's definitions as written (pretrained=True through torchvision's cache), then its own
    train_model/test_model on 128 images: the full run is 5 epochs of 60,000 images at 96×96."""
    from torchvision.models import alexnet

    torch_home = tmp_path / "torch"
    cached = torch_home / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    cached.parent.mkdir(parents=True)
    torch.manual_seed(1)
    torch.save(alexnet(weights=None).state_dict(), cached)
    definitions = seed("seed000_alexnet.py").split("# 训练5轮")[0]
    code = definitions + f"CACHED = {str(cached)!r}\n" + ALEXNET_DRIVER
    out = run_program(code, tmp_path, {**env, "TORCH_HOME": str(torch_home)})
    assert "Epoch:001  Batch num:[001/002]" in out and "test (" in out
    assert (tmp_path / "alexnet_weight.pth").exists()
