"""``Trainer``: a run in three named steps (plan, open or restore the run, the epoch loop).

Example:
    >>> from trainlab import Trainer, build_model, load_dataset
    >>> data = load_dataset("mnist")
    >>> model = build_model("lenet-relu", data)
    >>> result = Trainer(epochs=3, lr=0.1).fit(model, data)
    >>> result.history[-1]["test_acc"], result.run_dir

``Trainer`` sits above ``engine/`` (the loop functions, checkpoints, metrics) and beside
``report/`` (the callbacks that show a run), and composes both; the engine imports neither.

What a run records is what ran: the config written to config.toml and to every checkpoint is
the plan's config with the model's record (name, source, options) and the data's name, options,
subsets and split put in from the objects given to ``fit``. Callbacks observe the events and may
ask to stop (early stopping); Ctrl-C goes through a flag checked between batches, so the
checkpoint written on the way out is consistent and resumes exactly.
"""

from __future__ import annotations

import functools
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainlab import runs
from trainlab.config import FROZEN_ON_RESUME, TrainConfig
from trainlab.data.dataset import Dataset
from trainlab.engine.allocator import keep_freed_memory
from trainlab.engine.callbacks import Callback, EarlyStopping, FitResult, GradientClipping
from trainlab.engine.checkpoint import BestCheckpoint, load_checkpoint, save_checkpoint
from trainlab.engine.device import resolve_device
from trainlab.engine.distributed import Dist, is_backend_failure, peer_failure
from trainlab.engine.features import try_cache
from trainlab.engine.interrupt import StopFlag
from trainlab.engine.loop import EpochState, train_one_epoch
from trainlab.engine.metrics import Counts
from trainlab.engine.optim import lr_at
from trainlab.engine.predictions import write_predictions
from trainlab.engine.setup import (
    RunSetup,
    amp_warning,
    label_smoothing_for,
    loss_kind,
    setup_run,
)
from trainlab.engine.state import checkpoint_payload, epoch_row, restore_state
from trainlab.errors import CheckpointError, ConfigError, DistributedError
from trainlab.models import record_for
from trainlab.resolve import Plan, plan_run

__all__ = ["Callback", "FitResult", "Trainer", "run_config"]


def run_config(cfg: TrainConfig, model: nn.Module, data: Dataset) -> TrainConfig:
    """The config of what runs: ``cfg`` with the model's and the data's own description."""
    record = record_for(model, data)
    changes: dict[str, Any] = {
        "dataset": data.name,
        "data_options": dict(data.options),
        "subset": data.origin["subset"],
        "test_subset": data.origin["test_subset"],
        "val_split": float(data.origin["val_split"]),
    }
    if "root" in data.info:  # recorded with the run, to find the files again
        changes["data_dir"] = data.info["root"]
    data_seed = data.info.get("settings", {}).get("data_seed", data.origin["seed"])
    changes["data_seed"] = None if data_seed in (None, cfg.seed) else data_seed
    if record.get("name") is None:
        changes.update(model=f"custom:{record['class']}", model_options={})
    else:
        changes.update(model=record["name"], model_options=dict(record.get("options", {})))
        changes.update({k: record[k] for k in ("init", "pretrained", "weights") if k in record})
        changes["freeze_features"] = bool(record.get("freeze_features", False))
    if cfg.label_smoothing is None:  # record the value that runs, not "default"
        changes["label_smoothing"] = label_smoothing_for(cfg, loss_kind(cfg, model, data.task))
    return cfg.replace(**changes)


def best_checkpoint(cfg: TrainConfig, has_val: bool, classification: bool) -> BestCheckpoint:
    """What chooses best.pt (and what --early-stop watches): ``--monitor``, else val_acc with a
    validation split, test_acc without (``_loss`` for regression)."""
    if cfg.monitor is None:
        return BestCheckpoint.for_splits(has_val, classification)
    split, metric = cfg.monitor.split("_")
    if split == "val" and not has_val:
        raise ConfigError(
            f"--monitor {cfg.monitor} needs a validation split, and this run has none. Hold "
            "one out with --val-split 0.1, or monitor test_acc/test_loss."
        )
    if metric == "acc" and not classification:
        raise ConfigError(f"--monitor {cfg.monitor}: a regression run has no accuracy; use *_loss.")
    why = {"val": "the validation split", "test": "the test split", "train": "the training set"}
    return BestCheckpoint(cfg.monitor, "max" if metric == "acc" else "min", why[split])


def given_settings(config: TrainConfig) -> dict[str, Any]:
    """A full config as the settings it gives a resume: what the weights depend on is the
    saved run's (the model and data objects decide it), and unresolved defaults stay unset."""
    given = {k: v for k, v in config.to_dict().items() if k not in FROZEN_ON_RESUME}
    for key in ("data_dir", "label_smoothing"):  # defaults the run resolved
        if given.get(key) is None:
            given.pop(key, None)
    return given


def restarted_run(runs_dir: str | Path, dist: Dist) -> Path | None:
    """torchrun restarted this job (--max-restarts): the run it was writing, to continue."""
    found = runs.find_launched_run(runs_dir, dist.run_id) if dist.main and dist.run_id else None
    found = dist.broadcast(str(found) if found else None)
    if dist.main:
        print(
            f"torchrun restart {dist.restart}: "
            + (f"resuming {found}" if found else "no checkpoint of this job; starting over"),
            file=sys.stderr,
            flush=True,
        )
    return Path(found) if found else None


@dataclass
class _Position:
    """Where the epoch loop starts: a fresh run, or a restored checkpoint's place."""

    run_dir: Path
    epoch: int = 0
    batch: int = 0
    partial: dict | None = None  # the interrupted epoch's counts so far
    history: list | None = None
    saved: tuple[int, int] | None = None  # (epoch, batch) of the last last.pt written


class Trainer:
    """Fits a model to a ``Dataset`` under a ``TrainConfig``.

    Args:
        config: the run's settings, used as given (also on resume, where the fields that differ
            from the saved run's are reported).
        callbacks: observers of the run's events.
        quiet: no progress output. By default a fit shows what the CLI shows (a bar per epoch
            on a terminal or in Jupyter, plain lines when piped) unless ``callbacks`` has a
            ``ConsoleLogger`` of its own.
        **overrides: config fields, e.g. ``Trainer(epochs=3, lr=0.1)``. Without ``config``, a
            resume starts from the saved run's config and applies only these.

    During ``fit``, ``trainer.config`` is the config of the run (what is recorded); after it,
    the Trainer's own again, so a second ``fit`` starts from the same settings as the first.
    """

    def __init__(
        self,
        config: TrainConfig | None = None,
        *,
        callbacks: list[Callback] | None = None,
        quiet: bool = False,
        **overrides: Any,
    ):
        self.quiet = quiet
        self._given = None if config is not None else dict(overrides)
        config = config or TrainConfig.from_dict(overrides, source="Trainer arguments")
        self._own_config = config.replace(**overrides) if overrides else config
        self.config = self._own_config
        self.callbacks = list(callbacks or [])
        resolve_device(self.config.device)  # an unusable device fails here, not mid-fit
        self.changes: dict[str, tuple[Any, Any]] = {}
        self.dist = Dist()
        self._stop_reason: str | None = None
        self._features = None

    def _say(self, line: str) -> None:
        if self.dist.main and not self.quiet:
            print(line, file=sys.stderr, flush=True)

    def request_stop(self, reason: str) -> None:
        """Ask the loop to stop after this epoch (a callback's way to end a run)."""
        self._stop_reason = self._stop_reason or reason

    def _emit(self, event: str, *args: Any) -> None:
        for callback in self.callbacks:  # one voice: rank 0 prints and plots
            if self.dist.main or getattr(callback, "all_ranks", False):
                getattr(callback, event)(self, *args)

    def fit(
        self,
        model: nn.Module,
        data: Dataset,
        *,
        resume: str | Path | Plan | None = None,
        live_plot: bool = False,
    ) -> FitResult:
        """Train ``model`` on ``data``; write the run directory; return history and checkpoints.

        Args:
            model: a module (ideally from ``build_model``, so checkpoints can rebuild it).
            data: the dataset; the config's subsets and validation split are cut from it
                unless it was cut already. A validation split chooses the best checkpoint.
            resume: a run directory (or its last.pt) to continue from, or a ``Plan`` that
                holds the checkpoint already (``trainlab.resolve.plan_run``).
            live_plot: draw loss and accuracy per epoch as training goes (one figure updated
                in place in Jupyter; a PNG in the run directory elsewhere).
        """
        self.model = model  # for callbacks, as Lightning's trainer.model
        keep_freed_memory()  # before the data and the first batch: see engine/allocator.py
        dist = self.dist = Dist.from_env()
        dist.join(dist.device(resolve_device(self._own_config.device)))
        plan = self._plan(resume, dist)
        self.changes, self._stop_reason = dict(plan.changed), None
        self._notes = dict(plan.notes)
        cfg = plan.config
        seed = cfg.effective_data_seed
        data = data.cut(cfg.subset, cfg.test_subset, cfg.val_split, seed=seed, fold=cfg.cv_fold)
        cfg = self.config = run_config(cfg, model, data)
        if plan.checkpoint is not None:
            check_resumable(plan.checkpoint, cfg)
        added = self._config_callbacks(cfg, live_plot)
        self.callbacks += added
        position = None
        try:
            setup = setup_run(cfg, model, data, dist)
            warning = amp_warning(setup.amp_dtype, setup.device)
            if warning and dist.main:
                print(warning, file=sys.stderr, flush=True)
            best = best_checkpoint(cfg, "val" in setup.splits, data.task == "classification")
            stopper = self._early_stopping(cfg, best)
            if stopper is not None:
                self.callbacks.append(stopper)
                added.append(stopper)
            position, setup = self._open_run(cfg, model, data, setup, best, plan.checkpoint)
            return self._loop(cfg, model, data, setup, best, position)
        except DistributedError as e:
            raise DistributedError(f"{e} {kept_message(position)}") from None
        except RuntimeError as e:
            if not (dist.active and is_backend_failure(e)):
                raise
            raise DistributedError(f"{peer_failure(e)} {kept_message(position)}") from None
        finally:  # this fit's own callbacks and config only: a later fit() starts afresh
            for callback in added:
                self.callbacks.remove(callback)
            self.config = self._own_config

    # --- step 1: the plan ----------------------------------------------------------------

    def _plan(self, resume: str | Path | Plan | None, dist: Dist) -> Plan:
        """The config that runs and the checkpoint it continues, each read once."""
        if isinstance(resume, Plan):
            return resume
        if resume is None and dist.restart:
            resume = restarted_run(self._own_config.runs_dir, dist)
        if resume is None:
            return Plan(self._own_config, {})
        given = self._given if self._given is not None else given_settings(self._own_config)
        return plan_run(given, resume=resume, source=str(resume))

    def _config_callbacks(self, cfg: TrainConfig, live_plot: bool) -> list[Callback]:
        from trainlab.report.console import ConsoleLogger

        added: list[Callback] = []
        shown = any(isinstance(c, ConsoleLogger) for c in self.callbacks)
        if self.dist.main and not self.quiet and not shown:
            added.append(ConsoleLogger(cfg.log_every))
        if cfg.clip_grad:
            added.append(GradientClipping(cfg.clip_grad))
        if self.dist.main and cfg.tensorboard:
            from trainlab.report.tensorboard import TensorBoardLogger

            added.append(TensorBoardLogger(cfg.log_every))
        if self.dist.main and live_plot:
            from trainlab.report.live import LivePlotCallback

            added.append(LivePlotCallback())
        return added

    def _early_stopping(self, cfg: TrainConfig, best: BestCheckpoint) -> Callback | None:
        if not cfg.early_stop:
            return None
        return EarlyStopping(best.monitor, best.mode, cfg.early_stop, cfg.min_delta)

    # --- step 2: open a new run directory, or restore one ---------------------------------

    def _open_run(
        self, cfg, model, data, setup: RunSetup, best, checkpoint
    ) -> tuple[_Position, RunSetup]:
        dist = setup.dist
        if checkpoint is None:
            run_dir = runs.new_run_dir(cfg.runs_dir, cfg.run_name, cfg.model) if dist.main else None
            position = _Position(Path(dist.broadcast(str(run_dir) if run_dir else None)))
        else:
            position = _Position(
                Path(checkpoint["path"]).parent, checkpoint["epoch"], checkpoint["batch"]
            )
            position.saved = (position.epoch, position.batch)
            position.partial = restore_state(
                checkpoint, model, setup, best, self.callbacks, cfg.model
            )
            if dist.main:
                runs.restore_metrics(position.run_dir, checkpoint, position.epoch)
        # the backbone's weights are final now (pretrained, or the resumed checkpoint's)
        speaking = self.dist.main and not self.quiet
        setup, self._features = try_cache(cfg, model, data, setup, self._say if speaking else None)
        if self._features is not None:
            self._say(self._features.line())
        self.description = runs.describe_run(cfg, model, data, setup.transform)
        augment = setup.train.transform.augment if setup.train.transform else None
        if augment is not None:  # what --augment chose for this data
            self.description["data"]["augment"] = augment.describe()
        if self._features is not None:  # the head trains from features computed once
            self.description["features"] = self._features.describe()
        if self._notes:  # what the plan adjusted (a rounded default), in config.toml too
            self.description["notes"] = self._notes
        if dist.launched:
            self.description["launch"] = {
                "world_size": dist.world,
                "batch_size_is": "global (split evenly among the processes)",
                "batch_per_process": cfg.batch_size // dist.world,
                "backend": dist.backend or "none",
                "run_id": dist.run_id,
                "restart": dist.restart,
            }
        if not dist.main:  # only global rank 0 writes the run directory
            saved = (checkpoint.get("history") or []) if checkpoint else []
            position.history = list(saved[: position.epoch])
            return position, setup
        position.history = runs.read_metrics(position.run_dir)
        runs.write_config(
            position.run_dir,
            self.description,
            counts={"train": setup.train.num_samples}
            | {name: b.num_samples for name, b in setup.splits.items()},
            best=best,
            resumed=(position.epoch, position.batch) if checkpoint is not None else None,
            device=str(setup.device),
        )
        return position, setup

    # --- step 3: the epoch loop ------------------------------------------------------------

    def _loop(self, cfg, model, data, setup: RunSetup, best, position: _Position) -> FitResult:
        run_dir, history = position.run_dir, position.history
        result = FitResult(run_dir, "completed", history, best.state_dict(), run_dir / "last.pt")
        result.best_path = run_dir / "best.pt" if (run_dir / "best.pt").exists() else None
        result.config = cfg
        self._emit("on_fit_start", start_info(cfg, data, setup, best, position, self.changes))
        dist = setup.dist
        save = functools.partial(self._save, model, setup, best, position)
        with StopFlag(dist.launched) as stop:
            for epoch in range(position.epoch, cfg.epochs):
                row = self._train_epoch(cfg, model, data, setup, position, epoch, stop, save)
                if row is None:
                    result.status = "interrupted"
                    break
                if self._features is not None and epoch == position.epoch:
                    # the first epoch of this fit waited for the features: its cost says so
                    row["feature_seconds"] = round(self._features.seconds, 3)
                    row["seconds"] = round(row["seconds"] + self._features.seconds, 3)
                history.append(row)
                improved = best.update(row)
                self._emit("on_epoch_end", row)
                stopping = dist.any(self._stop_reason is not None, setup.device)
                if stopping:
                    result.stopped = row["stop"] = self._stopped(epoch, dist)
                # checkpoints first: metrics.jsonl never claims an epoch last.pt does not hold
                save("last.pt", epoch + 1, 0, None)
                if improved:
                    save("best.pt", epoch + 1, 0, None)
                    result.best_path = run_dir / "best.pt"
                if dist.main:
                    runs.append_metrics(run_dir, row)
                result.best = best.state_dict()
                if stopping:
                    result.status = "stopped early"
                    if dist.main:
                        runs.record_stop(run_dir, result.stopped)
                    break
                if dist.any(stop.requested, setup.device) and epoch + 1 < cfg.epochs:
                    result.status = "interrupted"
                    break
        if dist.main and result.status != "interrupted" and data.classes and result.best_path:
            finish_classification(cfg, model, data, setup, result)
        dist.barrier()  # no rank leaves while rank 0 still writes (an early exit aborts gloo)
        self._emit("on_fit_end", result)
        return result

    def _stopped(self, epoch: int, dist: Dist) -> dict[str, Any]:
        reason = dist.broadcast(self._stop_reason)  # rank 0's words for every rank's record
        return {"epoch": epoch + 1, "reason": reason or "a callback asked to stop"}

    def _train_epoch(self, cfg, model, data, setup, position, epoch, stop, save):
        """One epoch (from where a resume left it); its metrics row, or None if interrupted."""
        dist = setup.dist
        counts = Counts(data.num_classes, setup.device)
        if position.partial:
            counts.load_state(position.partial)
        state = EpochState(epoch, position.batch, counts)

        def pause() -> bool:
            """Leave the epoch here: Ctrl-C (agreed by all ranks) or a --checkpoint-every
            point (the same batch on every rank)."""
            every = cfg.checkpoint_every
            due = bool(every) and state.batch % every == 0
            return dist.any(stop.requested, setup.device) or due

        state.stop_requested = pause
        position.batch, position.partial = 0, None
        began, seen_before = time.perf_counter(), counts.n
        before_step = self._before_step(setup.train_model)
        while not train_one_epoch(
            setup.train_model,
            setup.train,
            setup.optimizer,
            setup.train_loss_fn,
            state,
            lambda step: lr_at(cfg, step, setup.steps),
            self._batch_hook(setup.steps),
            setup.amp_dtype,
            before_step,
        ):
            save("last.pt", epoch, state.batch, counts)
            if dist.any(stop.requested, setup.device):
                return None
        return epoch_row(epoch, counts, seen_before, began, model, data, setup)

    def _save(self, model, setup, best, position, name, epoch, batch, counts) -> None:
        # every rank takes part (counts and random states are gathered); rank 0 writes
        dist = setup.dist
        total = dist.sum_counts(counts) if counts is not None else None
        payload = checkpoint_payload(
            self.description,
            model,
            setup,
            best,
            self.callbacks,
            position.history,
            (epoch, batch),
            total,
        )
        if dist.main:
            save_checkpoint(position.run_dir / name, payload)
        if name == "last.pt":
            position.saved = (epoch, batch)

    def _before_step(self, model: nn.Module):
        steering = [
            c
            for c in self.callbacks
            if getattr(type(c), "on_before_step", Callback.on_before_step)
            is not Callback.on_before_step
        ]
        if not steering:
            return None

        def before_step() -> None:
            for callback in steering:
                callback.on_before_step(self, model)

        return before_step

    def _batch_hook(self, steps: int):
        if not self.callbacks:
            return None

        def on_batch(state: EpochState, loss_sum: torch.Tensor) -> None:
            self._emit("on_batch_end", state, loss_sum, steps)

        return on_batch


def check_resumable(checkpoint: dict[str, Any], cfg: TrainConfig) -> None:
    """Refuse a resume that would change what the weights depend on, or that has nothing left
    to do (every epoch run, or stopped early)."""
    saved = TrainConfig.from_dict(checkpoint["config"], source=checkpoint["path"])
    for name in FROZEN_ON_RESUME:
        if getattr(saved, name) != getattr(cfg, name):
            raise CheckpointError(
                f"{checkpoint['path']}: the run trained with {name}={getattr(saved, name)!r},"
                f" this fit has {name}={getattr(cfg, name)!r} ({FROZEN_ON_RESUME[name]}). "
                "Resume with the run's own model and data, or start a new run."
            )
    stopped = checkpoint.get("stopped")
    if stopped and cfg.early_stop == saved.early_stop:
        raise ConfigError(
            f"{checkpoint['path']}: the run is finished: it stopped early after epoch "
            f"{stopped['epoch']} ({stopped['reason']}). To train it further anyway, resume "
            f"with another --early-stop (0 turns it off) and a larger --epochs."
        )
    if checkpoint["epoch"] >= cfg.epochs and not checkpoint["batch"]:
        raise ConfigError(
            f"{checkpoint['path']}: the run already finished {checkpoint['epoch']} epoch(s) "
            f"and --epochs is {cfg.epochs}. Pass a larger --epochs to train further, e.g. "
            f"--epochs {checkpoint['epoch'] + 1}."
        )


def kept_message(position: _Position | None) -> str:
    if position is None or position.saved is None:
        return "No checkpoint was written by this job yet."
    epoch, batch = position.saved
    where = f"epoch {epoch + 1}, batch {batch}" if batch else f"after epoch {epoch}"
    return (
        f"The run's last.pt ({where}) is intact. Resume with: torchrun ... -m trainlab "
        f"train --resume {position.run_dir}"
    )


def start_info(cfg, data, setup, best, position, changes) -> dict[str, Any]:
    amp = str(setup.amp_dtype).replace("torch.", "") if setup.amp_dtype else "float32"
    return {
        "run_dir": position.run_dir,
        "device": str(setup.device),
        "amp": amp,
        "epochs": cfg.epochs,
        "start_epoch": position.epoch,
        "start_batch": position.batch,
        "resumed": bool(position.history) or bool(position.epoch or position.batch),
        "steps_per_epoch": setup.steps,
        "train_samples": len(data.train_y),
        "monitor": best.monitor,
        "changes": dict(changes),
    }


def finish_classification(cfg, model, data, setup, result) -> None:
    """predictions.npz from best.pt's weights (the model keeps its last weights after)."""
    last = None
    if result.best.get("epoch") != result.final.get("epoch"):
        last = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(load_checkpoint(result.best_path)["state_dict"])
    arrays = write_predictions(
        result.run_dir / "predictions.npz",
        setup.scorer,
        setup.splits["test"],
        data.test_x,
        data.classes,
        "best.pt",
        setup.amp_dtype,
    )
    if last is not None:
        model.load_state_dict(last)
    if cfg.sklearn_check:
        from sklearn.metrics import accuracy_score

        result.extra["sklearn_test_acc"] = float(accuracy_score(arrays["labels"], arrays["pred"]))
