"""``--model auto``: a frozen pretrained backbone, fine-tuning, or a network from scratch, chosen
from the images per class, the image size and the measured speed of each on this machine.

The rule rests on trainlab's own measurements (``benchmarks/transfer.py``, Fashion-MNIST on a
2-core CPU, stored in ``benchmarks/results/transfer-2026-12-01.json``): at 10 images per class a
frozen EfficientNet-Lite0 with a new head beat the small CNN from scratch by 4.2 points; at 50
per class the CNN from scratch matched it (82.5% against 82.1%) and fine-tuning the backbone
lost 4 points in 8 epochs. So:

- few images per class (under 25): the frozen backbone of ``--recipe best-few-images``, its
  features computed once;
- small images (up to 64 px a side): ``resnet-small`` from scratch, when enough epochs of it fit
  in the budget (else the frozen backbone);
- larger images: fine-tuning the backbone when a few epochs of it fit (else frozen).

The candidates' speed is measured here, a few steps each on a batch of the run's input size;
with ``--budget`` it decides what fits. The choice and the reason are said in one line and
recorded with the run (``notes.model`` in config.toml); the settings the choice brings (the
recipe ``seed-transfer``'s for the frozen head) give way to any the command chose.

Example:
    $ trainlab train --dataset photos/ --model auto --budget 10m
    model auto: 10 images per class: frozen efficientnet-lite1 (a frozen backbone measured
    +4.2 pp over scratch at 10 per class); measured here: features 60 img/s, scratch 480 img/s
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from trainlab.errors import ConfigError
from trainlab.logs import say
from trainlab.recipes import get_recipe

FEW = 25  # images per class under which the frozen backbone wins (measured: 10 yes, 50 no)
SMALL = 64  # the side up to which a network from scratch runs at the images' own size
SCRATCH_EPOCHS = 5  # the fewest epochs from scratch worth choosing over the frozen backbone
TUNE_EPOCHS = 3  # the fewest epochs of fine-tuning worth choosing over the frozen backbone
BACKBONE = "efficientnet-lite0"
SCRATCH = "resnet-small"

_FROZEN = get_recipe("best-few-images").settings
FROZEN, FROZEN_SIDE = _FROZEN["model"], _FROZEN["resolution"]
_TUNED = {
    "model": BACKBONE,
    "pretrained": True,
    "freeze_features": False,
    "resolution": 128,
    "optimizer": "adamw",
    "lr": 1e-3,
    "backbone_lr_mult": 0.1,
    "epochs": 8,
}
_SCRATCH = {"model": SCRATCH, "augment": "basic", "epochs": 10}


@dataclass
class Choice:
    settings: dict[str, Any]
    reason: str
    speeds: dict[str, float] = field(default_factory=dict)  # images per second, measured


def choose(data: Any, seconds_left: float | None, device: torch.device) -> Choice:
    """The choice for ``data`` (a cut Dataset), with ``seconds_left`` of a budget (None: none)."""
    kind = data.kind_entry
    if not kind.images or not kind.task.has_classes:
        raise ConfigError(
            f"--model auto chooses among image classifiers; this data ({kind.summary}) is not "
            "one. Leave --model out to train its kind's default, or name a model."
        )
    per_class = len(data.train_x) / max(data.num_classes, 1)
    side = max(data.input_shape[1:])
    n_all = sum(len(x) for x in (data.train_x, data.val_x, data.test_x) if x is not None)
    speeds = _measure(data, device, per_class, side)
    few = f"{per_class:,.0f} images per class"

    def fits(name: str, images: float) -> bool:
        return seconds_left is None or images / speeds[name] <= seconds_left

    frozen = Choice(
        _FROZEN,
        f"{few}: frozen {FROZEN} (a frozen backbone measured +4.2 pp over scratch at 10 per class)",
        speeds,
    )
    if per_class < FEW and fits("features", n_all):
        return frozen
    if per_class < FEW:
        why = f"{few}, but the frozen backbone's features do not fit in the budget here"
        return Choice(_SCRATCH, f"{why}: {SCRATCH} from scratch", speeds)
    if side <= SMALL:
        epochs = SCRATCH_EPOCHS * len(data.train_x)
        if fits("scratch", epochs):
            return Choice(
                _SCRATCH,
                f"{few} at {side} px: {SCRATCH} from scratch (measured: scratch matched the "
                f"frozen backbone at 50 per class, fine-tuning lost 4 pp)",
                speeds,
            )
        if not fits("features", n_all):  # neither fits: the one that stops in time
            why = f"{few} at {side} px; neither {SCRATCH_EPOCHS} epochs from scratch nor the "
            why += "frozen backbone's features fit in the budget here"
            return Choice(_SCRATCH, f"{why}: {SCRATCH} from scratch, fewer epochs", speeds)
        frozen.reason = f"{few} at {side} px, but under {SCRATCH_EPOCHS} epochs from scratch "
        frozen.reason += f"fit in the budget here: frozen {FROZEN}"
        return frozen
    if fits("tuned", TUNE_EPOCHS * len(data.train_x)):
        return Choice(
            _TUNED,
            f"{few} at {side} px: fine-tuned {BACKBONE} (a few epochs of it fit)",
            speeds,
        )
    frozen.reason = f"{few} at {side} px, but under {TUNE_EPOCHS} epochs of fine-tuning fit "
    frozen.reason += f"in the budget here: frozen {FROZEN}"
    return frozen


def _measure(data: Any, device: torch.device, per_class: float, side: int) -> dict[str, float]:
    """Images per second of the candidates the rule may weigh (weights do not change speed, so
    none are loaded)."""
    from trainlab.models import build_model

    frozen = build_model(FROZEN, data, resolution=FROZEN_SIDE).to(device)
    side_in = (3, FROZEN_SIDE, FROZEN_SIDE)
    speeds = {"features": _speed(frozen, side_in, device, train=False)}
    if per_class >= FEW and side > SMALL:
        tuned = build_model(BACKBONE, data, resolution=128).to(device)
        speeds["tuned"] = _speed(tuned, (3, 128, 128), device, train=True)
    if per_class < FEW or side <= SMALL:
        scratch = build_model(SCRATCH, data).to(device)
        speeds["scratch"] = _speed(scratch, tuple(data.input_shape), device, train=True)
    return speeds


def _speed(model: torch.nn.Module, shape: tuple[int, ...], device, train: bool) -> float:
    """Images per second over two timed batches of 32, after one warm-up batch."""
    from trainlab.engine.device import autocast_dtype
    from trainlab.engine.loop import autocast

    x = torch.rand(32, *shape, device=device)
    model.train(train)
    timed = 0.0
    for i in range(3):
        began = time.perf_counter()
        with torch.set_grad_enabled(train), autocast(device, autocast_dtype("auto", device)):
            out = model(x)
        if train:
            out.float().sum().backward()
            model.zero_grad(set_to_none=True)
        if i:
            timed += time.perf_counter() - began
    return 64 / max(timed, 1e-9)


def apply(plan: Any, data: Any, device: torch.device, seconds_left: float | None) -> None:
    """Replace ``--model auto`` in the plan's config by the choice, keep every setting the
    command chose, say the reason and note it (recorded with the run)."""
    from trainlab.models.shorthand import fold_options

    choice = choose(data, seconds_left, device)
    chosen = plan.chosen - {"model"}
    settings = {k: v for k, v in choice.settings.items() if k not in chosen or k == "model"}
    folded = fold_options({**settings, "model_options": dict(plan.config.model_options)})
    plan.config = plan.config.replace(**folded)
    if "epochs" in settings and plan.config.budget and settings.get("freeze_features"):
        plan.chosen = plan.chosen | {"epochs"}  # a cached head: its epochs, the budget's most
    speeds = ", ".join(f"{k} {v:,.0f} img/s" for k, v in choice.speeds.items())
    plan.notes["model"] = f"--model auto: {choice.reason}; measured here: {speeds}"
    say(f"model auto: {choice.reason}; measured here: {speeds}")
