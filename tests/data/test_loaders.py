"""DataLoaders in Trainer.fit, as the seed tutorials write them: collected into memory once,
then a run like any other (run directory, metrics, checkpoints, exact resume)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trainlab import Trainer
from trainlab.data.loaders import dataset_from_loaders
from trainlab.engine.checkpoint import load_checkpoint
from trainlab.errors import DataError


def _seed_loaders():
    """The third seed tutorial's data: 100 samples of 10 features, two classes."""
    torch.manual_seed(0)
    x, y = torch.randn(100, 10), torch.randint(0, 2, (100,))
    train = DataLoader(TensorDataset(x[:80], y[:80]), batch_size=10, shuffle=True)
    test = DataLoader(TensorDataset(x[80:], y[80:]), batch_size=20, shuffle=False)
    return train, test, x, y


def _seed_model():
    return nn.Sequential(nn.Linear(10, 5), nn.ReLU(), nn.Linear(5, 2), nn.LogSoftmax(dim=1))


def test_the_seed_tutorials_loaders_train_into_a_run_directory(tmp_path, capsys):
    train, test, x, _ = _seed_loaders()
    result = Trainer(epochs=5, optimizer="adam", lr=0.01, runs_dir=str(tmp_path)).fit(
        _seed_model(), (train, test)
    )
    said = capsys.readouterr().err
    assert "collected 80 train, 20 test samples" in said
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4, 5]
    lines = (result.run_dir / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert rows[-1]["test_n"] == 20 and "test_acc" in rows[-1]
    config = load_checkpoint(result.best_path)["config"]
    assert config["batch_size"] == 10  # the train loader's, as nothing else was chosen


def test_a_shuffling_loader_is_read_in_its_datasets_order(mnist_small):
    x, y = mnist_small.train_x[:300], mnist_small.train_y[:300]
    loader = DataLoader(TensorDataset(x.float() / 255, y), batch_size=32, shuffle=True)
    data = dataset_from_loaders(loader)
    assert torch.equal(data.train_x, x[data_index(data, x)])  # same images, exact uint8
    assert data.kind == "images" and data.classes == [str(c) for c in range(10)]


def data_index(data, x):
    """Where each collected training image is in ``x`` (the 20% test split was cut out)."""
    flat = x.reshape(len(x), -1)
    return torch.tensor([int((flat == row).all(1).nonzero()[0]) for row in data.train_x.flatten(1)])


def test_normalised_images_are_tensors_used_as_given(mnist_small):
    mean, std = 0.5, 0.5  # the seed's transforms.Normalize((0.5,), (0.5,))
    x = (mnist_small.train_x[:200].float() / 255 - mean) / std
    loader = DataLoader(TensorDataset(x, mnist_small.train_y[:200]), batch_size=50)
    data = dataset_from_loaders((loader, loader))
    assert data.kind == "tensors" and data.train_x.dtype == torch.float32
    assert torch.equal(data.train_x, x)


def test_a_resume_from_loaders_continues_exactly(tmp_path):
    train, test, *_ = _seed_loaders()
    # a constant schedule: onecycle's learning rates depend on the epochs asked for, so 2 epochs
    # then 2 more is the 4-epoch run only when the rate does not depend on the total
    cfg = dict(
        optimizer="adam", lr=0.01, schedule="constant", runs_dir=str(tmp_path), quiet=True, seed=1
    )
    torch.manual_seed(1)
    whole = Trainer(epochs=4, run_name="whole", **cfg).fit(_seed_model(), (train, test))
    torch.manual_seed(1)
    half = Trainer(epochs=2, run_name="half", **cfg).fit(_seed_model(), (train, test))
    resumed = Trainer(epochs=4, **cfg).fit(_seed_model(), (train, test), resume=half.run_dir)
    a, b = load_checkpoint(whole.last_path), load_checkpoint(resumed.last_path)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_what_is_not_a_loader_of_pairs_is_refused():
    with pytest.raises(DataError, match=r"batch 0 is Tensor, not \(inputs, targets\)"):
        dataset_from_loaders([[torch.zeros(4, 3)]])
    with pytest.raises(DataError, match="takes a Dataset, a DataLoader, or a tuple"):
        dataset_from_loaders((1, 2))
