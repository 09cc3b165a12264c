"""A run's state between its steps: a checkpoint's payload puts the optimizer, the random draws
and the best-so-far back exactly."""

from __future__ import annotations

import torch
from torch import nn

from trainlab.data.batches import Batches
from trainlab.engine.checkpoint import BestCheckpoint
from trainlab.engine.distributed import Dist
from trainlab.engine.metrics import Counts
from trainlab.engine.setup import RunSetup
from trainlab.engine.state import checkpoint_payload, restore_state


def _setup(model):
    x, y = torch.randn(20, 4), torch.randint(0, 2, (20,))
    return RunSetup(
        device=torch.device("cpu"),
        amp_dtype=None,
        transform=None,
        loss_fn=None,
        splits={},
        scorer=model,
        train=Batches(x, y, 5),
        optimizer=torch.optim.Adam(model.parameters(), lr=0.1),
        dist=Dist(),
        train_model=model,
        train_loss_fn=None,
        shards={},
    )


def test_a_payload_restores_optimizer_random_draws_best_and_partial_counts():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    setup = _setup(model)
    model(torch.randn(3, 4)).sum().backward()
    setup.optimizer.step()
    best = BestCheckpoint("val_acc", "max", "the validation split")
    best.update({"epoch": 1, "val_acc": 0.75})
    counts = Counts(2, torch.device("cpu"))
    counts.add(torch.tensor(3.0), torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))
    payload = checkpoint_payload({}, model, setup, best, [], [], (1, 3), counts)
    expected_draw = torch.rand(3)

    torch.manual_seed(99)
    other = nn.Linear(4, 2)
    other.load_state_dict(payload["state_dict"])
    restored_setup = _setup(other)
    restored_best = BestCheckpoint("val_acc", "max", "")
    partial = restore_state(payload, restored_setup, restored_best, [])
    assert torch.equal(torch.rand(3), expected_draw)  # the same random stream continues
    assert restored_best.state_dict() == best.state_dict()
    saved, again = setup.optimizer.state_dict(), restored_setup.optimizer.state_dict()
    assert all(torch.equal(saved["state"][0][k], again["state"][0][k]) for k in saved["state"][0])
    assert partial["n"] == 2 and partial["confusion"].tolist() == [[1, 1], [0, 0]]
