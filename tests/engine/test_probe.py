"""One batch through the model before the first step: wrong shapes are refused before an epoch
is spent, a final softmax under cross-entropy is named, lazy modules work, nothing changes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainlab import Trainer
from trainlab.data.batches import InputTransform
from trainlab.engine.probe import probe
from trainlab.errors import ConfigError


def _fit(tmp_path, model, data, **settings):
    trainer = Trainer(epochs=1, runs_dir=str(tmp_path), device="cpu", quiet=True, **settings)
    return trainer.fit(model, data)


def _mlp(outputs=10, *, last=None):
    layers = [nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, outputs)]
    return nn.Sequential(*layers, *([last] if last is not None else []))


def test_a_model_with_the_wrong_number_of_outputs_is_refused_before_training(tmp_path, mnist_small):
    with pytest.raises(ConfigError, match="the model gives 5 outputs per sample; the data has 10"):
        _fit(tmp_path, _mlp(5), mnist_small)
    with pytest.raises(ConfigError, match="gives 12 outputs .* 10 classes"):
        _fit(tmp_path, _mlp(12), mnist_small)
    assert not list(tmp_path.glob("*/last.pt"))  # refused before a run directory was written


def test_a_model_that_rejects_the_input_shape_is_told_the_shape_the_data_gives(
    tmp_path, mnist_small
):
    colour = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.LazyLinear(10))
    with pytest.raises(ConfigError, match="rejects the data's input: dataset .* gives 1×28×28"):
        _fit(tmp_path, colour, mnist_small)


def test_a_final_softmax_under_cross_entropy_gets_a_warning_naming_the_layer(mnist_small, caplog):
    transform = InputTransform(mnist_small.mean, mnist_small.std)
    notes = probe(_mlp(last=nn.Softmax(dim=1)), mnist_small, transform, "cross-entropy")
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "from layer '4' (Softmax)" in notes["softmax"] and said[0].startswith("warning:")
    assert "Remove the final softmax" in said[0]
    caplog.clear()
    assert probe(_mlp(), mnist_small, transform, "cross-entropy") == {}
    assert not caplog.records
    # log-probabilities under cross-entropy are exact (log_softmax is idempotent): no warning
    assert probe(_mlp(last=nn.LogSoftmax(dim=1)), mnist_small, transform, "cross-entropy") == {}


def test_the_warning_is_recorded_with_the_run(tmp_path, mnist_small):
    import tomllib

    result = _fit(tmp_path, _mlp(last=nn.Softmax(dim=1)), mnist_small.subset(300, 100))
    config = tomllib.loads((result.run_dir / "config.toml").read_text())
    assert "cross-entropy expects logits" in config["notes"]["softmax"]


def test_a_lazy_model_trains_counts_its_parameters_and_evaluates(tmp_path, mnist_small):
    from trainlab.workflow import evaluate_checkpoint

    torch.manual_seed(0)
    lazy = nn.Sequential(nn.Flatten(), nn.LazyLinear(16), nn.ReLU(), nn.LazyLinear(10))
    result = _fit(tmp_path, lazy, mnist_small.subset(500, 200))
    assert result.final["test_acc"] > 0.5
    report = evaluate_checkpoint(
        result.best_path, device="cpu", data=mnist_small.subset(500, 200), model=lazy
    )
    assert report.accuracy == pytest.approx(result.final["test_acc"])


def test_the_probe_changes_no_weight_statistic_or_random_draw(mnist_small):
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Flatten(), nn.Linear(2704, 10)
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(7)
    rng = torch.get_rng_state()
    probe(model, mnist_small, InputTransform([0.13], [0.31]), "cross-entropy")
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training
