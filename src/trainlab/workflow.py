"""What the CLI does, as functions the Python API shares: train from a config, evaluate.

Example:
    >>> from trainlab.workflow import train, evaluate_checkpoint
    >>> result = train(TrainConfig(epochs=1, subset=2000))
    >>> report = evaluate_checkpoint(result.best_path)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainlab.config import TrainConfig
from trainlab.data import Batches, Dataset, load_dataset
from trainlab.engine.checkpoint import load_checkpoint, load_weights
from trainlab.engine.device import resolve_device
from trainlab.engine.loop import evaluate, loss_function, predict
from trainlab.engine.metrics import per_class
from trainlab.engine.trainer import Callback, FitResult, Trainer, input_transform, loss_kind
from trainlab.errors import CheckpointError
from trainlab.models import build_model


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def model_options(cfg: TrainConfig) -> dict[str, Any]:
    if cfg.model == "cnn":
        return {"widths": list(cfg.widths)}
    if cfg.model != "mlp":
        return {}
    return {"hidden": list(cfg.hidden), **({"log_softmax": True} if cfg.log_softmax else {})}


def build_configured_model(cfg: TrainConfig, data: Dataset, log=_log) -> torch.nn.Module:
    """The model a config describes: built (seeded), then pretrained/local weights, freezing."""
    from trainlab.models.pretrained import freeze_features, load_pretrained, load_weights_file

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, data, init=cfg.init, **model_options(cfg))
    if cfg.pretrained:
        loaded = load_pretrained(model, cfg.model)
        log(f"loaded ImageNet weights for {cfg.model}: {len(loaded)} tensors (the head is new)")
    if cfg.weights:
        loaded = load_weights_file(model, cfg.weights)
        log(f"loaded {len(loaded)} tensors from {cfg.weights}")
    if cfg.freeze_features:
        trainable = freeze_features(model)
        log(f"features frozen: training the head only ({trainable:,} parameters)")
    return model


def prepare_data(cfg: TrainConfig, log=_log) -> Dataset:
    """Load the configured dataset and apply subset and validation split."""
    data = load_dataset(
        cfg.dataset,
        cfg.data_dir,
        samples=cfg.samples,
        features=cfg.features,
        num_classes=cfg.num_classes,
        true_w=cfg.true_w,
        true_b=cfg.true_b,
        noise=cfg.noise,
        seed=cfg.seed,
        log=log,
    )
    data = data.subset(cfg.subset, cfg.test_subset, seed=cfg.seed)
    return data.split_validation(cfg.val_split, seed=cfg.seed)


def train(
    cfg: TrainConfig, resume: str | Path | None = None, callbacks: list[Callback] | None = None
) -> FitResult:
    """Load data, build the model (seeded), and fit it; the CLI's ``trainlab train``."""
    if resume is not None:
        cfg = resumed_config(resume, cfg)
    data = prepare_data(cfg)
    model = build_configured_model(cfg, data)
    result = Trainer(cfg, callbacks=callbacks).fit(model, data, resume=resume)
    if cfg.sklearn_check and data.task == "classification" and result.history:
        result.extra["sklearn_test_acc"] = sklearn_accuracy(model, data, cfg)
    return result


def sklearn_accuracy(model: torch.nn.Module, data: Dataset, cfg: TrainConfig) -> float:
    """Test accuracy of the trained model scored by scikit-learn's accuracy_score (as seed 002)."""
    from sklearn.metrics import accuracy_score

    device = next(model.parameters()).device
    batches = Batches(
        data.test_x,
        data.test_y,
        cfg.eval_batch_size,
        device=device,
        transform=input_transform(model, data, cfg),
    )
    outputs, targets = predict(model, batches)
    return float(accuracy_score(targets.numpy(), outputs.argmax(1).numpy()))


def resumed_config(
    resume: str | Path, requested: TrainConfig | None = None, changed: dict[str, Any] | None = None
) -> TrainConfig:
    """The config of the run being resumed, with ``changed`` fields applied on top."""
    ckpt_path = Path(resume) / "last.pt" if Path(resume).is_dir() else Path(resume)
    ckpt = load_checkpoint(ckpt_path)
    cfg = TrainConfig.from_dict(ckpt["config"], source=str(ckpt_path))
    if changed:
        if "model" in changed and changed["model"] != cfg.model:
            raise CheckpointError(
                f"{ckpt_path}: the run trained model '{cfg.model}', not '{changed['model']}'. "
                "Resume with the run's own model (drop --model) or start a new run."
            )
        cfg = cfg.replace(**changed)
    return cfg


@dataclass
class EvalReport:
    checkpoint: str
    split: str
    loss: float
    accuracy: float | None
    n: int
    classes: list[str]
    confusion: list[list[int]]
    per_class: dict[str, list[float]]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def load_model(checkpoint: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild a registry model from a checkpoint and load its weights."""
    ckpt = load_checkpoint(checkpoint)
    record = ckpt.get("model") or {}
    if not record.get("name"):
        raise CheckpointError(
            f"{ckpt['path']}: the model was not built from trainlab's registry, so it cannot be "
            "rebuilt from the checkpoint alone. Build it in Python and load ckpt['state_dict']."
        )
    model = build_model(
        record["name"],
        input_shape=tuple(record["input_shape"]),
        outputs=record["outputs"],
        **record.get("options", {}),
    )
    load_weights(model, ckpt["state_dict"], ckpt["path"], record["name"])
    return model, ckpt


def evaluate_checkpoint(
    checkpoint: str | Path,
    *,
    split: str = "test",
    data_dir: str | None = None,
    device: str = "auto",
    batch_size: int = 2000,
    return_predictions: bool = False,
    save_predictions: bool = False,
    whole_split: bool = False,
):
    """Evaluate a checkpoint on its dataset's test split (or "train").

    Returns:
        An ``EvalReport`` (and, with ``return_predictions``, the outputs and targets).
    """
    from trainlab.data import InputTransform

    model, ckpt = load_model(checkpoint)
    cfg = TrainConfig.from_dict(ckpt["config"], source=ckpt["path"])
    if data_dir is not None:
        cfg = cfg.replace(data_dir=data_dir)
    data = load_dataset(
        cfg.dataset,
        cfg.data_dir,
        samples=cfg.samples,
        features=cfg.features,
        num_classes=cfg.num_classes,
        true_w=cfg.true_w,
        true_b=cfg.true_b,
        noise=cfg.noise,
        seed=cfg.seed,
        log=_log,
    )
    if not whole_split:  # the run's own (seeded, stratified) test subset, so figures agree
        data = data.subset(0, cfg.test_subset, seed=cfg.seed)
    if list(data.classes) != list(ckpt["data"]["classes"]):
        raise CheckpointError(f"{ckpt['path']}: its classes differ from dataset '{data.name}''s")
    dev = resolve_device(device)
    model.to(dev)
    x, y = (data.test_x, data.test_y) if split == "test" else (data.train_x, data.train_y)
    saved = ckpt["data"].get("transform") or {}
    transform = (
        InputTransform(
            saved.get("mean", []),
            saved.get("std", []),
            size=tuple(saved["size"]) if saved.get("size") else None,
            channels=saved.get("channels"),
        )
        if data.is_image
        else InputTransform()
    )
    batches = Batches(x, y, batch_size, device=dev, transform=transform)
    loss_fn = loss_function(loss_kind(cfg, model, data), 0.0)
    metrics = evaluate(model, batches, loss_fn, data.num_classes)
    report = EvalReport(
        checkpoint=ckpt["path"],
        split=split,
        loss=metrics.loss,
        accuracy=metrics.accuracy,
        n=metrics.n,
        classes=list(data.classes),
        confusion=metrics.confusion.tolist(),
        per_class=per_class(metrics.confusion) if data.classes else {},
    )
    if save_predictions and data.classes:
        from trainlab.engine.predictions import prediction_arrays
        from trainlab.engine.predictions import save_predictions as save

        arrays = prediction_arrays(model, batches, x, data.classes)
        save(Path(ckpt["path"]).parent / "predictions.npz", arrays, Path(ckpt["path"]).name)
    if return_predictions:
        return report, predict(model, batches)
    return report
