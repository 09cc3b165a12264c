import pytest
import torch

from trainlab.data import Batches, InputTransform
from trainlab.data.batches import epoch_generator


def test_normalised_batches_equal_torchvision(mnist):
    from PIL import Image
    from torchvision import transforms

    mean, std = mnist.mean, mnist.std
    reference = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    batches = Batches(
        mnist.train_x, mnist.train_y, 64, shuffle=True, seed=3, transform=InputTransform(mean, std)
    )
    order = torch.randperm(len(mnist.train_y), generator=epoch_generator(3, 0))[:64]
    x, y = next(iter(batches.epoch(0)))
    expected = torch.stack(
        [reference(Image.fromarray(mnist.train_x[i, 0].numpy(), mode="L")) for i in order.tolist()]
    )
    assert torch.equal(y, mnist.train_y[order])
    assert (x - expected).abs().max().item() < 1e-6


def test_resize_and_channel_repeat_match_torchvision(mnist):
    from torchvision.transforms import functional as TF

    images = mnist.test_x[:8]
    x = InputTransform([0.2], [0.3], size=(96, 96), channels=3)(images)
    assert x.shape == (8, 3, 96, 96)
    assert torch.equal(x[:, 0], x[:, 2])
    reference = TF.normalize(
        TF.resize(images.float() / 255, [96, 96], antialias=False), [0.2], [0.3]
    )
    assert (x[:, :1] - reference).abs().max().item() < 1e-5


def test_shuffle_is_seeded_per_epoch_and_covers_everything():
    x, y = torch.arange(100).view(100, 1).float(), torch.arange(100)
    b = Batches(x, y, 32, shuffle=True, seed=7)
    first = torch.cat([yb for _, yb in b.epoch(0)])
    assert sorted(first.tolist()) == list(range(100))
    assert torch.equal(
        first, torch.cat([yb for _, yb in Batches(x, y, 32, shuffle=True, seed=7).epoch(0)])
    )
    assert not torch.equal(first, torch.cat([yb for _, yb in b.epoch(1)]))
    assert not torch.equal(
        first, torch.cat([yb for _, yb in Batches(x, y, 32, shuffle=True, seed=8).epoch(0)])
    )
    # resuming at batch 2 gives the tail of the same order
    assert torch.equal(torch.cat([yb for _, yb in b.epoch(0, start=2)]), first[64:])


def test_batch_sizes_and_drop_last():
    x, y = torch.zeros(100, 2), torch.zeros(100, dtype=torch.long)
    assert [len(yb) for _, yb in Batches(x, y, 32)] == [32, 32, 32, 4]
    assert [len(yb) for _, yb in Batches(x, y, 32, drop_last=True)] == [32, 32, 32]
    assert len(Batches(x, y, 32, drop_last=True)) == 3


def test_tabular_inputs_pass_through():
    x = torch.randn(10, 3)
    assert torch.equal(InputTransform()(x), x)


def test_subset_and_validation_split_are_stratified(mnist):
    small = mnist.subset(1000, 200, seed=0)
    counts = torch.bincount(small.train_y, minlength=10)
    expected = torch.bincount(mnist.train_y, minlength=10).double() * 1000 / 60000
    assert counts.sum() == 1000 and (counts - expected).abs().max() < 1
    assert len(small.test_y) == 200
    split = small.split_validation(0.2, seed=0)
    assert len(split.val_y) == 200 and len(split.train_y) == 800
    val_counts = torch.bincount(split.val_y, minlength=10).double()
    assert (val_counts - counts.double() * 0.2).abs().max() < 1
    # disjoint: every training image is used exactly once across train + val
    together = torch.cat([split.train_x, split.val_x]).flatten(1)
    assert (
        torch.unique(together, dim=0).shape[0]
        == torch.unique(small.train_x.flatten(1), dim=0).shape[0]
    )
    assert torch.equal(split.val_y, small.split_validation(0.2, seed=0).val_y)


def test_subset_larger_than_data_is_an_error(mnist_small):
    from trainlab.errors import ConfigError

    with pytest.raises(ConfigError, match="subset=5000 is larger than the 2000"):
        mnist_small.subset(5000)
