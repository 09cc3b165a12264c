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
    "samples": 100_000_000,
    "features": 1_000_000,
    "num_classes": 100_000,
    "hidden": 1 << 16,
    "widths": 1 << 14,
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
    "noise": 1e6,
    "true_b": 1e12,
    "true_w": 1e12,
    "norm_mean": 1e6,
    "norm_std": 1e6,
}


def _f(default: Any, help: str, group: str, **kw: Any) -> Any:
    meta = {"help": help, "group": group, **kw}
    if isinstance(default, list | tuple):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Everything that decides what a run computes. Defaults train the fast default CNN on MNIST."""

    # --- data -----------------------------------------------------------------------------
    dataset: str = _f(
        "mnist", "dataset: mnist, fashion-mnist, kmnist, digits, linear, random", "data"
    )
    data_dir: str | None = _f(
        None, "data root (else $TRAINLAB_DATA, else the per-user cache directory)", "data"
    )
    subset: int = _f(0, "train on a stratified subset of this many images (0: all)", "data")
    test_subset: int = _f(0, "evaluate on a stratified subset of the test split (0: all)", "data")
    val_split: float = _f(
        0.0, "hold out this fraction of the training set for validation (stratified)", "data"
    )
    samples: int = _f(1000, "linear/random data: number of samples", "data")
    features: int = _f(10, "random data: features per sample", "data")
    num_classes: int = _f(2, "random data: number of classes", "data")
    true_w: list[float] = _f([2.0, -3.4], "linear data: true weights", "data", metavar="W")
    true_b: float = _f(4.2, "linear data: true bias", "data")
    noise: float = _f(0.01, "linear data: standard deviation of the label noise", "data")
    data_seed: int | None = _f(
        None,
        "seed of the synthetic data, the stratified subsets and the validation split "
        "(default: --seed)",
        "data",
    )
    norm_mean: list[float] = _f(
        [], "images: normalisation mean, one value or one per channel (default: the data's)", "data"
    )
    norm_std: list[float] = _f(
        [], "images: normalisation std, one value or one per channel (default: the data's)", "data"
    )
    # --- model ----------------------------------------------------------------------------
    model: str = _f("cnn", "model name (see `trainlab models`)", "model")
    hidden: list[int] = _f([512, 256], "mlp: hidden layer sizes", "model", metavar="N")
    widths: list[int] = _f([16, 24], "cnn: channels of each conv stage", "model", metavar="N")
    init: str = _f(
        "default", f"weight init: {', '.join(INITS)} (xavier as d2l's train_ch6)", "model"
    )
    log_softmax: bool = _f(
        False, "mlp: end with log-softmax (trained with NLL, as the seed)", "model"
    )
    pretrained: bool = _f(
        False,
        "alexnet: start from torchvision's ImageNet weights (cached under $TORCH_HOME)",
        "model",
    )
    weights: str | None = _f(None, "load a local state_dict (.pt/.pth) before training", "model")
    freeze_features: bool = _f(False, "train the classifier head only (transfer learning)", "model")
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
        "cross-entropy label smoothing (default: 0.1 with a cross-entropy loss, which made the "
        "one-epoch default reliable; 0 for NLL and MSE)",
        "optim",
    )
    augment: bool = _f(
        False, "random rotations (±10°) and shifts (±10%) per batch, on the device", "optim"
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
    run_name: str | None = _f(None, "name of the run directory (default: time and model)", "run")
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
        for name, kind in field_types().items():
            value = getattr(self, name)
            values = value if isinstance(value, list) else [value]
            if base_type(kind)[0] is float and not all(
                math.isfinite(v) for v in values if v is not None
            ):
                raise ConfigError(f"{name} must be a finite number, got {value}")
        for name in ("epochs", "batch_size", "eval_batch_size", "step_size", "samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.data_seed is not None and self.data_seed < 0:
            raise ConfigError(f"data_seed must be 0 or more, got {self.data_seed}")
        for name, most in UPPER_BOUNDS.items():
            values = getattr(self, name)
            for value in values if isinstance(values, list) else [values]:
                if value is not None and abs(value) > most:
                    raise ConfigError(
                        f"{name} = {value} is beyond what trainlab accepts (at most {most:,}); "
                        "it would exhaust memory or time long before it finished."
                    )
        for name in (
            "subset",
            "test_subset",
            "log_every",
            "features",
            "num_classes",
            "seed",
            "checkpoint_every",
        ):
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
        if self.weight_decay < 0 or self.momentum < 0 or self.noise < 0:
            raise ConfigError("weight_decay, momentum and noise must not be negative")
        if len(self.norm_mean) != len(self.norm_std) or any(v <= 0 for v in self.norm_std):
            raise ConfigError(
                f"norm_mean and norm_std must have the same length and positive stds, got "
                f"{self.norm_mean} and {self.norm_std}"
            )
        if not self.widths or any(w < 1 for w in self.widths):
            raise ConfigError(f"widths must be one or more positive sizes, got {self.widths}")
        if any(h < 1 for h in self.hidden):
            raise ConfigError(f"hidden sizes must be at least 1, got {self.hidden}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

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


# What a resume cannot change: the weights in the checkpoint were made for this model and input.
FROZEN_ON_RESUME = {
    "dataset": "the dataset",
    "model": "the model",
    "hidden": "the model's layers",
    "widths": "the model's layers",
    "log_softmax": "the model's output",
    "features": "the input shape",
    "num_classes": "the number of classes",
    "true_w": "the input shape",
    "subset": "the data split",
    "test_subset": "the data split",
    "val_split": "the data split that chooses best.pt",
    "data_seed": "the data split",
}
# Settings that only describe one kind of data; elsewhere they are noise in a record.
DATA_SPECIFIC = {
    "linear": ("samples", "true_w", "true_b", "noise"),
    "random": ("samples", "features", "num_classes"),
}
MODEL_SPECIFIC = {"mlp": ("hidden", "log_softmax"), "cnn": ("widths",)}


def relevant_settings(values: dict[str, Any]) -> dict[str, Any]:
    """The settings that mean something for this run (no synthetic-data sizes for MNIST...)."""
    dataset, model = values.get("dataset"), values.get("model")
    skip = {k for name, keys in DATA_SPECIFIC.items() if name != dataset for k in keys}
    skip |= {k for name, keys in MODEL_SPECIFIC.items() if name != model for k in keys}
    return {k: v for k, v in values.items() if k not in skip}


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
    return annotation, False, optional


def _check_types(cfg: TrainConfig) -> None:
    for name, annotation in field_types().items():
        value = getattr(cfg, name)
        kind, is_list, optional = base_type(annotation)
        if value is None and optional:
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
