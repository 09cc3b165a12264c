"""--mixup and --cutmix: mixed images, and the loss on the mixed targets."""

import pytest
import torch
import torch.nn.functional as F

from trainlab import Trainer, build_model
from trainlab.data import load_dataset
from trainlab.data.mix import Mix
from trainlab.errors import ConfigError
from trainlab.resolve import resolve_config


def _batch(mnist_small, n=32):
    return mnist_small.test_x[:n].float() / 255, mnist_small.test_y[:n]


def test_mixup_blends_each_image_with_another_and_the_loss_takes_both_labels(mnist_small):
    x, y = _batch(mnist_small)
    mix = Mix(mixup=0.4)
    torch.manual_seed(0)
    mixed = mix(x)
    perm, lam = mix._draw
    assert 0 < lam < 1 and sorted(perm.tolist()) == list(range(32))
    assert torch.allclose(mixed, lam * x + (1 - lam) * x[perm], atol=1e-6)
    outputs = torch.randn(32, 10)
    loss = mix.loss(lambda out, t: F.cross_entropy(out, t, reduction="sum"))(outputs, y)
    expected = lam * F.cross_entropy(outputs, y, reduction="sum") + (1 - lam) * F.cross_entropy(
        outputs, y[perm], reduction="sum"
    )
    assert torch.allclose(loss, expected)


def test_cutmix_pastes_one_box_and_weighs_the_labels_by_its_area(mnist_small):
    x, y = _batch(mnist_small)
    mix = Mix(cutmix=1.0)
    torch.manual_seed(1)
    mixed = mix(x)
    perm, lam = mix._draw
    pasted = (mixed != x) & (mixed == x[perm])
    rows, cols = pasted.any(0).any(0).any(1).nonzero(), pasted.any(0).any(0).any(0).nonzero()
    box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert lam == pytest.approx(1 - int(box) / (28 * 28), abs=0.05)  # the share kept
    outside = torch.ones(28, 28, dtype=torch.bool)
    outside[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = False
    assert torch.equal(mixed[..., outside], x[..., outside])  # the rest is each image's own


def test_a_run_records_the_mix_and_tables_are_refused(tmp_path, mnist_small):
    cfg = resolve_config(
        dict(model="mlp", hidden=[32], epochs=1, mixup=0.2, runs_dir=str(tmp_path))
    )
    result = Trainer(cfg.config).fit(build_model("mlp", mnist_small, hidden=[32]), mnist_small)
    toml = (result.run_dir / "config.toml").read_text()
    assert "mixup (alpha 0.2), loss on the mixed targets" in toml
    table = load_dataset("random", samples=200, features=8, num_classes=3)
    cfg = resolve_config(dict(model="mlp", epochs=1, cutmix=1.0, runs_dir=str(tmp_path)))
    with pytest.raises(ConfigError, match="--mixup/--cutmix mix images; dataset 'random'"):
        Trainer(cfg.config).fit(build_model("mlp", table), table)
