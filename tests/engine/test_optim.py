import pytest

from trainlab.config import TrainConfig
from trainlab.engine.optim import lr_at


def test_onecycle_warms_up_peaks_and_anneals():
    cfg = TrainConfig(epochs=2, lr=0.1, schedule="onecycle", warmup=0.25)
    steps = 100  # per epoch: 200 in all, peak at step 50
    assert lr_at(cfg, 0, steps) == pytest.approx(0.1 / 25)
    assert lr_at(cfg, 50, steps) == pytest.approx(0.1)
    assert lr_at(cfg, 25, steps) < lr_at(cfg, 50, steps)
    assert lr_at(cfg, 199, steps) < 0.001
    values = [lr_at(cfg, s, steps) for s in range(50, 200)]
    assert values == sorted(values, reverse=True)


def test_step_cosine_constant():
    step = TrainConfig(epochs=4, lr=1.0, schedule="step", step_size=1, gamma=0.7)
    assert [round(lr_at(step, e * 10, 10), 6) for e in range(4)] == [1.0, 0.7, 0.49, 0.343]
    cos = TrainConfig(epochs=1, lr=1.0, schedule="cosine")
    assert lr_at(cos, 0, 100) == 1.0 and lr_at(cos, 50, 100) == pytest.approx(0.5)
    assert lr_at(TrainConfig(schedule="constant", lr=0.3), 77, 10) == 0.3


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_steps_as_one_fused_kernel_on_the_cpu_and_learns(name):
    import torch

    from trainlab.engine.optim import build_optimizer

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    optimizer = build_optimizer(model, TrainConfig(optimizer=name, lr=0.01))
    assert all(group["fused"] for group in optimizer.param_groups)
    x = torch.randn(256, 8)
    y = x.sum(1, keepdim=True)
    first = None
    for _ in range(200):
        loss = torch.nn.functional.mse_loss(model(x), y)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first / 10
