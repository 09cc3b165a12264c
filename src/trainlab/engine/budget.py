"""``--budget 10m``: the epochs planned to end within a time budget, from a measured pilot.

Before the first step, a pilot times this run's training steps for two seconds (after three
warm-up steps) and a few evaluation batches on this machine, then puts everything back as it
was: weights, batch-norm statistics, optimizer state and random generators. The run that
follows is planned as the run ``--epochs N`` would be. N is what fits in the budget after the
time already spent since the process started, one epoch's training plus its evaluation each,
and a margin for the final evaluation and writing (a twentieth of the budget, at least 5 s).
Under torchrun every process takes the same number of pilot steps and rank 0's plan.

A pilot of seconds can be off by a tenth either way, so the first epoch, measured whole,
revises the plan once: the epochs that fit in what is left (the new count is printed and
recorded, ``[budget] revised``). The schedule is computed on the new count from the second
epoch on; the first epoch ran on the pilot's. After that, each finished epoch's measured time
replaces the guess: when the next epoch would end past the budget, the run stops there
(best.pt is written after every improving epoch, so it is there). An epoch that has begun
runs to its end. A resumed budget run keeps its plan (revised, if it was) and counts the
time its epochs already took.

Example:
    $ trainlab train --dataset photos/ --budget 10m
    budget 10m: 14 epochs (pilot: 38.2 s per epoch of training, 2.1 s of evaluation;
    6.5 s spent before it)
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from trainlab.engine.callbacks import Callback
from trainlab.engine.distributed import Dist
from trainlab.errors import ConfigError
from trainlab.logs import say

UNITS = {"s": 1, "m": 60, "h": 3600}
PATTERN = r"^\d+(\.\d+)?[smh]$"
PILOT_STEPS = 6  # timed at least, after 3 warm-up steps ...
PILOT_SECONDS = 2.0  # ... and for at least this long (or a whole epoch, if shorter)
# A whole epoch is not its pilot's steps times the epoch's steps: its counts, log and thread
# check, and the machine's own drift. Against a pilot timed for 2 s, best-small-images' epochs
# on Fashion-MNIST (2-core CPU) took 12% longer on average; against a 6-step pilot, 6% less
# (another width) and 13% more (resnet-small's first budget run). An epoch planned that does
# not fit is stopped by the guard, and a one-cycle schedule then never reaches its low learning
# rates: the allowance errs on the long side, and the reserve below takes the rest.
EPOCH_OVERHEAD = 1.10
# An epoch after the first may run a little slower than it (the machine's drift): the plan
# revised from the first epoch allows this much.
EPOCH_DRIFT = 1.05
EVAL_BATCHES = 3  # per split, timed
MOST_EPOCHS = 100_000  # --epochs' own limit


def seconds_of(budget: str) -> float:
    """``"10m"`` -> 600.0; ``"90s"``, ``"1.5h"``."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smh])", budget.strip())
    if not match:
        raise ConfigError(f"--budget {budget}: expected a number and a unit: 90s, 10m or 1.5h.")
    return float(match.group(1)) * UNITS[match.group(2)]


_START: float | None = None  # when the budget's clock started (see ``clock``)


@contextlib.contextmanager
def clock(from_process: bool) -> Iterator[None]:
    """Inside, a budget counts from this process's start (the ``trainlab`` command) or from
    now (``main([...])`` called from Python); outside, from the pilot (``Trainer.fit``)."""
    global _START
    _START = time.time() - process_age() if from_process else time.time()
    try:
        yield
    finally:
        _START = None


def _spent() -> float:
    """Seconds the budget's clock has run: 0 when only the pilot starts it."""
    return time.time() - _START if _START is not None else 0.0


def seconds_left(budget: str) -> float:
    """What is left of ``budget`` on its clock now (before the pilot)."""
    return seconds_of(budget) - _spent()


def process_age() -> float:
    """Seconds since this process started (Linux: /proc; elsewhere since trainlab loaded)."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime")
        )
        return max(time.time() - (boot + ticks / os.sysconf("SC_CLK_TCK")), 0.0)
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time() - _LOADED


_LOADED = time.time()


def _timed_steps(setup: Any, steps: int, dist: Any, seconds: float = PILOT_SECONDS) -> float:
    """Seconds per training step over at least ``steps`` steps and ``seconds`` seconds (or the
    epoch's steps, if fewer), after three warm-up steps; every process stops at the same step
    (each takes part in the others' gradient exchange)."""
    from trainlab.engine.loop import autocast

    model, optimizer, loss_fn = setup.train_model, setup.optimizer, setup.train_loss_fn
    model.train()
    batches = setup.train.epoch(0)
    timed, began = 0, None
    for i, (x, y) in enumerate(batches):
        if i == 3:
            began = time.perf_counter()
        with autocast(setup.device, setup.amp_dtype):
            loss = loss_fn(model(x), y) / len(y)
        if hasattr(optimizer, "param_groups"):
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        else:
            loss.backward()
            optimizer(len(y))
        timed += i >= 3
        done = timed >= steps and time.perf_counter() - began >= seconds
        if dist.any(done, setup.device):
            break
    if began is None or not timed:  # fewer than four batches: what there was
        return 0.0
    return (time.perf_counter() - began) / timed


def _eval_seconds(setup: Any, num_classes: int) -> float:
    """One epoch's evaluation of every split, from a few timed batches of each."""
    from trainlab.engine.loop import evaluate_counts

    total = 0.0
    for batches in setup.shards.values():
        head = _Head(batches, EVAL_BATCHES)
        began = time.perf_counter()
        evaluate_counts(setup.scorer, head, setup.loss_fn, num_classes, setup.amp_dtype)
        per_batch = (time.perf_counter() - began) / max(len(head), 1)
        total += per_batch * len(batches)
    return total


def _save_seconds(state: dict[str, Any]) -> float:
    """What writing one checkpoint of this run's weights and optimizer state takes, twice
    (last.pt, and best.pt when the epoch improved)."""
    import io

    began = time.perf_counter()
    torch.save({"model": state["model"], "optimizer": state["optimizer"]}, io.BytesIO())
    return 2 * (time.perf_counter() - began)


class _Head:
    """The first ``n`` batches of a split (what evaluation iterates)."""

    def __init__(self, batches: Any, n: int):
        self.batches, self.n = batches, min(n, len(batches))
        self.device = batches.device

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        for i, batch in enumerate(self.batches):
            if i >= self.n:
                return
            yield batch


def plan_epochs(
    budget: str,
    setup: Any,
    model: torch.nn.Module,
    num_classes: int,
    most: int | None = None,
    dist: Any = None,
) -> dict:
    """The pilot and the epochs it plans; the run's state is put back as it was before it."""
    total = seconds_of(budget)
    began = time.time()
    spent = _spent()
    saved = {
        "model": copy.deepcopy(model.state_dict()),
        "optimizer": copy.deepcopy(setup.optimizer.state_dict()),
        "rng": torch.get_rng_state(),
    }
    try:
        step = _timed_steps(setup, PILOT_STEPS, dist or Dist())
        saving = _save_seconds(saved)  # last.pt (and best.pt) written every epoch
        evaluation = _eval_seconds(setup, num_classes) + saving
    finally:
        model.load_state_dict(saved["model"])
        setup.optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["rng"])
        setup.optimizer.zero_grad(set_to_none=True)
    pilot_epoch = step * setup.steps
    train_epoch = pilot_epoch * EPOCH_OVERHEAD
    margin = max(total / 20, 5.0) + evaluation  # the last evaluation, predictions, writing
    left = total - spent - (time.time() - began) - margin
    per_epoch = max(train_epoch + evaluation, 1e-6)
    epochs = max(1, int(left // per_epoch))
    capped = most is not None and epochs > most
    epochs = min(epochs, most) if most is not None else epochs
    fits = left >= per_epoch
    line = (
        f"budget {budget}: {epochs} epoch{'s' * (epochs != 1)} (pilot: {train_epoch:.1f} s per "
        f"epoch of training, {evaluation:.1f} s of evaluation; {spent:.1f} s spent before it)"
    )
    if capped:
        line += f"; at most {most}, as --epochs says"
    if not fits:
        line += "; one epoch does not fit in it: the run takes one epoch anyway"
    return {
        "budget": budget,
        "seconds": total,
        "epochs": epochs,
        "train_epoch_seconds": round(train_epoch, 3),
        "pilot_epoch_seconds": round(pilot_epoch, 3),  # the steps alone, before the overhead
        "eval_seconds": round(evaluation, 3),  # the saving's too
        "save_seconds": round(saving, 3),
        "spent_before": round(spent, 3),
        "ends_by": round(began - spent + total, 3),  # the deadline, as time.time()
        "reserve_seconds": round(margin, 3),  # kept for what follows the last epoch
        **({"most": most} if most is not None else {}),
        "line": line,
    }


def budget_guard(record: dict[str, Any], checkpoint: dict[str, Any] | None) -> BudgetGuard:
    """The guard of a run planned as ``record``; on a resume the budget left is what the first
    start-up and the epochs already run did not use, less this process's start-up (and the
    plan stays as the checkpoint has it)."""
    reserve = record.get("reserve_seconds", 0.0)
    if checkpoint is None:
        return BudgetGuard(record["ends_by"] - reserve, record)
    history = checkpoint.get("history") or []
    used = record["spent_before"] + sum(row.get("seconds", 0.0) for row in history)
    return BudgetGuard(time.time() - _spent() + record["seconds"] - used - reserve)


class BudgetGuard(Callback):
    """Revises the plan once from the first epoch's measured time (a fresh run's), and stops a
    budget run after an epoch when the next one would end past the budget."""

    all_ranks = True  # every rank revises the same plan (rank 0's figures) and stops with it

    def __init__(self, deadline: float, record: dict[str, Any] | None = None):
        self.deadline = deadline
        self.record = record  # None: nothing to revise (a resume keeps its plan)

    def on_epoch_end(self, trainer: Any, row: dict[str, Any]) -> None:
        seconds = row["seconds"] - row.get("feature_seconds", 0.0)  # features: computed once
        if self.record is not None and row.get("epoch") == 1:
            self._revise(trainer, seconds)
        if row.get("epoch", 0) >= trainer.config.epochs:  # the plan's last: nothing to stop
            return
        if trainer.dist.main and time.time() + seconds > self.deadline:
            trainer.request_stop("the time budget: the next epoch would end past it")

    def _revise(self, trainer: Any, seconds: float) -> None:
        """The epochs that fit, from the first epoch as measured (a pilot of a few seconds can be
        off by a tenth either way): one-cycle then reaches its low rates within the budget
        rather than being cut, or uses the time a pessimistic pilot left over."""
        record, self.record = self.record, None
        seconds += record.get("save_seconds", 0.0)  # the checkpoints, written after the row
        fits = int((self.deadline - time.time()) // max(seconds * EPOCH_DRIFT, 1e-6))
        epochs = max(1, min(1 + fits, record.get("most") or 1 + fits, MOST_EPOCHS))
        epochs = trainer.dist.broadcast(epochs)
        if epochs == trainer.config.epochs:
            return
        line = (
            f"budget {record['budget']}: {epochs} epochs in all, revised from the first "
            f"({seconds:.1f} s measured; the pilot planned {record['epochs']})"
        )
        if trainer.dist.main:
            say(line)
        revised = {"first_plan": record["epochs"], "first_epoch_seconds": round(seconds, 3)}
        trainer.replan(epochs, {"epochs": epochs, "revised": revised})
