"""Classes of very different sizes, on real MNIST: one digit with 5% of the others' images.

The balanced sampler finds the rare digit more often, the report shows its counts and recall, a
balanced run interrupted mid-epoch resumes to bit-identical weights; class weights (balanced,
by name, from a file), the focal loss and the class-balanced monitors each show their effect.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import ctrl_c_after, run_here
from trainlab import Dataset, Trainer, build_model
from trainlab.data.batches import Batches
from trainlab.engine.checkpoint import load_checkpoint
from trainlab.engine.imbalance import focal_loss, parse_class_weights, sample_weights
from trainlab.engine.loop import loss_function
from trainlab.engine.metrics import class_balanced, confusion_matrix
from trainlab.errors import ConfigError

RARE = 3  # the digit with 5% of the others' training images


@pytest.fixture(scope="module")
def rare_digit(mnist) -> Dataset:
    """200 training images of each digit but 3, which has 10; 50 test images of each."""
    generator = torch.Generator().manual_seed(0)

    def pick(labels: torch.Tensor, per_class: int, rare: int) -> torch.Tensor:
        chosen = []
        for c in range(10):
            where = (labels == c).nonzero().flatten()
            where = where[torch.randperm(len(where), generator=generator)]
            chosen.append(where[: rare if c == RARE else per_class])
        return torch.cat(chosen).sort().values

    train, test = pick(mnist.train_y, 200, 10), pick(mnist.test_y, 50, 50)
    return Dataset(
        "mnist-rare-3",
        mnist.train_x[train],
        mnist.train_y[train],
        mnist.test_x[test],
        mnist.test_y[test],
        classes=list(mnist.classes),
    )


def fit(data: Dataset, runs, name: str, callbacks=(), resume=None, **settings):
    settings = {"epochs": 3, "lr": 0.05, "batch_size": 64, "seed": 0, **settings}
    torch.manual_seed(0)
    model = build_model("mlp", data, hidden=[64])
    trainer = Trainer(
        runs_dir=str(runs), device="cpu", quiet=True, run_name=name, callbacks=list(callbacks),
        **settings,
    )  # fmt: skip
    return trainer.fit(model, data, resume=resume)


def rare_recall(run_dir) -> float:
    predictions = np.load(run_dir / "predictions.npz")
    rare = predictions["labels"] == RARE
    return float((predictions["pred"][rare] == RARE).mean())


@pytest.fixture(scope="module")
def rare_folder(rare_digit, tmp_path_factory) -> Path:
    """The same images as PNG files, as people bring them: train/<digit>/, test/<digit>/."""
    root = tmp_path_factory.mktemp("photos") / "digits"
    for split in ("train", "test"):
        xs, ys = getattr(rare_digit, f"{split}_x"), getattr(rare_digit, f"{split}_y")
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            folder = root / split / str(int(y))
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x[0].numpy()).save(folder / f"{i:05d}.png")
    return root


def test_the_balanced_sampler_finds_the_rare_class_and_the_report_shows_it(
    tmp_path, rare_folder, capsys
):
    from trainlab.cli import main

    recall = {}
    (tmp_path / "cache").mkdir()  # the decode cache
    for sampler in ("shuffle", "balanced"):
        args = ["train", "--dataset", str(rare_folder), "--data-dir", str(tmp_path / "cache"),
                "--model", "mlp", "--hidden", "64", "--epochs", "3", "--lr", "0.05",
                "--device", "cpu", "--runs-dir", str(tmp_path), "--run-name", sampler,
                "--val-split", "0", "--sampler", sampler]  # fmt: skip
        assert main(args) == 0
        run = tmp_path / sampler
        recall[sampler] = rare_recall(run)
        assert load_checkpoint(run / "last.pt")["config"]["sampler"] == sampler  # recorded
    assert recall["balanced"] > recall["shuffle"] + 0.2, recall
    assert main(["report", str(tmp_path / "balanced")]) == 0
    page = (tmp_path / "balanced" / "report.html").read_text()
    # the rare digit's row: its training count (10), test count (50) and recall, side by side
    row = f"<td>{RARE}</td><td>10</td><td>50</td><td>{recall['balanced']:.4f}</td>"
    assert row in page.replace("\n", "").replace(" ", "")
    assert "<th>train count</th>" in page and "<th>test count</th>" in page
    # eval's console summary: the training count beside the recall, and the balanced figures
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "balanced" / "best.pt"), "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.strip().startswith(f"{RARE} "))
    assert line.split()[2] == f"{recall['balanced']:.4f}" and line.split()[-2:] == ["50", "10"]
    assert "balanced accuracy" in text and "macro F1" in text


def test_a_balanced_run_interrupted_mid_epoch_resumes_bit_exactly(tmp_path, rare_digit):
    straight = fit(rare_digit, tmp_path, "straight", epochs=2, sampler="balanced")
    cut = fit(rare_digit, tmp_path, "cut", [ctrl_c_after(1, 9)], epochs=2, sampler="balanced")
    assert cut.status == "interrupted"
    saved = load_checkpoint(cut.last_path)
    assert (saved["epoch"], saved["batch"]) == (1, 9)
    resumed = fit(rare_digit, tmp_path, "cut", epochs=2, sampler="balanced", resume=cut.run_dir)
    assert resumed.status == "completed"
    a, b = (load_checkpoint(r.last_path)["state_dict"] for r in (straight, resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_balanced_sampler_draws_each_class_about_equally_and_replays_by_epoch(rare_digit):
    y = rare_digit.train_y
    batches = Batches(rare_digit.train_x, y, 64, shuffle=True, seed=5,
                      sample_weights=sample_weights(y, 10))  # fmt: skip
    drawn = torch.cat([b for _, b in batches.epoch(0)])
    assert len(drawn) == len(y)
    share = torch.bincount(drawn, minlength=10).double() / len(drawn)
    assert float(share[RARE]) > 0.07 and float(share.max()) < 0.13  # vs 0.55% without
    again = torch.cat([b for _, b in batches.epoch(0, start=4)])
    assert torch.equal(again, drawn[4 * 64 :])  # a mid-epoch resume draws the same samples
    assert not torch.equal(torch.cat([b for _, b in batches.epoch(1)]), drawn)


def test_explicit_class_weights_scale_each_classs_loss(rare_digit, tmp_path):
    logits, y = (
        torch.randn(40, 10, generator=torch.Generator().manual_seed(0)),
        torch.arange(40) % 10,
    )
    weights = parse_class_weights("3=5,7=0.5", rare_digit.classes, rare_digit.train_y)
    assert weights.tolist() == [1, 1, 1, 5, 1, 1, 1, 0.5, 1, 1]
    per_sample = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    weighted = loss_function("cross-entropy", weight=weights)(logits, y)
    assert float(weighted) == pytest.approx(float((per_sample * weights[y]).sum()), rel=1e-6)
    # a file of NAME=WEIGHT lines gives the same weights
    path = tmp_path / "weights.txt"
    path.write_text("# the rare digit counts five times\n3=5\n7 = 0.5  # and 7 half\n")
    assert torch.equal(parse_class_weights(f"@{path}", rare_digit.classes, y), weights)
    balanced = parse_class_weights("balanced", rare_digit.classes, rare_digit.train_y)
    assert float(balanced[RARE]) == pytest.approx(1810 / (10 * 10))
    # a run records the weights its loss gave each class, and they change what it learns
    plain = fit(rare_digit, tmp_path, "plain", epochs=1)
    heavy = fit(rare_digit, tmp_path, "heavy", epochs=1, class_weights=f"@{path}")
    record = load_checkpoint(heavy.last_path)
    assert record["data"]["class_weights"] == weights.tolist()
    assert record["data"]["class_counts"]["train"] == [200] * 3 + [10] + [200] * 6
    a, b = (load_checkpoint(r.last_path)["state_dict"] for r in (plain, heavy))
    assert any(not torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("cat=2", "no class named 'cat'. The classes: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9."),
        ("3=0", "the weight of '3' is '0'; a weight must be a positive number"),
        ("3=-1", "the weight of '3' is '-1'"),
        ("3=heavy", "the weight of '3' is 'heavy'"),
        ("@/nowhere/weights.txt", "cannot read /nowhere/weights.txt"),
    ],
)
def test_bad_class_weights_name_the_problem_and_the_classes(spec, needle, rare_digit):
    with pytest.raises(ConfigError, match="--class-weights") as caught:
        parse_class_weights(spec, rare_digit.classes, rare_digit.train_y)
    assert needle in str(caught.value)


def test_bad_class_weights_on_the_command_line_are_clear_errors(tmp_path, mnist_root):
    from helpers import assert_clean_error

    common = ["train", "--model", "mlp", "--subset", "100", "--test-subset", "50", "--device",
              "cpu", "--data-dir", str(mnist_root), "--runs-dir", str(tmp_path)]  # fmt: skip
    proc = run_here(*common, "--class-weights", "cat=2")
    assert_clean_error(proc, "no class named 'cat'", "The classes: 0, 1, 2")
    proc = run_here(*common, "--class-weights", "3=")
    assert_clean_error(proc, "--class-weights", "NAME=WEIGHT pairs such as cat=1,dog=3")
    proc = run_here(*common, "--loss", "focal", "--label-smoothing", "0.1")
    assert_clean_error(proc, "--label-smoothing with --loss focal")
    for flag, value, needle in (
        ("--sampler", "random", "unknown sampler 'random'. Known: balanced, shuffle."),
        ("--focal-gamma", "-1", "--focal-gamma must be in [0, 100], got -1.0."),
        (
            "--monitor",
            "val_f1",
            "e.g. val_acc, val_loss, val_macro_f1 or val_micro_f1; got 'val_f1'",
        ),
    ):
        assert_clean_error(run_here(*common, flag, value), needle)


def test_focal_loss_with_gamma_0_is_cross_entropy_and_turns_down_easy_samples():
    logits = torch.randn(64, 10, generator=torch.Generator().manual_seed(1)) * 3
    y = torch.arange(64) % 10
    weights = torch.linspace(0.5, 2.0, 10)
    for weight in (None, weights):
        ce = torch.nn.functional.cross_entropy(logits, y, weight=weight, reduction="sum")
        assert float(focal_loss(0.0, weight)(logits, y)) == pytest.approx(float(ce), rel=1e-6)
    per = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    focal = [float(focal_loss(2.0)(logits[i : i + 1], y[i : i + 1])) for i in range(64)]
    easy, hard = int(per.argmin()), int(per.argmax())
    assert focal[easy] < 0.01 * float(per[easy]) and focal[hard] > 0.5 * float(per[hard])
    # gamma below 1 keeps finite gradients where the model is certain
    certain = torch.tensor([[100.0, 0.0]], requires_grad=True)
    focal_loss(0.5)(certain, torch.tensor([0])).backward()
    assert torch.isfinite(certain.grad).all()


def test_focal_loss_trains_differently_and_gamma_is_recorded(tmp_path, rare_digit):
    ce = fit(rare_digit, tmp_path, "ce", epochs=1, label_smoothing=0.0)
    focal = fit(rare_digit, tmp_path, "focal", epochs=1, loss="focal", focal_gamma=2.0)
    zero = fit(rare_digit, tmp_path, "zero", epochs=1, loss="focal", focal_gamma=0.0)
    config = load_checkpoint(focal.last_path)["config"]
    assert (config["loss"], config["focal_gamma"]) == ("focal", 2.0)
    # the same predictions cost less when confident, and the steps differ from cross-entropy's
    assert focal.history[0]["train_loss"] < 0.75 * ce.history[0]["train_loss"]
    a, b = (load_checkpoint(r.last_path)["state_dict"] for r in (ce, focal))
    assert any(not torch.equal(a[k], b[k]) for k in a)
    assert zero.history[0]["train_loss"] == pytest.approx(ce.history[0]["train_loss"], rel=1e-3)


def test_focal_loss_and_the_sampler_are_refused_for_regression(tmp_path):
    from trainlab.data import load_dataset

    data = load_dataset("linear", samples=200, seed=0)
    for settings, needle in (
        ({"loss": "focal"}, "--loss focal does not fit a regression task; use one of mse"),
        ({"sampler": "balanced"}, "--sampler balanced draws classes equally often"),
    ):
        with pytest.raises(ConfigError) as caught:
            Trainer(epochs=1, runs_dir=str(tmp_path), device="cpu", quiet=True,
                    **settings).fit(build_model("linreg", data), data)  # fmt: skip
        assert needle in str(caught.value)


def test_macro_f1_and_balanced_accuracy_from_counts_match_scikit_learn():
    from sklearn.metrics import balanced_accuracy_score, f1_score

    rng = np.random.default_rng(0)
    for trial in range(20):
        k = int(rng.integers(2, 8))
        y = rng.integers(0, k - 1 if trial % 3 == 0 else k, 200)  # sometimes a class never occurs
        pred = np.where(rng.random(200) < 0.6, y, rng.integers(0, k, 200))
        ours = class_balanced(confusion_matrix(y, pred, k))
        assert ours["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"), abs=1e-12)
        with warnings.catch_warnings():  # "y_pred contains classes not in y_true"
            warnings.simplefilter("ignore")
            expected = balanced_accuracy_score(y, pred)
        assert ours["balanced_acc"] == pytest.approx(expected, abs=1e-12)


def test_the_balanced_figures_choose_best_pt_and_stop_early(tmp_path, rare_digit):
    result = fit(rare_digit, tmp_path, "monitored", epochs=3, val_split=0.2,
                 monitor="val_balanced_acc", early_stop=2)  # fmt: skip
    best = load_checkpoint(result.last_path)["best"]
    assert (best["monitor"], best["mode"]) == ("val_balanced_acc", "max")
    values = [row["val_balanced_acc"] for row in result.history]
    assert best["value"] == max(values) and best["epoch"] == 1 + values.index(max(values))
    for row in result.history:
        assert {"train_macro_f1", "val_macro_f1", "test_macro_f1", "test_balanced_acc"} <= set(row)
    from trainlab.tune.settings import check_monitor

    assert check_monitor("val_macro_f1") == ("val_macro_f1", "maximize")
    with pytest.raises(ConfigError, match="val_macro_f1, val_balanced_acc"):
        check_monitor("val_f1")
    with pytest.raises(ConfigError, match="a regression run has no macro_f1"):
        from trainlab.data.kinds.tasks import REGRESSION
        from trainlab.engine.checkpoint import best_checkpoint

        best_checkpoint("val_macro_f1", True, REGRESSION)
