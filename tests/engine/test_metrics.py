from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn import metrics as sk

from trainlab.data import Batches
from trainlab.engine.loop import evaluate, loss_function
from trainlab.engine.metrics import Counts, confusion_matrix, per_class

V1 = Path(__file__).resolve().parents[1] / "fixtures" / "v1"


def test_loss_is_sample_weighted_over_uneven_batches():
    torch.manual_seed(0)
    x, y = torch.randn(103, 5), torch.randint(0, 3, (103,))
    model = torch.nn.Linear(5, 3)
    loss_fn = loss_function("cross-entropy")
    metrics = evaluate(model, Batches(x, y, 25), loss_fn, 3)  # batches of 25, 25, 25, 25, 3
    with torch.no_grad():
        full = torch.nn.functional.cross_entropy(model(x), y).item()
        acc = (model(x).argmax(1) == y).float().mean().item()
        batch_means = [
            torch.nn.functional.cross_entropy(model(x[i : i + 25]), y[i : i + 25]).item()
            for i in range(0, 103, 25)
        ]
    assert metrics.loss == pytest.approx(full, rel=1e-6)
    assert metrics.accuracy == pytest.approx(acc)
    assert metrics.n == 103
    assert (
        abs(sum(batch_means) / len(batch_means) - full) > 1e-4
    )  # the seeds' mean of means differs


def test_per_class_equals_scikit_learn():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 5, (500,), generator=g)
    pred = torch.where(
        torch.rand(500, generator=g) < 0.7, y, torch.randint(0, 5, (500,), generator=g)
    )
    pred[pred == 4] = 3  # class 4 never predicted: precision 0, as zero_division=0
    counts = Counts(5, torch.device("cpu"))
    counts.add(torch.tensor(0.0), torch.nn.functional.one_hot(pred, 5).float(), y)
    confusion = counts.read().confusion
    assert confusion.tolist() == sk.confusion_matrix(y, pred, labels=range(5)).tolist()
    p, r, f, s = sk.precision_recall_fscore_support(y, pred, labels=range(5), zero_division=0)
    ours = per_class(confusion)
    assert ours["precision"] == pytest.approx(p.tolist())
    assert ours["recall"] == pytest.approx(r.tolist())
    assert ours["f1"] == pytest.approx(f.tolist())
    assert ours["support"] == s.tolist()


@pytest.mark.parametrize("run", ["cnn-mnist", "mlp-mnist"])
def test_the_helpers_equal_scikit_learn_on_a_real_models_predictions(run):
    """The MNIST test predictions the v1 runs kept: what eval, the report and TensorBoard
    count, against scikit-learn's own functions."""
    from trainlab.engine.predictions import load_predictions

    pred = load_predictions(V1 / run / "predictions.npz")
    labels, predicted, k = pred["labels"], pred["pred"], len(pred["classes"])
    assert (labels != predicted).any() and len(np.unique(predicted)) > 2
    ours = confusion_matrix(labels, predicted, k)
    theirs = sk.confusion_matrix(labels, predicted, labels=range(k))
    assert ours.dtype == torch.int64 and ours.tolist() == theirs.tolist()
    # the same matrix from tensors, numpy arrays or lists, and per_class from any of them
    assert confusion_matrix(torch.from_numpy(labels), torch.from_numpy(predicted), k).equal(ours)
    assert confusion_matrix(labels.tolist(), predicted.tolist(), k).equal(ours)
    p, r, f, s = sk.precision_recall_fscore_support(
        labels, predicted, labels=range(k), zero_division=0
    )
    for confusion in (ours, ours.numpy(), ours.tolist()):
        scores = per_class(confusion)
        assert scores["precision"] == pytest.approx(p.tolist(), abs=1e-12)
        assert scores["recall"] == pytest.approx(r.tolist(), abs=1e-12)
        assert scores["f1"] == pytest.approx(f.tolist(), abs=1e-12)
        assert scores["support"] == s.tolist()


def test_a_class_absent_from_labels_and_predictions_gets_zeros():
    confusion = confusion_matrix(np.array([0, 0, 1]), np.array([0, 1, 1]), num_classes=4)
    assert confusion.shape == (4, 4) and confusion[2:].sum() == 0 and confusion[:, 2:].sum() == 0
    scores = per_class(confusion)
    assert scores["support"] == [2, 1, 0, 0]
    assert scores["precision"][2:] == [0.0, 0.0] and scores["recall"][2:] == [0.0, 0.0]
