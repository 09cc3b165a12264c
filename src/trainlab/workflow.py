"""What the CLI does, as functions the Python API shares: train from a config, evaluate.

Example:
    >>> from trainlab.workflow import train, evaluate_checkpoint, resumed_config
    >>> result = train(TrainConfig(epochs=1, subset=2000))
    >>> report = evaluate_checkpoint(result.best_path)
    >>> more = train(resumed_config(result.run_dir, epochs=2).config, resume=result.run_dir)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainlab.config import TrainConfig
from trainlab.data import Batches, Dataset, InputTransform, load_dataset
from trainlab.engine.callbacks import Callback, FitResult
from trainlab.engine.checkpoint import load_checkpoint, load_weights
from trainlab.engine.device import resolve_device
from trainlab.engine.distributed import Dist
from trainlab.engine.loop import evaluate, loss_function, predict
from trainlab.engine.metrics import per_class
from trainlab.engine.setup import amp_policy, label_smoothing_for, loss_kind
from trainlab.errors import CheckpointError
from trainlab.models import build_model
from trainlab.resolve import Resolved, resolve_config
from trainlab.trainer import Trainer, cut_data


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def model_options(cfg: TrainConfig) -> dict[str, Any]:
    if cfg.model == "cnn":
        return {"widths": list(cfg.widths)}
    if cfg.model != "mlp":
        return {}
    return {"hidden": list(cfg.hidden), "log_softmax": cfg.log_softmax}


def build_configured_model(
    cfg: TrainConfig, data: Dataset, log=_log, *, resuming: bool = False
) -> torch.nn.Module:
    """The model a config describes: built (seeded), pretrained or local weights, freezing.

    On a resume the checkpoint holds the weights, so pretrained and local weight files are not
    read again (an offline resume must not need them); they stay in the record.
    """
    from trainlab.models.pretrained import freeze_features, load_pretrained, load_weights_file

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, data, init=cfg.init, **model_options(cfg))
    if cfg.pretrained and not resuming:
        loaded = load_pretrained(model, cfg.model)
        log(f"loaded ImageNet weights for {cfg.model}: {len(loaded)} tensors (the head is new)")
    if cfg.weights and not resuming:
        loaded = load_weights_file(model, cfg.weights)
        log(f"loaded {len(loaded)} tensors from {cfg.weights}")
    if cfg.freeze_features:
        trainable = freeze_features(model)
        log(f"features frozen: training the head only ({trainable:,} parameters)")
    model.trainlab_record.update(
        pretrained=cfg.pretrained, weights=cfg.weights, freeze_features=cfg.freeze_features
    )
    return model


def prepare_data(cfg: TrainConfig, log=_log) -> Dataset:
    """The dataset a config describes, with its subsets and validation split: the one loader
    behind training, resuming and ``trainlab eval``."""
    data = load_dataset(
        cfg.dataset,
        cfg.data_dir,
        samples=cfg.samples,
        features=cfg.features,
        num_classes=cfg.num_classes,
        true_w=cfg.true_w,
        true_b=cfg.true_b,
        noise=cfg.noise,
        seed=cfg.effective_data_seed,
        log=log,
    )
    return cut_data(data, cfg)


def resumed_config(resume: str | Path, **changes: Any) -> Resolved:
    """The config of the run being resumed with ``changes`` on top (``resolve_config``)."""
    checkpoint = load_checkpoint(resume, which="last")
    return resolve_config(changes, saved=checkpoint["config"], source=str(resume))


def train(
    cfg: TrainConfig,
    resume: str | Path | None = None,
    callbacks: list[Callback] | None = None,
    log=_log,
) -> FitResult:
    """Load data, build the model (seeded), and fit it: ``trainlab train``.

    ``cfg`` is used as given; to resume with changes, pass ``resumed_config(run, ...).config``.
    """
    dist = Dist.from_env()  # under torchrun: join the job before touching the data
    dist.join(dist.device(resolve_device(cfg.device)))  # an unusable device fails here
    with dist.node_first():  # one process per machine fetches and verifies
        data = prepare_data(cfg, log if dist.local_rank == 0 else lambda _line: None)
    model = build_configured_model(cfg, data, log, resuming=resume is not None)
    return Trainer(cfg, callbacks=callbacks).fit(model, data, resume=resume)


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
        init=record.get("init", "default"),
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
    batch_size: int | None = None,
    return_predictions: bool = False,
    save_predictions: bool = False,
    whole_split: bool = False,
):
    """Evaluate a checkpoint as training did: same data cut, preprocessing, loss and precision.

    Args:
        split: "test" or "train".
        data_dir: the data root, if not the one the run used.
        batch_size: evaluation batch size (default: the run's ``eval_batch_size``).
        whole_split: the whole split instead of the run's ``test_subset``.

    Returns:
        An ``EvalReport`` (and, with ``return_predictions``, the outputs and targets).
    """
    model, ckpt = load_model(checkpoint)
    cfg = TrainConfig.from_dict(ckpt["config"], source=ckpt["path"])
    if data_dir is not None:
        cfg = cfg.replace(data_dir=data_dir)
    if whole_split:
        cfg = cfg.replace(test_subset=0)
    dev = resolve_device(device)
    data = prepare_data(cfg)
    if list(data.classes) != list(ckpt["data"]["classes"]):
        raise CheckpointError(f"{ckpt['path']}: its classes differ from dataset '{data.name}''s")
    model.to(dev)
    transform = InputTransform()
    if data.is_image:
        transform = InputTransform.from_dict(ckpt["data"]["transform"])
        if transform.channels_last:
            model.to(memory_format=torch.channels_last)
    x, y = (data.test_x, data.test_y) if split == "test" else (data.train_x, data.train_y)
    batches = Batches(x, y, batch_size or cfg.eval_batch_size, device=dev, transform=transform)
    amp_dtype = amp_policy(cfg.amp, model, data.task, dev)
    kind = loss_kind(cfg, model, data.task)
    loss_fn = loss_function(kind, label_smoothing_for(cfg, kind))
    metrics = evaluate(model, batches, loss_fn, data.num_classes, amp_dtype)
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
        from trainlab.engine.predictions import write_predictions

        path = Path(ckpt["path"])
        write_predictions(
            path.parent / "predictions.npz", model, batches, x, data.classes, path.name, amp_dtype
        )
    if return_predictions:
        return report, predict(model, batches, amp_dtype)
    return report
