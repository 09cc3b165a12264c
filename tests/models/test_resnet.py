"""resnet-small: a residual network for small images that learns, at any size from 8 px."""

import torch

from trainlab import Trainer, build_model
from trainlab.resolve import resolve_config


def _params(net):
    return sum(p.numel() for p in net.parameters())


def test_blocks_and_widths_shape_the_network_and_any_size_from_8_px_fits():
    one = build_model("resnet-small", input_shape=(1, 28, 28), outputs=10)
    two = build_model("resnet-small", input_shape=(1, 28, 28), outputs=10, blocks=2)
    narrow = build_model("resnet-small", input_shape=(1, 28, 28), outputs=10, widths=[8, 16])
    assert _params(narrow) < _params(one) < _params(two)
    for size in (8, 33, 64):
        net = build_model("resnet-small", input_shape=(3, size, size), outputs=5).eval()
        assert net(torch.rand(2, 3, size, size)).shape == (2, 5)


def test_it_learns_mnist(tmp_path, mnist_small):
    cfg = resolve_config(
        dict(model="resnet-small", widths=[16, 32, 64], epochs=4, runs_dir=str(tmp_path))
    ).config
    torch.manual_seed(0)
    result = Trainer(cfg).fit(
        build_model("resnet-small", mnist_small, widths=[16, 32, 64]), mnist_small
    )
    assert result.final["test_acc"] >= 0.93, result.final
