import json

import pytest
import torch

from helpers import ctrl_c_after
from trainlab import Trainer, build_model
from trainlab.data import load_dataset
from trainlab.engine.allocator import allocator
from trainlab.engine.checkpoint import load_checkpoint
from trainlab.errors import CheckpointError, TrainingDiverged
from trainlab.resolve import resolve_config


def small_cfg(tmp_path, **kw):
    base = dict(epochs=2, batch_size=64, lr=0.05, runs_dir=str(tmp_path), device="cpu")
    return resolve_config({**base, **kw}).config  # built-in options as plain settings


def fresh_model(data, name="cnn", seed=0, **options):
    torch.manual_seed(seed)
    return build_model(name, data, **options)


@pytest.mark.slow
def test_cnn_learns_on_a_small_subset(tmp_path, mnist_small):
    result = Trainer(small_cfg(tmp_path, epochs=3, lr=0.1)).fit(
        fresh_model(mnist_small), mnist_small
    )
    assert result.status == "completed"
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    assert result.final["test_acc"] > 0.9
    rows = [
        json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    assert rows == result.history
    assert (result.run_dir / "config.toml").read_text().count("[environment]") == 1
    assert {p.name for p in result.run_dir.iterdir()} >= {
        "config.toml",
        "metrics.jsonl",
        "last.pt",
        "best.pt",
    }
    assert not list(result.run_dir.glob("*.tmp"))


def test_config_toml_records_config_and_environment(tmp_path, mnist_small):
    import tomllib

    result = Trainer(small_cfg(tmp_path, epochs=1, seed=5)).fit(
        fresh_model(mnist_small), mnist_small
    )
    written = tomllib.loads((result.run_dir / "config.toml").read_text())
    assert written["config"]["seed"] == 5 and written["config"]["epochs"] == 1
    assert written["environment"]["torch"] == torch.__version__
    assert written["environment"]["allocator"] == allocator()  # e.g. "glibc 2.36, mmap ..."
    # nothing is chosen on the test split: without a validation split best.pt is the last epoch
    assert written["run"]["monitor"] == "epoch"
    assert written["run"]["best_checkpoint_chosen_on"].startswith("the last epoch")
    # what auto became here is recorded next to amp = "auto"
    assert written["config"]["amp"] == "auto"
    from trainlab.engine.device import cpu_has_native_bf16

    resolved = written["resolved"]
    assert {k: resolved[k] for k in ("precision", "device")} == {
        # the cnn under auto: bf16 where the CPU has it natively (AVX512-BF16, AMX), else float32
        "precision": "bf16" if cpu_has_native_bf16() else "float32",
        "device": "cpu",
    }
    assert 1 <= resolved["threads"] <= torch.get_num_threads()  # the free cores' share
    # and how the threads were chosen, how idle ones wait: tests/engine/test_threads.py
    assert set(resolved) == {
        *("precision", "device", "threads", "threads_chosen", "omp_wait_policy")
    }
    assert load_checkpoint(result.best_path)["resolved"] == written["resolved"]


def test_best_is_chosen_on_validation_split(tmp_path, mnist_small):
    data = mnist_small.split_validation(0.2, seed=0)
    result = Trainer(small_cfg(tmp_path, epochs=2)).fit(fresh_model(data), data)
    assert result.best["monitor"] == "val_acc"
    assert "val_acc" in result.final and "test_acc" in result.final
    best = load_checkpoint(result.best_path)
    assert best["best"]["epoch"] == max(result.history, key=lambda r: r["val_acc"])["epoch"]


def _weights(path):
    return load_checkpoint(path)["state_dict"]


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_after_an_epoch_is_exact(tmp_path, mnist_small):
    cfg = small_cfg(tmp_path, epochs=2, run_name="straight")
    straight = Trainer(cfg).fit(fresh_model(mnist_small), mnist_small)
    last_batch = -(-2000 // 64)
    first = Trainer(cfg.replace(run_name="split"), callbacks=[ctrl_c_after(0, last_batch)]).fit(
        fresh_model(mnist_small), mnist_small
    )
    assert first.status == "interrupted" and [r["epoch"] for r in first.history] == [1]
    assert load_checkpoint(first.last_path)["batch"] == 0
    resumed = Trainer(cfg.replace(run_name="split")).fit(
        fresh_model(mnist_small, seed=99), mnist_small, resume=first.run_dir
    )
    assert resumed.run_dir == first.run_dir and [r["epoch"] for r in resumed.history] == [1, 2]
    _assert_same_weights(_weights(straight.last_path), _weights(resumed.last_path))
    assert resumed.final["test_loss"] == straight.final["test_loss"]


def test_ctrl_c_mid_epoch_saves_and_resumes_exactly(tmp_path, mnist_small):
    # augment on: its random angles and shifts must replay identically after the resume
    cfg = small_cfg(tmp_path, epochs=2, run_name="straight", model="mlp", hidden=[64], augment=True)
    data = mnist_small
    straight = Trainer(cfg).fit(fresh_model(data, "mlp", hidden=[64]), data)
    cut = Trainer(cfg.replace(run_name="cut"), callbacks=[ctrl_c_after(1, 7)]).fit(
        fresh_model(data, "mlp", hidden=[64]), data
    )
    assert cut.status == "interrupted"
    saved = load_checkpoint(cut.last_path)
    assert (saved["epoch"], saved["batch"]) == (1, 7)
    resumed = Trainer(cfg.replace(run_name="cut")).fit(
        fresh_model(data, "mlp", seed=3, hidden=[64]), data, resume=cut.run_dir
    )
    assert resumed.status == "completed"
    _assert_same_weights(_weights(straight.last_path), _weights(resumed.last_path))
    assert resumed.final["train_loss"] == pytest.approx(straight.final["train_loss"], rel=1e-9)


@pytest.mark.slow
def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path, mnist_small):
    cfg = small_cfg(tmp_path, epochs=1, model="mlp", schedule="constant")
    first = Trainer(cfg).fit(fresh_model(mnist_small, "mlp"), mnist_small)
    before = first.last_path.read_bytes()
    with pytest.raises(TrainingDiverged, match="diverged in epoch 2.*last good checkpoint"):
        Trainer(cfg.replace(epochs=2, lr=1e6)).fit(
            fresh_model(mnist_small, "mlp"), mnist_small, resume=first.run_dir
        )
    assert first.last_path.read_bytes() == before
    assert len((first.run_dir / "metrics.jsonl").read_text().splitlines()) == 1


def test_resume_with_another_model_is_refused(tmp_path, mnist_small):
    first = Trainer(small_cfg(tmp_path, epochs=1)).fit(fresh_model(mnist_small), mnist_small)
    with pytest.raises(CheckpointError, match="trained with model cnn .*; this fit has model mlp"):
        Trainer(small_cfg(tmp_path, epochs=2, model="mlp")).fit(
            fresh_model(mnist_small, "mlp"), mnist_small, resume=first.run_dir
        )


def test_linear_regression_learns_w_and_b(tmp_path):
    data = load_dataset("linear", samples=1000, seed=0)
    cfg = small_cfg(
        tmp_path,
        model="linreg",
        epochs=3,
        batch_size=10,
        lr=0.03,
        optimizer="sgd",
        momentum=0.0,
        weight_decay=0.0,
        schedule="constant",
    )
    result = Trainer(cfg).fit(fresh_model(data, "linreg"), data)
    assert all(abs(e) < 0.01 for e in result.final["w_error"])
    assert abs(result.final["b_error"]) < 0.01
    assert result.final["test_loss"] < 0.001  # MSE near the noise variance 1e-4
