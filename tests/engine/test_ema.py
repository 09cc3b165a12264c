"""--ema: the averaged weights are what best.pt holds, eval scores and a resume continues."""

import pytest
import torch

from helpers import ctrl_c_after
from trainlab import Trainer, build_model
from trainlab.engine.checkpoint import load_checkpoint
from trainlab.errors import ConfigError
from trainlab.resolve import resolve_config
from trainlab.workflow import evaluate_checkpoint


def _cfg(tmp_path, **kw):
    base = dict(epochs=2, batch_size=64, lr=0.05, runs_dir=str(tmp_path), device="cpu")
    return resolve_config({**base, **kw}).config


def _model(data, seed=0):
    torch.manual_seed(seed)
    return build_model("cnn", data, widths=[8, 16])


def _averaged(checkpoint):
    """The averaged model's weights and buffers as last.pt holds them (AveragedModel's keys)."""
    state = checkpoint["callbacks"]["ema"]["averaged"]
    return {k.removeprefix("module."): v for k, v in state.items() if k.startswith("module.")}


def test_best_pt_holds_the_average_and_eval_scores_it(tmp_path, mnist_small):
    cfg = _cfg(tmp_path, ema=0.99, val_split=0.1)
    result = Trainer(cfg).fit(_model(mnist_small), mnist_small)
    last, best = load_checkpoint(result.last_path), load_checkpoint(result.run_dir / "best.pt")
    averaged = _averaged(last)
    assert best["epoch"] == 2  # the last epoch was the best here: best.pt and last.pt agree
    # best.pt holds the average, weights and batch-norm statistics alike; last.pt also holds
    # the raw weights, which differ from it, so a resume goes on training them
    assert averaged.keys() == best["state_dict"].keys()
    for k, v in averaged.items():
        assert torch.equal(v, best["state_dict"][k]), k
    raw = last["state_dict"]["0.weight"]
    assert not torch.equal(raw, averaged["0.weight"])
    # eval of best.pt gives the figure the run recorded for the averaged weights
    scored = evaluate_checkpoint(result.run_dir / "best.pt", data=mnist_small, device="cpu")
    assert scored.accuracy == result.final["test_acc"]
    assert scored.loss == pytest.approx(result.final["test_loss"], rel=1e-6)
    assert "ema = 0.99" in (result.run_dir / "config.toml").read_text()


def test_a_resume_mid_epoch_with_strong_augment_keeps_both_weights_exact(tmp_path, mnist_small):
    cfg = _cfg(tmp_path, ema=0.999, augment="strong", mixup=0.2, cutmix=1.0, run_name="straight")
    straight = Trainer(cfg).fit(_model(mnist_small), mnist_small)
    cut = Trainer(cfg.replace(run_name="cut"), callbacks=[ctrl_c_after(1, 5)]).fit(
        _model(mnist_small), mnist_small
    )
    assert cut.status == "interrupted"
    resumed = Trainer(cfg.replace(run_name="cut")).fit(
        _model(mnist_small, seed=7), mnist_small, resume=cut.run_dir
    )
    a, b = load_checkpoint(straight.last_path), load_checkpoint(resumed.last_path)
    for state in ("state_dict",):
        for k in a[state]:
            assert torch.equal(a[state][k], b[state][k]), k
    for k, v in _averaged(a).items():
        assert torch.equal(v, _averaged(b)[k]), k


def test_the_decay_is_checked(tmp_path):
    with pytest.raises(ConfigError, match="ema"):
        _cfg(tmp_path, ema=1.0)
