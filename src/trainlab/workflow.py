"""What the CLI does, as functions the Python API shares: train from a config, evaluate.

Example:
    >>> from trainlab.workflow import train, evaluate_checkpoint, resumed_config
    >>> result = train(TrainConfig(epochs=1, subset=2000))
    >>> report = evaluate_checkpoint(result.best_path)
    >>> more = train(resumed_config(result.run_dir, epochs=2))     # the plan: read once
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainlab.config import TrainConfig
from trainlab.data import Batches, Dataset, InputTransform, load_dataset
from trainlab.engine.allocator import keep_freed_memory
from trainlab.engine.callbacks import Callback, FitResult
from trainlab.engine.device import resolve_device
from trainlab.engine.distributed import Dist
from trainlab.engine.loop import evaluate, predict
from trainlab.engine.metrics import per_class
from trainlab.engine.setup import setup_eval
from trainlab.errors import CheckpointError
from trainlab.models import build_model, record_of, set_record
from trainlab.models.loading import load_model
from trainlab.resolve import Plan, plan_run
from trainlab.trainer import Trainer, given_settings, restarted_run


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def build_configured_model(
    cfg: TrainConfig,
    data: Dataset,
    log=_log,
    *,
    resuming: bool = False,
    trust_code: bool = True,
) -> torch.nn.Module:
    """The model a config describes: built (seeded), pretrained or local weights, freezing.

    On a resume the checkpoint holds the weights, so pretrained and local weight files are not
    read again (an offline resume must not need them); they stay in the record. A model of
    the user's own code is imported only with ``trust_code`` (a resume must say so).
    """
    from trainlab.models.pretrained import freeze_features, load_pretrained, load_weights_file

    torch.manual_seed(cfg.seed)
    model = build_model(
        cfg.model, data, init=cfg.init, trust_code=trust_code, log=log, **cfg.model_options
    )
    source = None
    if cfg.pretrained and not resuming:
        loaded, source = load_pretrained(model, cfg.model, log)  # and where they came from
        log(f"loaded ImageNet weights for {cfg.model}: {len(loaded)} tensors (the head is new)")
    if cfg.weights and not resuming:
        loaded = load_weights_file(model, cfg.weights)
        log(f"loaded {len(loaded)} tensors from {cfg.weights}")
    if cfg.freeze_features:
        trainable = freeze_features(model)
        log(f"features frozen: training the head only ({trainable:,} parameters)")
    set_record(
        model,
        {
            **record_of(model),
            "pretrained": cfg.pretrained,
            "weights": cfg.weights,
            "freeze_features": cfg.freeze_features,
            **({"weights_source": source} if source else {}),
        },
    )
    return model


def prepare_data(cfg: TrainConfig, log=_log) -> Dataset:
    """The dataset a config describes, with its subsets and validation split: the one loader
    behind training, resuming and ``trainlab eval``."""
    data = load_dataset(
        cfg.dataset, cfg.data_dir, seed=cfg.effective_data_seed, log=log, **cfg.data_options
    )
    return data.cut(
        cfg.subset, cfg.test_subset, cfg.val_split, seed=cfg.effective_data_seed, fold=cfg.cv_fold
    )


def resumed_config(resume: str | Path, **changes: Any) -> Plan:
    """The plan of resuming ``resume`` with ``changes`` on top (``plan.config`` is its config)."""
    return plan_run(changes, resume=resume, source=str(resume))


def train(
    plan: Plan | TrainConfig,
    resume: str | Path | None = None,
    callbacks: list[Callback] | None = None,
    log=_log,
    *,
    trust_code: bool = False,
) -> FitResult:
    """Load data, build the model (seeded), and fit it: ``trainlab train``.

    Args:
        plan: ``plan_run``'s plan (its checkpoint is the one read), or a config used as given
            (then ``resume`` names the run to continue).
        trust_code: on resume, import the run's model code if it is the user's own.
    """
    keep_freed_memory()  # see engine/allocator.py; Trainer.fit does it for the Python API
    if isinstance(plan, TrainConfig):
        plan = (
            plan_run(given_settings(plan), resume=resume, source=str(resume))
            if resume is not None
            else Plan(plan, {})
        )
    dist = Dist.from_env()  # under torchrun: join the job before touching the data
    dist.join(dist.device(resolve_device(plan.config.device)))  # an unusable device fails here
    if dist.restart and plan.checkpoint is None:  # torchrun restarted the job: continue its run
        found = restarted_run(plan.config.runs_dir, dist)
        if found is not None:
            plan = plan_run(given_settings(plan.config), resume=found, source=str(found))
    plan.fit_processes(dist.world, log if dist.main else None)
    cfg = plan.config
    with dist.node_first():  # one process per machine fetches and verifies
        data = prepare_data(cfg, log if dist.local_rank == 0 else lambda _line: None)
    resuming = plan.checkpoint is not None
    model = build_configured_model(
        cfg, data, log, resuming=resuming, trust_code=trust_code or not resuming
    )
    return Trainer(cfg, callbacks=callbacks).fit(model, data, resume=plan)


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
    trust_code: bool = False,
    amp: str | None = None,
):
    """Evaluate a checkpoint as training did: same data cut, preprocessing, loss and precision.

    Args:
        split: "test", "val" (the run's validation split) or "train".
        data_dir: the data root, if not the one the run used.
        batch_size: evaluation batch size (default: the run's ``eval_batch_size``).
        whole_split: the whole split instead of the run's ``test_subset``.
        trust_code: import the model's code if it is the user's own (``--trust-code``).
        amp: mixed precision to score with, if not the run's (``off``: float32, as an
            exported model computes).

    Returns:
        An ``EvalReport`` (and, with ``return_predictions``, the outputs and targets).
    """
    model, ckpt = load_model(checkpoint, trust_code=trust_code)
    cfg = TrainConfig.from_dict(ckpt["config"], source=ckpt["path"])
    if data_dir is not None:
        cfg = cfg.replace(data_dir=data_dir)
    if whole_split:
        cfg = cfg.replace(test_subset=0)
    if amp is not None:
        cfg = cfg.replace(amp=amp)
    data = prepare_data(cfg)
    if list(data.classes) != list(ckpt["data"]["classes"]):
        raise CheckpointError(f"{ckpt['path']}: its classes differ from dataset '{data.name}''s")
    transform = InputTransform.from_dict(ckpt["data"]["transform"]) if data.is_image else None
    scoring = setup_eval(cfg, model, data, resolve_device(device), transform)
    if split == "val" and data.val_x is None:
        raise CheckpointError(
            f"{ckpt['path']}: this run has no validation split (it trained without "
            "--val-split), so there is nothing to score as 'val'. Use --split test or train."
        )
    x, y = {
        "test": (data.test_x, data.test_y),
        "train": (data.train_x, data.train_y),
        "val": (data.val_x, data.val_y),
    }[split]
    batches = Batches(
        x, y, batch_size or cfg.eval_batch_size, device=scoring.device, transform=scoring.transform
    )
    amp_dtype = scoring.amp_dtype
    scorer = scoring.scorer  # the model, flip-averaged if the run used --tta flip
    metrics = evaluate(scorer, batches, scoring.loss_fn, data.num_classes, amp_dtype)
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
            path.parent / "predictions.npz", scorer, batches, x, data.classes, path.name, amp_dtype
        )
    if return_predictions:
        return report, predict(scorer, batches, amp_dtype)
    return report
