"""What the CLI does, as functions the Python API shares: train from a config, evaluate.

Example:
    >>> from trainlab.workflow import train, evaluate_checkpoint, resumed_config
    >>> result = train(TrainConfig(epochs=1, subset=2000))
    >>> report = evaluate_checkpoint(result.best_path)
    >>> more = train(resumed_config(result.run_dir, epochs=2))     # the plan: read once
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainlab.build import Started, build, cut_data, load_data, make_model, start
from trainlab.config import TrainConfig
from trainlab.data import Batches, Dataset, InputTransform
from trainlab.engine.callbacks import Callback, FitResult
from trainlab.engine.checkpoint import recorded_amp
from trainlab.engine.device import resolve_device
from trainlab.engine.distributed import Dist
from trainlab.engine.imbalance import class_counts
from trainlab.engine.loading import load_model
from trainlab.engine.loop import evaluate, predict
from trainlab.engine.metrics import per_class
from trainlab.engine.multilabel import recorded_thresholds
from trainlab.engine.setup import setup_eval
from trainlab.errors import CheckpointError, ConfigError
from trainlab.resolve import Plan, plan_run, settings_of
from trainlab.trainer import Trainer


def prepare_data(cfg: TrainConfig) -> Dataset:
    """The dataset a config describes, with its subsets and validation split (what training,
    resuming and ``trainlab eval`` load)."""
    return load_data(Started(Plan(cfg, {}, chosen=frozenset(cfg.to_dict())), Dist()))


def build_configured_model(
    cfg: TrainConfig, data: Dataset, *, resuming: bool = False, trust_code: bool = True
) -> torch.nn.Module:
    """The model a config describes (``trainlab.build.make_model``), outside a run."""
    checkpoint = {} if resuming else None
    started = Started(Plan(cfg, {}, checkpoint=checkpoint), Dist())
    return make_model(started, data, trust_code=trust_code)


def resumed_config(resume: str | Path, **changes: Any) -> Plan:
    """The plan of resuming ``resume`` with ``changes`` on top (``plan.config`` is its config)."""
    return plan_run(changes, resume=resume, source=str(resume))


def train(
    plan: Plan | TrainConfig,
    resume: str | Path | None = None,
    callbacks: list[Callback] | None = None,
    *,
    trust_code: bool = False,
) -> FitResult:
    """``trainlab train``: plan, build the data and the model from the config, and fit.

    Args:
        plan: ``plan_run``'s plan (its checkpoint is the one read), or a config used as given
            (then ``resume`` names the run to continue).
        trust_code: on resume, import the run's model code if it is the user's own.
    """
    if isinstance(plan, TrainConfig):
        config = plan
        plan = Plan(config, {}, chosen=frozenset(config.to_dict()))
        if resume is not None:
            plan = plan_run(settings_of(config), resume=resume, source=str(resume))
    started = start(plan)
    data = load_data(started)
    model = make_model(started, data, trust_code=trust_code)
    return Trainer.of_run(started.config, callbacks).run(build(started, model, data))


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
    train_counts: list[int] = field(default_factory=list)  # beside the recall: is a class rare?
    # multi-label: micro/macro F1, mAP, subset accuracy, at the recorded thresholds
    scores: dict[str, float] = field(default_factory=dict)
    thresholds: list[float] | None = None
    r2: float | None = None  # regression: 1 - MSE / the targets' variance on this split

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
    data: Dataset | None = None,
    model: nn.Module | None = None,
):
    """Evaluate a checkpoint as training did: same data cut, preprocessing, loss and precision.

    Args:
        split: "test", "val" (the run's validation split) or "train".
        data_dir: the data root, if not the one the run used.
        batch_size: evaluation batch size (default: the run's ``eval_batch_size``).
        whole_split: the whole split instead of the run's ``test_subset``.
        trust_code: import the model's code if it is the user's own (``--trust-code``).
        amp: mixed precision to score with, if not the one the run recorded (``off``:
            float32, as an exported model computes).
        data: the dataset, for a run trained from Python on a ``Dataset`` of your own (the
            registry's datasets are loaded by name); it is cut as the run was.
        model: an untrained instance of the run's model, for a model trainlab cannot rebuild
            from the checkpoint (an ``nn.Sequential`` built in code); the weights are loaded
            into a copy of it.

    Returns:
        An ``EvalReport`` (and, with ``return_predictions``, the outputs and targets).
    """
    model, ckpt = load_model(checkpoint, trust_code=trust_code, model=model)
    cfg = TrainConfig.from_dict(ckpt["config"], source=ckpt["path"])
    if data_dir is not None:
        cfg = cfg.replace(data_dir=data_dir)
    if whole_split:
        cfg = cfg.replace(test_subset=0)
    cfg = cfg.replace(amp=amp if amp is not None else recorded_amp(ckpt))
    data = _data_of(cfg, ckpt, data)
    if list(data.classes) != list(ckpt["data"]["classes"]):
        raise CheckpointError(f"{ckpt['path']}: its classes differ from dataset '{data.name}''s")
    transform = InputTransform.from_dict(ckpt["data"]["transform"])
    scoring = setup_eval(cfg, model, data, resolve_device(device), transform)
    if split == "val" and data.val_x is None:
        raise CheckpointError(
            f"{ckpt['path']}: this run has no validation split (it trained without "
            "--val-split), so there is nothing to score as 'val'. Use --split test or train."
        )
    x, y = getattr(data, f"{split}_x"), getattr(data, f"{split}_y")
    batches = Batches(
        x, y, batch_size or cfg.eval_batch_size, device=scoring.device, transform=scoring.transform
    )
    amp_dtype = scoring.amp_dtype
    scorer = scoring.scorer  # the model, flip-averaged if the run used --tta flip
    task = data.kind_entry.task
    thresholds = recorded_thresholds(ckpt) if task.multi_label else None
    metrics = evaluate(scorer, batches, scoring.loss_fn, data.num_classes, amp_dtype,
                       multi_label=task.multi_label, thresholds=thresholds)  # fmt: skip
    single = task.has_classes and not task.multi_label
    train_counts = class_counts(data.train_y, data.num_classes).tolist() if single else []
    report = EvalReport(ckpt["path"], split, metrics.loss, metrics.accuracy, metrics.n,
                        list(data.classes), metrics.confusion.tolist(),
                        metrics.per_label or (per_class(metrics.confusion)
                                              if task.has_classes else {}),
                        train_counts, metrics.scores, thresholds,
                        r2=None if task.has_classes else r_squared(metrics.loss, y))  # fmt: skip
    if save_predictions and task.has_classes:
        from trainlab.engine.predictions import write_predictions

        path = Path(ckpt["path"])
        write_predictions(
            path.parent / "predictions.npz", scorer, batches, x, data.classes, path.name, amp_dtype,
            thresholds,
        )  # fmt: skip
    if return_predictions:
        return report, predict(scorer, batches, amp_dtype)
    return report


def calibrate_checkpoint(
    checkpoint: str | Path,
    *,
    data_dir: str | None = None,
    device: str = "auto",
    trust_code: bool = False,
    data: Dataset | None = None,
    reject_default: bool | None = None,
) -> dict[str, Any]:
    """Fit the temperature of a classifier run on its validation split, measure the expected
    calibration error on its test split before and after, and record both in the checkpoint
    and config.toml (``trainlab.engine.calibration``). ``reject_default``: make "none of
    these" the run's default for predict and serve (or not; None keeps what it had). Returns
    the record."""
    from trainlab.engine.calibration import calibration_record, fit_rejection, record_calibration

    options = dict(data_dir=data_dir, device=device, trust_code=trust_code, data=data)
    try:
        report, val = evaluate_checkpoint(
            checkpoint, split="val", return_predictions=True, **options
        )
    except CheckpointError as e:
        if "no validation split" not in str(e):
            raise
        raise CheckpointError(
            f"{checkpoint}: calibration fits its temperature on a validation split, and this "
            "run trained without one (the test split must stay unseen to measure it). Train "
            "with --val-split 0.1."
        ) from None
    from trainlab.data.kinds import get_kind
    from trainlab.engine.calibration import label_calibration_record
    from trainlab.engine.checkpoint import load_checkpoint

    ckpt = load_checkpoint(report.checkpoint)
    kind = get_kind(ckpt["data"].get("kind", "images"))
    if report.accuracy is None and not kind.task.multi_label:
        raise CheckpointError(f"{checkpoint}: a regression run has no probabilities to calibrate.")
    _, test = evaluate_checkpoint(checkpoint, split="test", return_predictions=True, **options)
    if reject_default is None:  # what the run had
        reject_default = (ckpt.get("calibration") or {}).get("reject_default")
    if kind.task.multi_label:  # one temperature per label, as at the end of its run
        record = label_calibration_record(val, test, ckpt["data"]["classes"])
        record_calibration(report.checkpoint, record)
        return record
    record = calibration_record(val, test)
    record_calibration(report.checkpoint, record)
    if kind.page is not None:  # people's inputs
        cfg = TrainConfig.from_dict(ckpt["config"], source=ckpt["path"])
        val_x = _data_of(cfg, ckpt, data).val_x
        record |= fit_rejection(report.checkpoint, val_x)
    if reject_default is not None:
        if reject_default and "reject_threshold" not in record:
            raise CheckpointError(
                f"{checkpoint}: --reject-default on needs a threshold, and this model has none "
                "(its outputs are log-probabilities, or it takes no images)."
            )
        record["reject_default"] = bool(reject_default)
    record_calibration(report.checkpoint, record)
    return record


def r_squared(mse: float, targets: torch.Tensor) -> float | None:
    """The coefficient of determination from a split's MSE and its targets (None without
    spread): 1 - the sum of squared errors over the sum of squares about the mean."""
    y = targets.double().reshape(len(targets), -1)
    spread = float(((y - y.mean(0)) ** 2).mean())
    return None if spread <= 0 else 1.0 - mse / spread


def _data_of(cfg: TrainConfig, ckpt: dict[str, Any], data: Dataset | None) -> Dataset:
    """The run's data, cut as the run cut it: loaded by name, or the dataset given."""
    started = Started(Plan(cfg, {}, chosen=frozenset(cfg.to_dict())), Dist())  # as it ran
    if data is not None:
        return cut_data(started, data)
    from trainlab.data.registry import get_dataset_spec

    try:
        get_dataset_spec(cfg.dataset)
    except ConfigError:
        raise CheckpointError(
            f"{ckpt['path']}: its run trained on dataset '{cfg.dataset}', which is not "
            "registered (a Dataset made in Python), so trainlab cannot load that data by name. "
            "Evaluate it from Python with trainlab.workflow.evaluate_checkpoint(path, "
            "data=your_dataset), or register the dataset (trainlab.data.registry."
            "register_dataset, or a plugin's entry point) so the CLI finds it."
        ) from None
    return load_data(started)
