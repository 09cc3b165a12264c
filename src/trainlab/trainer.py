"""``Trainer``: restore a built run (or open a new run directory), then loop over its epochs.

Example:
    >>> from trainlab import Trainer, build_model, load_dataset
    >>> data = load_dataset("mnist")
    >>> model = build_model("lenet-relu", data)
    >>> result = Trainer(epochs=3, lr=0.1).fit(model, data)
    >>> result.history[-1]["test_acc"], result.run_dir

A run is planned once (``trainlab.resolve``), built once (``trainlab.build``: the process group,
the data cut, the model, the device, precision, batches, optimizer and feature cache), and then
the Trainer restores and loops, and nothing else. ``fit`` is those steps for a model and data
given from Python; ``trainlab train`` builds the model and data from the config and calls
``run``. Callbacks observe the events and may ask to stop (early stopping); Ctrl-C goes through a
flag checked between batches, so the checkpoint written on the way out is consistent and
resumes exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainlab import runs
from trainlab.build import Run, build, cut_data, say, start, start_info
from trainlab.config import TrainConfig
from trainlab.data.dataset import Dataset
from trainlab.engine.budget import budget_guard
from trainlab.engine.callbacks import Callback, EarlyStopping, FitResult, GradientClipping
from trainlab.engine.checkpoint import save_checkpoint
from trainlab.engine.device import resolve_device
from trainlab.engine.distributed import Dist, is_backend_failure, peer_failure
from trainlab.engine.ema import WeightAverage, averaged_weights
from trainlab.engine.interrupt import StopFlag
from trainlab.engine.loop import EpochState, train_one_epoch
from trainlab.engine.metrics import counts_for
from trainlab.engine.optim import lr_at
from trainlab.engine.predictions import finish_classification
from trainlab.engine.state import checkpoint_payload, epoch_row, restore_state
from trainlab.errors import DistributedError
from trainlab.logs import to_stderr
from trainlab.resolve import Plan, merge_layers, plan_run, resolve_config, settings_of

__all__ = ["Callback", "FitResult", "Trainer"]


@dataclass
class Position:
    """Where the epoch loop stands: the run directory, the next (epoch, batch), the interrupted
    epoch's counts so far, the metrics rows, and the last last.pt written."""

    run_dir: Path
    epoch: int = 0
    batch: int = 0
    partial: dict | None = None
    history: list | None = None
    saved: tuple[int, int] | None = None
    resumed: tuple[int, int] | None = None  # where this fit took the run up, if it did


class Trainer:
    """Fits a model to a ``Dataset`` under a ``TrainConfig``.

    Args:
        config: the run's settings, used as given (also on resume, where the fields that differ
            from the saved run's are reported).
        callbacks: observers of the run's events.
        quiet: no progress output. By default a fit shows what the CLI shows (a bar per epoch
            on a terminal or in Jupyter, plain lines when piped) unless ``callbacks`` has a
            ``ConsoleLogger`` of its own.
        **overrides: config fields, e.g. ``Trainer(epochs=3, lr=0.1)`` (a built-in's options
            and ``recipe`` too). Without ``config``, a resume starts from the saved run's config
            and applies only these.

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
        given = None if config is not None else dict(overrides)
        if config is None:
            planned = resolve_config(overrides, source="Trainer arguments")
            config, chosen = planned.config, planned.chosen
        else:
            if overrides:
                merged = merge_layers(config.to_dict(), overrides, source="Trainer arguments")
                config = TrainConfig.from_dict(merged, source="Trainer arguments")
            chosen = frozenset(config.to_dict())
        resolve_device(config.device)  # an unusable device fails here, not mid-fit
        self._hold(config, chosen, given, callbacks, quiet)

    @classmethod
    def of_run(cls, config: TrainConfig, callbacks: list[Callback] | None = None) -> Trainer:
        """The Trainer of a run that ``build`` planned and built already (the CLI's way): its
        config is the run's, with nothing left to resolve."""
        trainer = cls.__new__(cls)
        trainer._hold(config, frozenset(config.to_dict()), None, callbacks, quiet=False)
        return trainer

    def _hold(self, config, chosen, given, callbacks, quiet: bool) -> None:
        self.quiet, self._given, self._chosen = quiet, given, chosen
        self._own_config = self.config = config
        self.callbacks = list(callbacks or [])
        self.changes: dict[str, tuple[Any, Any]] = {}
        self.dist = Dist()
        self._stop_reason: str | None = None

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
                DataLoaders work too: a train loader, or ``(train, test)`` or ``(train, val,
                test)``, collected into memory once (``trainlab.data.loaders``).
            resume: a run directory (or its last.pt) to continue from, or a ``Plan`` that
                holds the checkpoint already (``trainlab.resolve.plan_run``).
            live_plot: draw loss and accuracy per epoch as training goes (one figure updated
                in place in Jupyter; a PNG in the run directory elsewhere).
        """
        self.model = model  # for callbacks, as Lightning's trainer.model
        with to_stderr(quiet=self.quiet):  # what the CLI shows; warnings only when quiet
            plan = self._plan(resume)
            if not isinstance(data, Dataset):
                data = self._collect(data, plan)
            started = start(plan)
            return self.run(build(started, model, cut_data(started, data)), live_plot=live_plot)

    def _collect(self, loaders: Any, plan: Plan) -> Dataset:
        """DataLoaders into a Dataset, once; a loader's batch size is the run's unless one was
        chosen."""
        from trainlab.data.loaders import dataset_from_loaders

        data = dataset_from_loaders(loaders, seed=plan.config.effective_data_seed)
        first = loaders[0] if isinstance(loaders, tuple | list) else loaders
        size = getattr(first, "batch_size", None)
        if isinstance(size, int) and size > 0 and "batch_size" not in plan.chosen:
            plan.config = plan.config.replace(batch_size=size)
            plan.notes["batch_size"] = f"--batch-size {size}, the train loader's"
        say(f"{data.info['collected']}; trainlab batches them itself (seeded shuffles)")
        return data

    def _plan(self, resume: str | Path | Plan | None) -> Plan:
        """This Trainer's settings as a plan; on resume, the saved run's with them on top."""
        if isinstance(resume, Plan):
            return resume
        if resume is None:
            return Plan(self._own_config, {}, chosen=self._chosen)
        given = self._given if self._given is not None else settings_of(self._own_config)
        return plan_run(given, resume=resume, source=str(resume))

    def run(self, run: Run, *, live_plot: bool = False) -> FitResult:
        """Restore ``run`` (or open its new run directory) and train it to its last epoch."""
        self.model, self.dist = run.model, run.dist
        self.changes, self._stop_reason = dict(run.plan.changed), None
        self.config = run.config
        added = self._config_callbacks(run, live_plot)
        self.callbacks += added
        position = None
        try:
            position = self._open_run(run)
            self._current = (run, position)
            return self._loop(run, position)
        except DistributedError as e:
            raise DistributedError(f"{e} {kept_message(position)}") from None
        except RuntimeError as e:
            if not (run.dist.active and is_backend_failure(e)):
                raise
            raise DistributedError(f"{peer_failure(e)} {kept_message(position)}") from None
        finally:  # this fit's own callbacks, config and threads only: a later fit() starts afresh
            for callback in added:
                self.callbacks.remove(callback)
            self.config = self._own_config
            if run.threads is not None:
                run.threads.finish()

    def _config_callbacks(self, run: Run, live_plot: bool) -> list[Callback]:
        from trainlab.report.console import ConsoleLogger

        cfg, main = run.config, run.dist.main
        added: list[Callback] = []
        shown = any(isinstance(c, ConsoleLogger) for c in self.callbacks)
        if main and not self.quiet and not shown:
            added.append(ConsoleLogger(cfg.log_every))
        if cfg.clip_grad:
            added.append(GradientClipping(cfg.clip_grad))
        if cfg.ema:
            added.append(WeightAverage(run.model, cfg.ema))
        if cfg.budget:
            added.append(budget_guard(run.description["budget"], run.checkpoint))
        if main and cfg.tensorboard:
            from trainlab.report.tensorboard import TensorBoardLogger

            added.append(TensorBoardLogger(cfg.log_every))
        if main and live_plot:
            from trainlab.report.live import LivePlotCallback

            added.append(LivePlotCallback())
        if cfg.early_stop:
            best = run.best
            added.append(EarlyStopping(best.monitor, best.mode, cfg.early_stop, cfg.min_delta))
        return added

    # --- restore: open a new run directory, or put a checkpoint's state back ----------------

    def _open_run(self, run: Run) -> Position:
        dist, cfg, checkpoint = run.dist, run.config, run.checkpoint
        if checkpoint is None:
            run_dir = runs.new_run_dir(cfg.runs_dir, cfg.run_name, cfg.model) if dist.main else None
            position = Position(Path(dist.broadcast(str(run_dir) if run_dir else None)))
        else:
            position = Position(
                Path(checkpoint["path"]).parent, checkpoint["epoch"], checkpoint["batch"]
            )
            position.saved = (position.epoch, position.batch)
            position.partial = restore_state(checkpoint, run.setup, run.best, self.callbacks)
            if dist.main:
                runs.restore_metrics(position.run_dir, checkpoint, position.epoch)
        if not dist.main:  # only global rank 0 writes the run directory
            saved = (checkpoint.get("history") or []) if checkpoint else []
            position.history = list(saved[: position.epoch])
            return position
        position.history = runs.read_metrics(position.run_dir)
        runs.write_skipped(position.run_dir, run.data.info.get("skipped", []))
        position.resumed = (position.epoch, position.batch) if checkpoint is not None else None
        self._write_record(run, position)
        return position

    def _write_record(self, run: Run, position: Position) -> None:
        runs.write_config(
            position.run_dir,
            run.description,
            counts={"train": run.setup.train.num_samples}
            | {name: b.num_samples for name, b in run.setup.splits.items()},
            best=run.best,
            resumed=position.resumed,
            device=str(run.setup.device),
        )

    def replan(self, epochs: int, budget: dict[str, Any]) -> None:
        """Run ``epochs`` epochs in all, from the next one on (``--budget``, revised from its
        first epoch's measured time; every rank calls it with the same values): the schedule
        is computed on the new count from here, and config.toml, the next checkpoints and a
        resume say it."""
        run, position = self._current
        run.config = self.config = run.config.replace(epochs=epochs)
        run.description["config"]["epochs"] = epochs
        run.description["budget"] = {**run.description.get("budget", {}), **budget}
        if run.dist.main:
            self._write_record(run, position)

    # --- the epoch loop ------------------------------------------------------------------

    def _loop(self, run: Run, position: Position) -> FitResult:
        cfg, dist, setup, best = run.config, run.dist, run.setup, run.best
        run_dir, history = position.run_dir, position.history
        result = FitResult(run_dir, "completed", history, best.state_dict(), run_dir / "last.pt")
        result.best_path = run_dir / "best.pt" if (run_dir / "best.pt").exists() else None
        result.config = cfg
        self._emit("on_fit_start", start_info(run, position, self.changes))
        with StopFlag(dist.launched) as stop:
            epoch = position.epoch - 1
            while (epoch := epoch + 1) < run.config.epochs:  # a --budget may revise the count
                row = self._train_epoch(run, position, epoch, stop)
                if row is None:
                    result.status = "interrupted"
                    break
                if run.features is not None and epoch == position.epoch:
                    # the first epoch of this fit waited for the features: its cost says so
                    row["feature_seconds"] = round(run.features.seconds, 3)
                    row["seconds"] = round(row["seconds"] + run.features.seconds, 3)
                if run.threads is not None:  # a neighbour came or went: its share, no more
                    changed = run.threads.recheck()
                    if changed is not None:
                        row["threads_next"] = changed  # the count the next epoch runs on
                history.append(row)
                improved = best.update(row)
                self._emit("on_epoch_end", row)
                stopping = dist.any(self._stop_reason is not None, setup.device)
                if stopping:
                    result.stopped = row["stop"] = self._stopped(epoch, dist)
                # checkpoints first: metrics.jsonl never claims an epoch last.pt does not hold
                self._save(run, position, "last.pt", epoch + 1, 0, None)
                if improved:
                    with averaged_weights(self.callbacks):
                        self._save(run, position, "best.pt", epoch + 1, 0, None)
                    result.best_path = run_dir / "best.pt"
                if dist.main:
                    runs.append_metrics(run_dir, row)
                result.best = best.state_dict()
                if stopping:
                    result.status = "stopped early"
                    if dist.main:
                        runs.record_stop(run_dir, result.stopped)
                    break
                if dist.any(stop.requested, setup.device) and epoch + 1 < run.config.epochs:
                    result.status = "interrupted"
                    break
        result.config = run.config  # a --budget may have revised its epochs
        done = result.status != "interrupted" and result.best_path is not None
        if dist.main and done and run.data.kind_entry.task.has_classes:
            finish_classification(run, result)
        dist.barrier()  # no rank leaves while rank 0 still writes (an early exit aborts gloo)
        self._emit("on_fit_end", result)
        return result

    def _stopped(self, epoch: int, dist: Dist) -> dict[str, Any]:
        reason = dist.broadcast(self._stop_reason)  # rank 0's words for every rank's record
        return {"epoch": epoch + 1, "reason": reason or "a callback asked to stop"}

    def _train_epoch(self, run: Run, position: Position, epoch: int, stop: StopFlag):
        """One epoch (from where a resume left it); its metrics row, or None if interrupted."""
        cfg, dist, setup = run.config, run.dist, run.setup
        counts = counts_for(run.data.kind_entry.task, run.data.num_classes, setup.device)
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
            self._save(run, position, "last.pt", epoch, state.batch, counts)
            if dist.any(stop.requested, setup.device):
                return None
        with averaged_weights(self.callbacks):  # --ema: the average is what is scored
            return epoch_row(epoch, counts, seen_before, began, run.model, run.data, setup)

    def _save(self, run: Run, position: Position, name: str, epoch: int, batch: int, counts):
        # every rank takes part (counts and random states are gathered); rank 0 writes
        dist = run.dist
        total = dist.sum_counts(counts) if counts is not None else None
        payload = checkpoint_payload(
            run.description,
            run.model,
            run.setup,
            run.best,
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


def kept_message(position: Position | None) -> str:
    if position is None or position.saved is None:
        return "No checkpoint was written by this job yet."
    epoch, batch = position.saved
    where = f"epoch {epoch + 1}, batch {batch}" if batch else f"after epoch {epoch}"
    return (
        f"The run's last.pt ({where}) is intact. Resume with: torchrun ... -m trainlab "
        f"train --resume {position.run_dir}"
    )
