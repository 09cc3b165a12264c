"""--model auto: the frozen backbone for few images, a network from scratch for many small ones,
fine-tuning for many large ones, what fits in a budget; said and recorded with the run."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib

import numpy as np
import pytest
import torch

from trainlab.auto import choose
from trainlab.data import Dataset, load_dataset
from trainlab.errors import ConfigError

CPU = torch.device("cpu")


def test_few_images_per_class_get_the_frozen_backbone(mnist):
    few = mnist.subset(100, 100, seed=0)  # 10 per class
    choice = choose(few, None, CPU)
    assert choice.settings["model"] == "efficientnet-lite1"
    assert choice.settings["freeze_features"] and choice.settings["pretrained"]
    assert choice.reason.startswith("10 images per class: frozen efficientnet-lite1")
    assert set(choice.speeds) == {"features", "scratch"} and min(choice.speeds.values()) > 0


def test_many_small_images_train_from_scratch_unless_the_budget_is_too_short(mnist):
    many = mnist.subset(2000, 100, seed=0)  # 200 per class, 28 px
    choice = choose(many, None, CPU)
    assert choice.settings["model"] == "resnet-small", choice.reason
    assert "200 images per class at 28 px" in choice.reason
    # a budget too short for either: the one that stops in time, said so
    short = choose(many, 0.01, CPU)
    assert short.settings["model"] == "resnet-small"
    assert "neither" in short.reason and "fewer epochs" in short.reason


def _photos(n_per_class: int) -> Dataset:
    """Crops of scikit-image's photos, 96 px: one class per photo."""
    import skimage.data

    rng = np.random.default_rng(0)
    xs, ys = [], []
    for label, name in enumerate(("chelsea", "coffee", "astronaut", "rocket")):
        photo = getattr(skimage.data, name)()
        for _ in range(n_per_class):
            top = rng.integers(0, photo.shape[0] - 96)
            left = rng.integers(0, photo.shape[1] - 96)
            xs.append(photo[top : top + 96, left : left + 96].transpose(2, 0, 1))
            ys.append(label)
    x, y = torch.from_numpy(np.stack(xs)), torch.tensor(ys)
    return Dataset(
        "photos", x, y, x[:8], y[:8], ["cat", "coffee", "person", "rocket"], kind="images"
    )


def test_many_large_images_fine_tune_when_a_few_epochs_fit():
    photos = _photos(40)
    choice = choose(photos, None, CPU)
    assert choice.settings["model"] == "efficientnet-lite0", choice.reason
    assert choice.settings["freeze_features"] is False and "fine-tuned" in choice.reason
    hurried = choose(photos, 0.01, CPU)  # no epoch of fine-tuning fits: frozen
    assert hurried.settings["freeze_features"] is True and "fine-tuning" in hurried.reason


def test_a_table_is_refused_with_what_to_do():
    table = load_dataset("random", samples=100, features=10, num_classes=2)
    with pytest.raises(ConfigError, match="image classifiers.*Leave --model out"):
        choose(table, None, CPU)


def _train(tmp_path, mnist_root, *flags):
    command = [sys.executable, "-m", "trainlab", "train", "--model", "auto", "--subset", "1000"]
    command += ["--test-subset", "200", "--runs-dir", str(tmp_path), *flags]
    env = {**os.environ, "TRAINLAB_DATA": str(mnist_root)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    (run_dir,) = [p for p in tmp_path.iterdir() if p.name.endswith(flags[-1])]
    return done, tomllib.loads((run_dir / "config.toml").read_text()), run_dir


def test_the_command_says_and_records_its_choice(tmp_path, mnist_root):
    done, record, run_dir = _train(tmp_path, mnist_root, "--epochs", "2", "--run-name", "a")
    assert "model auto: 100 images per class at 28 px: resnet-small from scratch" in done.stderr
    assert record["config"]["model"] == "resnet-small"
    assert record["config"]["epochs"] == 2  # what the command chose stays
    assert record["notes"]["model"].startswith("--model auto: 100 images per class")
    assert "measured here: features" in record["notes"]["model"]
    assert (run_dir / "best.pt").exists()
    # in a budget: what fits on this machine now (the choice depends on its speed), said,
    # recorded, and the run's epochs are the budget's
    done, record, run_dir = _train(tmp_path, mnist_root, "--budget", "30s", "--run-name", "b")
    assert "model auto: 100 images per class" in done.stderr
    assert record["notes"]["model"].startswith("--model auto: 100 images per class")
    assert record["config"]["epochs"] <= record["budget"]["epochs"]
    assert (run_dir / "best.pt").exists()
