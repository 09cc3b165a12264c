"""Calibration: a temperature fitted on the validation split, used by every probability shown."""

import numpy as np
import pytest
import torch

from trainlab import Trainer, build_model
from trainlab.engine.calibration import (
    expected_calibration_error,
    fit_temperature,
    label_calibration_record,
    reliability,
)
from trainlab.engine.checkpoint import load_checkpoint
from trainlab.errors import CheckpointError
from trainlab.inference import Predictor
from trainlab.resolve import resolve_config
from trainlab.workflow import calibrate_checkpoint


def test_the_ece_is_torchmetrics_and_the_fit_recovers_a_known_temperature():
    from torchmetrics.functional.classification import multiclass_calibration_error

    g = torch.Generator().manual_seed(0)
    logits = 2 * torch.randn(5000, 10, generator=g)
    labels = torch.multinomial(logits.softmax(1), 1, generator=g)[:, 0]  # calibrated logits
    probs = (logits * 2.5).softmax(1)  # made over-confident by 2.5
    ours = expected_calibration_error(probs.numpy(), labels.numpy())
    theirs = multiclass_calibration_error(probs, labels, num_classes=10, n_bins=15, norm="l1")
    assert ours == pytest.approx(float(theirs), abs=1e-6)
    assert fit_temperature(logits * 2.5, labels) == pytest.approx(2.5, rel=0.05)


def test_the_reliability_bins_are_the_eces():
    """The diagram's bars are the ECE's bins: weighted by count, their gaps sum to the ECE."""
    g = torch.Generator().manual_seed(1)
    logits = 3 * torch.randn(4000, 10, generator=g)
    labels = torch.multinomial(logits.softmax(1), 1, generator=g)[:, 0]
    probs = (logits * 2).softmax(1).numpy()
    bins = reliability(probs, labels.numpy())
    count = np.asarray(bins["count"])
    gaps = np.abs(np.asarray(bins["accuracy"]) - np.asarray(bins["confidence"]))
    assert count.sum() == 4000
    assert (count * gaps).sum() / 4000 == pytest.approx(
        expected_calibration_error(probs, labels.numpy()), abs=1e-5
    )


def test_each_label_gets_its_own_temperature_where_validation_shows_both_sides():
    """Multi-label: one temperature per label on its sigmoid logits; a label the validation
    split holds always or never keeps 1.0 and is named."""
    g = torch.Generator().manual_seed(0)
    logits = 2 * torch.randn(6000, 4, generator=g)
    labels = torch.bernoulli(logits.sigmoid(), generator=g)  # calibrated logits
    labels[:, 3] = 0  # "cat": never in these images
    scale = torch.tensor([2.5, 1.0, 0.6, 3.0])  # over-, well and under-confident
    half = 3000
    val = (logits[:half] * scale, labels[:half])
    test = (logits[half:] * scale, labels[half:])
    record = label_calibration_record(val, test, ["a", "b", "c", "cat"])
    assert record["temperatures"][:3] == pytest.approx([2.5, 1.0, 0.6], rel=0.1)
    assert record["temperatures"][3] == 1.0 and record["uncalibrated_labels"] == ["cat"]
    assert record["ece_split"] == "test" and record["ece_after"] < record["ece_before"]


def test_a_run_with_a_validation_split_is_calibrated_and_predict_uses_it(tmp_path, mnist_small):
    cfg = resolve_config(dict(epochs=2, val_split=0.2, runs_dir=str(tmp_path))).config
    torch.manual_seed(0)
    result = Trainer(cfg).fit(build_model("cnn", mnist_small), mnist_small)
    record = result.extra["calibration"]
    assert record == load_checkpoint(result.run_dir / "best.pt")["calibration"]
    assert "[calibration]" in (result.run_dir / "config.toml").read_text()
    # measured on the test split, which the fit never saw: the probabilities got more honest
    assert record["ece_split"] == "test" and record["ece_after"] < record["ece_before"]
    # predict shows softmax(logits / T): the same answers, the calibrated probabilities
    images = [mnist_small.test_x[i, 0].numpy() for i in range(16)]
    calibrated = Predictor(result.run_dir).predict(images, names=list("abcdefghijklmnop"))
    model = build_model("cnn", mnist_small)
    model.load_state_dict(load_checkpoint(result.run_dir / "best.pt")["state_dict"])
    predictor = Predictor(result.run_dir)
    x = torch.from_numpy(np.stack([r.preview for r in calibrated]))
    x = predictor.transform(x.unsqueeze(1) if x.dim() == 3 else x)
    with torch.no_grad():
        expected = (model.eval()(x) / record["temperature"]).softmax(1)
    got = torch.tensor([r.probabilities for r in calibrated])
    assert torch.allclose(got, expected, atol=2e-2)  # bf16 scoring where the run used it
    assert [r.index for r in calibrated] == expected.argmax(1).tolist()


def test_calibrate_refuses_a_run_without_a_validation_split(tmp_path, mnist_small):
    cfg = resolve_config(dict(epochs=1, runs_dir=str(tmp_path))).config
    torch.manual_seed(0)
    result = Trainer(cfg).fit(build_model("cnn", mnist_small), mnist_small)
    assert "calibration" not in result.extra
    with pytest.raises(CheckpointError, match="trained without one .*--val-split 0.1"):
        calibrate_checkpoint(result.run_dir, data=mnist_small)
