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


def test_stem_pool_and_pooled_downsampling_keep_the_weights_and_quarter_the_pixels(
    tmp_path, mnist_small
):
    """The budget recipe's variant: a 2×2 max-pool after the stem, and stages that average-pool
    before a stride-1 convolution rather than convolve at stride 2. Pooling has no weights, so
    the weights have the stride variant's shapes; every stage sees a quarter of the pixels; an
    old run's network (neither option) is built as before; and it learns."""
    fast = dict(stem_pool=True, downsample="pool")
    stride = build_model("resnet-small", input_shape=(1, 28, 28), outputs=10)
    pooled = build_model("resnet-small", input_shape=(1, 28, 28), outputs=10, **fast)
    old_keys = [k for k in stride.state_dict() if "pool" in k]
    assert old_keys == []  # an old checkpoint's names, unchanged
    assert [p.shape for p in stride.parameters()] == [p.shape for p in pooled.parameters()]

    def block_sizes(net, size):
        sizes = []
        hooks = [
            m.register_forward_hook(lambda _m, _i, out: sizes.append(tuple(out.shape[-2:])))
            for m in net
            if type(m).__name__ == "BasicBlock"
        ]
        net.eval()(torch.rand(1, 1, size, size))
        for h in hooks:
            h.remove()
        return sizes

    assert block_sizes(stride, 28) == [(28, 28), (14, 14), (7, 7)]
    assert block_sizes(pooled, 28) == [(14, 14), (7, 7), (4, 4)]
    for size in (8, 33):  # odd sizes round up, as a stride-2 convolution's do
        net = build_model("resnet-small", input_shape=(3, size, size), outputs=5, **fast)
        assert net.eval()(torch.rand(2, 3, size, size)).shape == (2, 5)

    cfg = resolve_config(
        dict(model="resnet-small", widths=[16, 32, 64], epochs=4, runs_dir=str(tmp_path))
    ).config
    torch.manual_seed(0)
    net = build_model("resnet-small", mnist_small, widths=[16, 32, 64], **fast)
    result = Trainer(cfg).fit(net, mnist_small)
    assert result.final["test_acc"] >= 0.93, result.final


def test_a_run_from_before_the_stem_options_resumes(tmp_path, mnist_small):
    """A resnet-small checkpoint written before stem_pool and downsample existed records only
    widths, blocks and dropout: it resumes (its network is what the new options' defaults
    build) rather than being refused as a changed model."""
    from helpers import ctrl_c_after
    from trainlab.engine.checkpoint import save_checkpoint

    cfg = resolve_config(
        dict(model="resnet-small", widths=[8, 16], epochs=2, runs_dir=str(tmp_path))
    ).config
    model = build_model("resnet-small", mnist_small, widths=[8, 16])
    cut = Trainer(cfg, callbacks=[ctrl_c_after(0, 5)]).fit(model, mnist_small)
    assert cut.status == "interrupted"
    last = cut.run_dir / "last.pt"
    checkpoint = torch.load(last, weights_only=True)
    for key in ("stem_pool", "downsample"):  # as an older trainlab wrote it
        checkpoint["config"]["model_options"].pop(key)
    save_checkpoint(last, checkpoint)
    again = build_model("resnet-small", mnist_small, widths=[8, 16])
    resumed = Trainer(cfg).fit(again, mnist_small, resume=cut.run_dir)
    assert resumed.status == "completed" and len(resumed.history) == 2
