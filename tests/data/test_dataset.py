"""A Dataset from what numpy and scikit-learn give: float64 features and int64 labels, as numpy
arrays, train as they are; the float32 conversion is said once; what cannot be converted is
refused with a message."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from trainlab.data.dataset import Dataset
from trainlab.errors import ConfigError


def _split(x: np.ndarray, y: np.ndarray, train: int):
    order = np.random.default_rng(0).permutation(len(x))
    return x[order[:train]], y[order[:train]], x[order[train:]], y[order[train:]]


def _conversion_notes(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "float64" in r.getMessage()]


def test_float64_features_from_scikit_learn_train_and_the_conversion_is_said_once(tmp_path, caplog):
    from sklearn.datasets import load_breast_cancer

    from trainlab import Trainer, build_model

    x, y = load_breast_cancer(return_X_y=True)
    x = (x - x.mean(0)) / x.std(0)  # standardised, as StandardScaler gives: still float64
    assert x.dtype == np.float64 and y.dtype == np.int64
    train_x, train_y, test_x, test_y = _split(x, y, 400)
    with caplog.at_level(logging.INFO, logger="trainlab"):
        data = Dataset(
            "breast-cancer", train_x, train_y, test_x, test_y, classes=["malignant", "benign"]
        )
        result = Trainer(
            epochs=3, device="cpu", runs_dir=str(tmp_path), run_name="bc", quiet=True
        ).fit(build_model("mlp", data), data)
    assert _conversion_notes(caplog) == [
        "Dataset 'breast-cancer': train_x= and test_x= are float64; converted to float32, the "
        "precision the models compute in (give float32 to skip the copy)."
    ]
    assert data.train_x.dtype == torch.float32 and data.train_y.dtype == torch.int64
    assert data.kind == "tabular" and data.input_shape == (30,)
    assert torch.equal(data.test_x, torch.from_numpy(test_x).float())  # the values, in float32
    last = result.history[-1]
    assert math.isfinite(last["train_loss"]) and last["test_n"] == 169
    assert last["test_acc"] > 0.9  # a standardised breast-cancer table is easy


def test_raw_features_are_standardised_with_the_training_split_and_eval_reapplies_it(tmp_path):
    """scikit-learn's breast cancer as it comes (areas in the thousands beside ratios below 1):
    an MLP on the raw features sits at the majority class; standardised by default with the
    training split's statistics, recorded with the run, it learns, and eval scores the same."""
    import tomllib

    from sklearn.datasets import load_breast_cancer

    from trainlab import Trainer, build_model
    from trainlab.workflow import evaluate_checkpoint

    x, y = load_breast_cancer(return_X_y=True)
    train_x, train_y, test_x, test_y = _split(x.astype(np.float32), y, 400)
    data = Dataset("bc-raw", train_x, train_y, test_x, test_y, classes=["malignant", "benign"])
    assert data.mean == pytest.approx(train_x.astype(np.float64).mean(0).tolist(), rel=1e-6)
    trainer = Trainer(epochs=5, device="cpu", runs_dir=str(tmp_path), run_name="bc", quiet=True)
    result = trainer.fit(build_model("mlp", data), data)
    assert result.history[-1]["test_acc"] >= 0.93
    recorded = tomllib.loads((tmp_path / "bc" / "config.toml").read_text())["data"]
    assert len(recorded["transform"]["mean"]) == 30 and recorded["transform"]["std"][3] > 100
    report = evaluate_checkpoint(tmp_path / "bc", data=data, device="cpu")
    assert report.accuracy == pytest.approx(result.history[-1]["test_acc"])
    as_given = Dataset("bc-as-given", train_x, train_y, test_x, test_y, classes=["m", "b"],
                       mean=[0.0], std=[1.0])  # fmt: skip
    trainer = Trainer(epochs=5, device="cpu", runs_dir=str(tmp_path), run_name="raw", quiet=True)
    raw = trainer.fit(build_model("mlp", as_given), as_given)
    assert raw.history[-1]["test_acc"] < 0.9  # what the default saves people from


def test_float64_regression_targets_from_scikit_learn_fit_a_line(tmp_path, caplog):
    """scikit-learn gives regression targets as float64 of shape N: they become float32 N×1,
    the model's output shape (N against N×1 would broadcast into an N×N loss that fits only
    the mean: a test MSE of 1 or more on standardised targets)."""
    from sklearn.datasets import load_diabetes

    from trainlab import Trainer, build_model

    x, y = load_diabetes(return_X_y=True)
    x, y = (x - x.mean(0)) / x.std(0), (y - y.mean()) / y.std()
    with caplog.at_level(logging.INFO, logger="trainlab"):
        data = Dataset("diabetes", *_split(x, y, 350), classes=[])
        result = Trainer(epochs=5, device="cpu", runs_dir=str(tmp_path), quiet=True).fit(
            build_model("linreg", data), data
        )
    assert data.train_x.dtype == data.train_y.dtype == torch.float32
    assert data.train_y.shape == (350, 1) and data.output_size == 1
    assert _conversion_notes(caplog) == [
        "Dataset 'diabetes': train_x=, train_y=, test_x= and test_y= are float64; converted to "
        "float32, the precision the models compute in (give float32 to skip the copy)."
    ]
    assert result.history[-1]["test_loss"] < 0.7  # R² above 0.3; scikit-learn's OLS: 0.45


def test_numpy_images_and_labels_are_taken_as_tensors(caplog):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 8, 8), dtype=np.uint8)
    labels = np.arange(20) % 2  # int64
    with caplog.at_level(logging.INFO, logger="trainlab"):
        data = Dataset("tiny", images[:12], labels[:12], images[12:][::-1], labels[12:][::-1],
                       classes=["a", "b"])  # fmt: skip
    assert data.input_shape == (1, 8, 8) and data.kind == "images"
    assert torch.equal(data.test_x[:, 0], torch.from_numpy(images[12:][::-1].copy()))
    assert data.test_y.tolist() == labels[12:][::-1].tolist()
    assert _conversion_notes(caplog) == []  # nothing float64, nothing said


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.array([["a", "b"]] * 4), "a numpy array of <U1; give numbers"),
        (np.array([[1, None]] * 4), "a numpy array of object; give numbers"),
        ([[0.0, 1.0]] * 4, "must be torch tensors or numpy arrays, got list and ndarray"),
    ],
)
def test_what_is_not_an_array_of_numbers_is_refused_by_name(x, message):
    with pytest.raises(ConfigError, match="train_x=") as refused:
        Dataset("odd", x, np.zeros(4, np.int64), np.zeros((1, 2)), np.zeros(1, np.int64), ["a"])
    assert message in str(refused.value)
