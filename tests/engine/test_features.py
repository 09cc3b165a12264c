"""Features computed once: the head trained from the cache equals the head trained through the
frozen network, and the run says which it did."""

import logging
import tomllib

import pytest
import torch

from trainlab.config import TrainConfig
from trainlab.engine.checkpoint import load_checkpoint
from trainlab.workflow import evaluate_checkpoint, train


def _fit(tmp_path, mnist_root, name, **settings):
    settings = {"epochs": 3, **settings}
    cfg = TrainConfig(
        data_dir=str(mnist_root),
        runs_dir=str(tmp_path),
        run_name=name,
        subset=600,
        test_subset=300,
        val_split=0.2,
        batch_size=50,
        amp="off",
        device="cpu",
        freeze_features=True,
        **settings,
    )
    lines: list[str] = []

    class Keep(logging.Handler):  # what the run said, through the trainlab logger
        def emit(self, record):
            lines.append(record.getMessage())

    logger, keep = logging.getLogger("trainlab"), Keep()
    logger.addHandler(keep)
    level, _ = logger.level, logger.setLevel(logging.INFO)
    try:
        result = train(cfg)
    finally:
        logger.removeHandler(keep)
        logger.setLevel(level)
    return result, lines


@pytest.mark.slow
def test_the_head_from_cached_features_equals_the_head_through_the_frozen_network(
    tmp_path, mnist_root
):
    cached, lines = _fit(tmp_path, mnist_root, "cached")
    said = "\n".join(lines)  # what the run said through its log
    through, _ = _fit(tmp_path, mnist_root, "through", feature_cache=False)
    assert "features computed once" in said and "train 480, val 120, test 300" in said
    recorded = tomllib.loads((cached.run_dir / "config.toml").read_text())
    assert recorded["features"]["cached"] is True and recorded["features"]["counts"]["test"] == 300
    assert "features" not in tomllib.loads((through.run_dir / "config.toml").read_text())

    a = load_checkpoint(cached.run_dir / "last.pt")["state_dict"]
    b = load_checkpoint(through.run_dir / "last.pt")["state_dict"]
    for key in a:  # the same weights up to rounding
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-5), key
    start, head = initial_weights(mnist_root)
    trained = {k for k in a if not torch.equal(a[k], start[k])}
    assert trained and trained <= head, "the head alone trains"
    for x, y in zip(cached.history, through.history, strict=True):
        assert (
            abs(x["val_acc"] - y["val_acc"]) < 1e-9 and abs(x["test_loss"] - y["test_loss"]) < 1e-4
        )
    # the first epoch paid for the features, the later ones only for the head
    assert cached.history[0]["feature_seconds"] > 0
    # the checkpoint is a whole model: eval through the network gives the run's own figure
    report = evaluate_checkpoint(cached.run_dir / "last.pt", data_dir=str(mnist_root))
    assert abs(report.accuracy - cached.history[-1]["test_acc"]) < 1e-9


def initial_weights(mnist_root):
    """The default CNN as the runs built it (seed 0), and its head's parameter names."""
    from trainlab.data import load_dataset
    from trainlab.models import build_model
    from trainlab.models.pretrained import head_of

    data = load_dataset("mnist", mnist_root, sources=("local",))
    torch.manual_seed(0)
    model = build_model("cnn", data)
    head = {id(p) for p in head_of(model).parameters()}
    names = {k for k, p in model.named_parameters() if id(p) in head}
    return model.state_dict(), names


def test_a_model_that_computes_after_its_head_is_not_cached_and_the_run_says_why(
    tmp_path, mnist_root
):
    result, lines = _fit(
        tmp_path, mnist_root, "mlp", model="mlp", model_options={"log_softmax": True}
    )
    said = "\n".join(lines)
    assert "features not cached (the model's output is not its head's" in said
    assert "features" not in tomllib.loads((result.run_dir / "config.toml").read_text())


def test_augmentation_turns_the_cache_off(tmp_path, mnist_root):
    _, lines = _fit(tmp_path, mnist_root, "aug", augment=True, epochs=1)
    assert "features not cached (--augment changes the images every epoch)" in "\n".join(lines)
