"""The loop's two functions: an epoch trains from where its state says and stops when asked;
evaluation counts every sample once, from our batches or from a DataLoader alike."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trainlab.data.batches import Batches
from trainlab.engine.loop import EpochState, evaluate, loss_function, train_one_epoch
from trainlab.engine.metrics import Counts
from trainlab.errors import ConfigError


def _data(n=100):
    torch.manual_seed(0)
    return torch.randn(n, 5), torch.randint(0, 3, (n,))


def test_evaluate_counts_each_sample_once_whatever_the_batches():
    x, y = _data(103)
    torch.manual_seed(1)
    model = nn.Linear(5, 3)
    loss = loss_function("cross-entropy")
    ours = evaluate(model, Batches(x, y, 10), loss, 3)
    theirs = evaluate(model, DataLoader(TensorDataset(x, y), batch_size=7), loss, 3)
    expected = F.cross_entropy(model(x), y).item()
    assert ours.n == theirs.n == 103
    assert ours.loss == pytest.approx(expected) and theirs.loss == pytest.approx(expected)
    assert ours.correct == theirs.correct == int((model(x).argmax(1) == y).sum())


def test_an_epoch_stops_where_asked_and_continues_from_there_to_the_same_weights():
    x, y = _data()
    loss = loss_function("cross-entropy")

    def run(stop_at):
        torch.manual_seed(2)
        model = nn.Linear(5, 3)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        batches = Batches(x, y, 10, shuffle=True, seed=3)
        state = EpochState(0, 0, Counts(3, torch.device("cpu")))
        if stop_at:
            state.stop_requested = lambda: state.batch == stop_at
        done = train_one_epoch(model, batches, optimizer, loss, state)
        if not done:
            state.stop_requested = lambda: False
            assert train_one_epoch(model, batches, optimizer, loss, state)
        return model, state, done

    whole, whole_state, _ = run(None)
    split, split_state, done = run(4)
    assert not done and whole_state.batch == split_state.batch == 10
    assert torch.equal(whole.weight, split.weight)
    assert whole_state.counts.n == split_state.counts.n == 100


def test_a_loss_that_does_not_fit_is_refused():
    with pytest.raises(ConfigError, match="label-smoothing applies to classification"):
        loss_function("mse", label_smoothing=0.1)
    with pytest.raises(ConfigError, match="unknown loss 'hinge'"):
        loss_function("hinge")
