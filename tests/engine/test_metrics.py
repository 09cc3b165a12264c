import pytest
import torch
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from trainlab.data import Batches
from trainlab.engine.loop import evaluate, loss_function
from trainlab.engine.metrics import Counts, per_class


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
    assert confusion.tolist() == confusion_matrix(y, pred, labels=range(5)).tolist()
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=range(5), zero_division=0)
    ours = per_class(confusion)
    assert ours["precision"] == pytest.approx(p.tolist())
    assert ours["recall"] == pytest.approx(r.tolist())
    assert ours["f1"] == pytest.approx(f.tolist())
    assert ours["support"] == s.tolist()
