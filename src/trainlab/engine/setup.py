"""What a run needs before its first step, decided in one place from (config, model, data).

``setup_eval`` decides how a model is scored: device, precision, input transform, loss and the
evaluation batches. ``setup_run`` adds what training needs (shuffled batches, optimizer,
torchrun's wrapping) on top of it. Training and ``trainlab eval`` both call ``setup_eval``, so
the same checkpoint is scored with the same arithmetic everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from trainlab.config import TrainConfig
from trainlab.data.augment import Chain
from trainlab.data.batches import Batches, InputTransform
from trainlab.data.dataset import Dataset
from trainlab.data.kinds import Task
from trainlab.data.mix import Mix
from trainlab.engine.device import autocast_dtype, resolve_device
from trainlab.engine.distributed import Dist, wrap
from trainlab.engine.imbalance import parse_class_weights, sample_weights
from trainlab.engine.loop import LossFn, loss_function
from trainlab.engine.optim import SGD, build_optimizer
from trainlab.errors import ConfigError
from trainlab.models import record_of
from trainlab.models.tta import scoring_model


def has_convs(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def amp_policy(amp: str, model: nn.Module, task: Task, device: torch.device) -> torch.dtype | None:
    """The autocast dtype a run uses. ``auto`` picks bf16 only where it was measured to keep
    accuracy (a task family that allows it, a model with convs, native-bf16 hardware);
    regression targets and wide linear layers need float32's mantissa."""
    if amp == "auto" and not (task.bf16_auto and has_convs(model)):
        amp = "off"
    return autocast_dtype(amp, device)


def amp_warning(amp_dtype: torch.dtype | None, device: torch.device) -> str | None:
    """What to tell someone who asked for bf16 on a CPU that only emulates it."""
    from trainlab.engine.device import cpu_has_native_bf16

    if amp_dtype is None or device.type != "cpu" or cpu_has_native_bf16():
        return None
    return (
        "warning: --amp bf16 on a CPU without native bf16 (AVX512-BF16 or AMX): it is emulated, "
        "usually slower than float32 and no more accurate; --amp auto uses float32 here."
    )


def input_transform(model: nn.Module, data: Dataset, cfg: TrainConfig) -> InputTransform:
    """The per-batch preprocessing the model needs for this data, as the config asks."""
    return data.kind_entry.input_transform(
        data,
        record_of(model) or {},
        (cfg.norm_mean, cfg.norm_std),
        channels_last=cfg.channels_last and has_convs(model),
    )


def loss_kind(cfg: TrainConfig, model: nn.Module, task: Task) -> str:
    """The loss's name: the config's, or with ``auto`` the one the model's output calls for."""
    if cfg.loss != "auto":
        if (cfg.loss == "bce") != task.multi_label:
            raise ConfigError(
                f"--loss {cfg.loss}: a multi-label run scores each label by a sigmoid with "
                "binary cross-entropy (bce), and only a multi-label run does; drop --loss (auto)."
            )
        if cfg.loss not in task.losses:
            raise ConfigError(
                f"--loss {cfg.loss} does not fit a {task.name} task; use one of "
                f"{', '.join(task.losses)}, or auto."
            )
        return cfg.loss
    return task.default_loss((record_of(model) or {}).get("output", "logits"))


DEFAULT_LABEL_SMOOTHING = 0.1  # measured: benchmarks/results/log.json, "a one-epoch default"


def label_smoothing_for(cfg: TrainConfig, kind: str) -> float:
    """The config's label smoothing, or by default 0.1 for cross-entropy and 0 otherwise."""
    if cfg.label_smoothing is not None:
        return cfg.label_smoothing
    return DEFAULT_LABEL_SMOOTHING if kind == "cross-entropy" else 0.0


def eval_splits(
    data: Dataset, cfg: TrainConfig, device, transform, dist: Dist | None = None
) -> dict[str, Batches]:
    """Validation (when held out) and test batches, in the order they are evaluated; with
    ``dist``, this rank's contiguous, unpadded shard of each."""
    pairs = {"val": (data.val_x, data.val_y)} if data.val_x is not None else {}
    pairs["test"] = (data.test_x, data.test_y)
    splits = {}
    for name, (x, y) in pairs.items():
        part = dist.shard(len(y)) if dist is not None else slice(None)
        splits[name] = Batches(
            x[part], y[part], cfg.eval_batch_size, device=device, transform=transform
        )
    return splits


def class_weights(cfg: TrainConfig, data: Dataset) -> torch.Tensor | None:
    """--class-weights: none, balanced (n / (K · n_c), as scikit-learn's), NAME=W pairs or
    @FILE (``engine.imbalance.parse_class_weights``); for a multi-label run, balanced gives
    each label's positive weight (its negatives over its positives)."""
    if cfg.class_weights == "none":
        return None
    if not data.kind_entry.task.has_classes:
        raise ConfigError(
            f"--class-weights weighs classes; dataset '{data.name}' is {data.task}. Drop it."
        )
    if data.kind_entry.task.multi_label:  # BCE's pos_weight: negatives / positives
        if cfg.class_weights != "balanced":
            raise ConfigError(
                f"--class-weights {cfg.class_weights}: a multi-label run takes balanced (each "
                "label's positive weight, its negatives over its positives), not explicit weights."
            )
        positives = data.train_y.sum(0).double()
        return ((len(data.train_y) - positives) / positives.clamp(min=1)).float()
    return parse_class_weights(cfg.class_weights, data.classes, data.train_y)


def run_loss(cfg: TrainConfig, model: nn.Module, task: Task, weight=None) -> LossFn:
    """The loss the config asks for: its kind, label smoothing, focal gamma, class weights."""
    kind = loss_kind(cfg, model, task)
    return loss_function(kind, label_smoothing_for(cfg, kind), weight, cfg.focal_gamma)


def _mix(cfg: TrainConfig, data: Dataset) -> Mix | None:
    """--mixup/--cutmix, where the data allows them."""
    if not (cfg.mixup or cfg.cutmix):
        return None
    kind = data.kind_entry
    if not kind.task.has_classes:
        raise ConfigError(
            f"--mixup/--cutmix mix class targets; dataset '{data.name}' is {kind.task.name}. "
            "Drop them."
        )
    if not kind.images:
        raise ConfigError(
            f"--mixup/--cutmix mix images; dataset '{data.name}' holds {kind.summary}. Drop them."
        )
    return Mix(cfg.mixup, cfg.cutmix)


def _train_loss(cfg: TrainConfig, model: nn.Module, data: Dataset, scoring: LossFn) -> LossFn:
    weight = class_weights(cfg, data)
    if weight is None:
        return scoring
    return run_loss(cfg, model, data.kind_entry.task, weight)


def train_batches(cfg: TrainConfig, data: Dataset, device, transform, dist: Dist) -> Batches:
    """The training batches: each epoch a seeded permutation, or with --sampler balanced a
    seeded draw with inverse class frequency (both functions of (seed, epoch) only)."""
    weights = None
    if cfg.sampler == "balanced":
        if not data.kind_entry.task.has_classes:
            raise ConfigError(
                f"--sampler balanced draws classes equally often; dataset '{data.name}' is "
                f"{data.task}, without classes. Drop the flag."
            )
        weights = sample_weights(data.train_y, data.num_classes)
    return Batches(
        data.train_x,
        data.train_y,
        cfg.batch_size,
        shuffle=True,
        seed=cfg.seed,
        drop_last=cfg.drop_last,
        device=device,
        transform=transform,
        shard=(dist.rank, dist.world),
        sample_weights=weights,
    )


@dataclass
class EvalSetup:
    """How a model is scored on a dataset: the same for training's epochs and `trainlab eval`."""

    device: torch.device
    amp_dtype: torch.dtype | None
    transform: InputTransform  # evaluation (and the checkpoint's record)
    loss_fn: LossFn
    splits: dict[str, Batches]  # "val" (if held out) and "test", whole
    # what scores them: the model, flip-averaged (--tta), or its head (cached features)
    scorer: nn.Module
    threshold: float | None = None  # multi-label: --threshold, else tuned on validation


def setup_eval(
    cfg: TrainConfig,
    model: nn.Module,
    data: Dataset,
    device: torch.device,
    transform: InputTransform | None = None,
) -> EvalSetup:
    """Place the model, choose its input transform (or use a checkpoint's), precision and loss.

    Args:
        transform: the transform a checkpoint recorded; None decides it from the config.
    """
    data.kind_entry.check_tta(cfg.tta, data.name)
    if cfg.threshold is not None and not data.kind_entry.task.multi_label:
        raise ConfigError(
            f"--threshold sets the multi-label thresholds; dataset '{data.name}' is "
            f"{data.task}. Drop it (or read a labels CSV with --multi-label)."
        )
    model.to(device)
    transform = transform or input_transform(model, data, cfg)
    if transform.channels_last:
        model.to(memory_format=torch.channels_last)
    task = data.kind_entry.task
    return EvalSetup(
        device=device,
        amp_dtype=amp_policy(cfg.amp, model, task, device),
        transform=transform,
        loss_fn=run_loss(cfg, model, task),
        splits=eval_splits(data, cfg, device, transform),
        scorer=scoring_model(model, cfg.tta, (record_of(model) or {}).get("output", "logits")),
        threshold=cfg.threshold,
    )


@dataclass
class RunSetup(EvalSetup):
    """Everything the epoch loop uses, made once per fit."""

    train: Batches = None  # shuffled per (seed, epoch), augmented if asked
    optimizer: torch.optim.Optimizer | SGD = None  # SGD: engine.optim's, without torch._dynamo
    dist: Dist = None  # this process's place in a torchrun job (Dist(): a single process)
    train_model: nn.Module = None  # the model, or DistributedDataParallel around it
    train_loss_fn: LossFn = None  # the loss steps take (class weights apply here only)
    shards: dict[str, Batches] = None  # this rank's part of each split (the splits on one process)

    @property
    def steps(self) -> int:
        return len(self.train)


def setup_run(
    cfg: TrainConfig, model: nn.Module, data: Dataset, dist: Dist | None = None
) -> RunSetup:
    """``setup_eval``, then seed, build the shuffled batches and the optimizer; under torchrun,
    shard the batches and wrap the model in DistributedDataParallel."""
    dist = dist or Dist()
    # dropout and augmentation draws (a resume restores its own); each rank draws its own
    torch.manual_seed(cfg.seed + 1_000_003 * dist.rank)
    scoring = setup_eval(cfg, model, data, dist.device(resolve_device(cfg.device)))
    transform = scoring.transform
    augment = None
    if cfg.augment != "none":  # the kind's choice of operations, at the asked strength
        augment = data.kind_entry.augmentation(data.input_shape[1:], data.name, cfg.augment)
    mix = _mix(cfg, data)
    if mix is not None:
        augment = Chain(augment, mix) if augment else mix
    train_transform = transform.with_augment(augment) if augment else transform
    train = train_batches(cfg, data, scoring.device, train_transform, dist)
    if len(train) == 0:
        raise ConfigError(
            f"no training batches: {train.num_samples} samples with --batch-size "
            f"{cfg.batch_size} and --drop-last. Lower the batch size or keep the last batch."
        )
    if cfg.sync_bn and not dist.launched:
        raise ConfigError(
            "--sync-bn synchronises batch norm across the processes of a torchrun job; this is "
            "a single process. Start it with torchrun --nproc-per-node N, or drop the flag."
        )
    train_loss = _train_loss(cfg, model, data, scoring.loss_fn)
    shards = scoring.splits
    if dist.world > 1:
        shards = eval_splits(data, cfg, scoring.device, transform, dist)
    return RunSetup(
        **scoring.__dict__,
        train_loss_fn=mix.loss(train_loss) if mix else train_loss,
        train=train,
        optimizer=build_optimizer(model, cfg),
        dist=dist,
        train_model=wrap(model, dist, scoring.device, cfg.sync_bn),
        shards=shards,
    )
