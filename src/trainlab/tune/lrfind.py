"""The learning-rate range test: ``trainlab lr-find [train flags]``, and ``--lr auto``.

Example:
    $ trainlab lr-find --subset 10000
    suggested --lr 0.12 (steepest descent of the smoothed loss; ...); curve: lr_find.png
    $ trainlab train --lr auto          # runs the test first and records the value

The learning rate grows exponentially from ``--start-lr`` to ``--end-lr`` over ``--steps``
optimizer steps (about 100) on the run's own model, data, optimizer and batches; the loss is
smoothed (an exponential moving average with bias correction, 0.98, as fastai's) and the test
stops when it diverges (over 4 times its best). The suggestion is a tenth of the learning rate
where the smoothed loss is lowest (Leslie Smith's rule, fastai's ``lr_min / 10``): the minimum
sits just before divergence, and a tenth of it is still on the steep part of the curve. The
steepest descent (where the loss falls fastest against log(lr)) is reported beside it; on a
short test it lands early in the fall and is often too timid for a one-cycle schedule. The
model it trained is thrown away: nothing is written but the curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainlab.errors import ConfigError
from trainlab.logs import quiet

RULE = "a tenth of the lr where the smoothed loss is lowest"


@dataclass
class LRFind:
    lrs: list[float]
    losses: list[float]  # smoothed
    suggestion: float
    stopped: str  # why the test ended
    index: int  # the lowest smoothed loss's step
    steepest: float  # the steepest descent's lr

    def to_dict(self) -> dict[str, Any]:
        return {
            "suggested_lr": self.suggestion,
            "rule": RULE,
            "steps": len(self.lrs),
            "stopped": self.stopped,
            "min_loss_lr": self.lrs[self.index],
            "steepest_lr": self.steepest,
        }


def range_test(
    given: dict[str, Any],
    *,
    start_lr: float = 1e-5,
    end_lr: float = 10.0,
    steps: int = 100,
    config_file: str | None = None,
) -> LRFind:
    """Run the range test on the model, data and optimizer ``given`` describes (train settings)."""
    from trainlab.engine.loop import autocast
    from trainlab.engine.setup import setup_run
    from trainlab.resolve import plan_run
    from trainlab.workflow import build_configured_model, prepare_data

    if not 0 < start_lr < end_lr:
        raise ConfigError(f"--start-lr {start_lr}, --end-lr {end_lr}: need 0 < start < end.")
    if steps < 10:
        raise ConfigError(f"--steps {steps}: the curve needs at least 10 steps (about 100).")
    given = {k: v for k, v in given.items() if k != "lr"}
    cfg = plan_run(given, config_file=config_file, source="lr-find").config
    with quiet():  # the range test's own lines say what matters
        data = prepare_data(cfg)
        model = build_configured_model(cfg, data)
    setup = setup_run(cfg, model, data)
    optimizer, batches = setup.optimizer, setup.train
    mults = [group.get("lr_mult", 1.0) for group in optimizer.param_groups]
    factor = (end_lr / start_lr) ** (1 / (steps - 1))
    lrs, smoothed, avg, best = [], [], 0.0, math.inf
    stopped = f"reached --end-lr {end_lr:g}"
    model.train()
    step, epoch = 0, 0
    while step < steps:
        for x, y in batches.epoch(epoch):
            lr = start_lr * factor**step
            for group, mult in zip(optimizer.param_groups, mults, strict=True):
                group["lr"] = lr * mult
            with autocast(setup.device, setup.amp_dtype):  # as the training loop steps
                loss = setup.train_loss_fn(model(x), y) / len(y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                stopped = f"the loss became {value} at lr {lr:.3g}"
                step = steps
                break
            avg = 0.98 * avg + 0.02 * value
            current = avg / (1 - 0.98 ** (step + 1))
            lrs.append(lr)
            smoothed.append(current)
            best = min(best, current)
            step += 1
            if step > 10 and current > 4 * best:
                stopped = f"the smoothed loss diverged (over 4x its best) at lr {lr:.3g}"
                step = steps
                break
            if step >= steps:
                break
        epoch += 1
    if len(lrs) < 10:
        raise ConfigError(
            f"the range test stopped after {len(lrs)} steps ({stopped}); lower --start-lr."
        )
    lowest = int(np.argmin(smoothed))
    del model, optimizer, setup  # nothing trained is kept
    return LRFind(lrs, smoothed, lrs[lowest] / 10, stopped, lowest, lrs[_steepest(lrs, smoothed)])


def _steepest(lrs: list[float], losses: list[float]) -> int:
    """The step where the smoothed loss falls fastest against log(lr), between the warm-up
    of the average and the loss's minimum."""
    logs, values = np.log10(lrs), np.asarray(losses)
    low = min(5, len(values) // 10)
    high = int(np.argmin(values)) + 1
    if high - low < 3:
        low, high = 0, len(values)
    slopes = np.gradient(values[low:high], logs[low:high])
    return low + int(np.argmin(slopes))


def plot(result: LRFind, path: str | Path) -> Path:
    """The curve, with the suggestion marked, as a PNG (written whole, then renamed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from trainlab.fsutil import atomic_write

    figure, axes = plt.subplots(figsize=(7, 4.2))
    axes.plot(result.lrs, result.losses, color="#1f77b4")
    axes.set_xscale("log")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("training loss (smoothed)")
    axes.axvline(result.suggestion, color="#d62728", linestyle="--", label="suggested")
    axes.plot([result.lrs[result.index]], [result.losses[result.index]], "o", color="#d62728",
              label="lowest loss")  # fmt: skip
    axes.axvline(result.steepest, color="#7f7f7f", linestyle=":", label="steepest descent")
    axes.legend(fontsize=8)
    axes.set_title(f"suggested lr {result.suggestion:.3g} ({RULE})", fontsize=9)
    top = np.percentile(result.losses, 95)
    axes.set_ylim(min(result.losses) * 0.95, max(top, result.losses[0]) * 1.05)
    figure.tight_layout()

    def write(tmp: Path) -> None:
        figure.savefig(tmp, format="png", dpi=100)

    out = atomic_write(path, write)
    plt.close(figure)
    return out
