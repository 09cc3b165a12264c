"""``Trainer``: composes ``train_one_epoch`` and ``evaluate`` into a run with checkpoints.

Example:
    >>> from trainlab import Trainer, build_model, load_dataset
    >>> data = load_dataset("mnist")
    >>> model = build_model("lenet-relu", data)
    >>> result = Trainer(epochs=3, lr=0.1).fit(model, data)
    >>> result.history[-1]["test_acc"], result.run_dir

The run reads top to bottom in ``Trainer._fit``: data to the device, optimizer, (resume), then
per epoch train -> check the loss is finite -> evaluate -> write metrics -> checkpoint. Callbacks
observe the events; stopping (Ctrl-C) goes through a flag checked between batches, so the checkpoint
written on the way out is consistent and resumes exactly.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainlab import runs
from trainlab.config import TrainConfig
from trainlab.data.batches import Batches, InputTransform
from trainlab.data.dataset import Dataset
from trainlab.engine.checkpoint import load_checkpoint, load_weights, save_checkpoint
from trainlab.engine.device import autocast_dtype, resolve_device
from trainlab.engine.loop import EpochState, evaluate, loss_function, train_one_epoch
from trainlab.engine.metrics import Counts
from trainlab.engine.optim import build_optimizer, lr_at
from trainlab.errors import CheckpointError, ConfigError, TrainingDiverged


class Callback:
    """Hooks a callback may implement; each only observes."""

    def on_fit_start(self, trainer: Trainer, info: dict[str, Any]) -> None: ...
    def on_batch_end(
        self, trainer: Trainer, state: EpochState, loss_sum: torch.Tensor, num_batches: int
    ) -> None: ...
    def on_epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None: ...
    def on_fit_end(self, trainer: Trainer, result: FitResult) -> None: ...


@dataclass
class FitResult:
    run_dir: Path
    status: str  # "completed" or "interrupted"
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=dict)
    last_path: Path | None = None
    best_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}


class _StopFlag:
    """Set by the first Ctrl-C; a second one interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:  # noqa: ANN001
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            "\ninterrupt: finishing this batch and saving a checkpoint (Ctrl-C again to abort)",
            file=sys.stderr,
            flush=True,
        )

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def model_record(model: nn.Module) -> dict[str, Any] | None:
    """How to rebuild a registry model (set by ``build_model``); None for other modules."""
    return getattr(model, "trainlab_record", None)


def has_convs(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def input_transform(model: nn.Module, data: Dataset, channels_last: bool = False) -> InputTransform:
    """The per-batch preprocessing the model needs for this data."""
    if not data.is_image:
        return InputTransform()
    record = model_record(model) or {}
    size = record.get("size")
    return InputTransform(
        mean=data.mean,
        std=data.std,
        size=tuple(size) if size else None,
        channels=record.get("channels"),
        channels_last=channels_last and has_convs(model),
    )


def loss_kind(cfg: TrainConfig, model: nn.Module, data: Dataset) -> str:
    if cfg.loss != "auto":
        return cfg.loss
    output = (model_record(model) or {}).get("output")
    if data.task == "regression":
        return "mse"
    return "nll" if output == "log_probs" else "cross-entropy"


class Trainer:
    """Fits a model to a ``Dataset`` under a ``TrainConfig``.

    Args:
        config: the run's settings (default: ``TrainConfig()``).
        callbacks: observers of the run's events.
        **overrides: config fields to change, e.g. ``Trainer(epochs=3, lr=0.1)``.
    """

    def __init__(
        self,
        config: TrainConfig | None = None,
        *,
        callbacks: list[Callback] | None = None,
        **overrides: Any,
    ):
        config = config or TrainConfig()
        self.config = config.replace(**overrides) if overrides else config
        self.callbacks = list(callbacks or [])
        if self.config.tensorboard:
            from trainlab.engine.observers import TensorBoardLogger

            self.callbacks.append(TensorBoardLogger(self.config.log_every))
        self.device = resolve_device(self.config.device)

    def _emit(self, event: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, event)(self, *args)

    def fit(
        self,
        model: nn.Module,
        data: Dataset,
        *,
        resume: str | Path | None = None,
        live_plot: bool = False,
    ) -> FitResult:
        """Train ``model`` on ``data``; write the run directory; return history and checkpoints.

        Args:
            model: a module (ideally from ``build_model``, so checkpoints can rebuild it).
            data: the dataset; its validation split, if any, chooses the best checkpoint.
            resume: a run directory (or its last.pt) to continue from.
            live_plot: draw loss and accuracy per epoch as training goes (one figure updated
                in place in Jupyter; a PNG in the run directory elsewhere).
        """
        if not live_plot:
            return self._fit(model, data, resume)
        from trainlab.engine.observers import LivePlotCallback

        live = LivePlotCallback()
        self.callbacks.append(live)
        try:
            return self._fit(model, data, resume)
        finally:  # this fit's plot only: a later fit() without live_plot draws nothing
            self.callbacks.remove(live)

    def _fit(self, model: nn.Module, data: Dataset, resume: str | Path | None) -> FitResult:
        cfg, device = self.config, self.device
        torch.manual_seed(cfg.seed)
        model.to(device)
        if cfg.channels_last and has_convs(model):
            model.to(memory_format=torch.channels_last)
        # auto: bf16 only where it was measured to keep accuracy (classification with convs);
        # regression targets and wide linear layers need float32's mantissa.
        amp = cfg.amp
        if amp == "auto" and not (data.task == "classification" and has_convs(model)):
            amp = "off"
        amp_dtype = autocast_dtype(amp, device)
        transform = input_transform(model, data, cfg)
        train_transform = transform
        if cfg.augment and data.is_image:
            from trainlab.data.batches import Augment

            train_transform = transform.with_augment(Augment())
        train = Batches(
            data.train_x,
            data.train_y,
            cfg.batch_size,
            shuffle=True,
            seed=cfg.seed,
            drop_last=cfg.drop_last,
            device=device,
            transform=train_transform,
        )
        if len(train) == 0:
            raise ConfigError(
                f"no training batches: {train.num_samples} samples with batch_size "
                f"{cfg.batch_size} and drop_last. Lower the batch size or keep the last batch."
            )
        splits = {
            "test": Batches(
                data.test_x, data.test_y, cfg.eval_batch_size, device=device, transform=transform
            )
        }
        if data.val_x is not None:
            splits = {
                "val": Batches(
                    data.val_x, data.val_y, cfg.eval_batch_size, device=device, transform=transform
                ),
                **splits,
            }
        classification = data.task == "classification"
        monitor = ("val" if "val" in splits else "test") + ("_acc" if classification else "_loss")
        loss_fn = loss_function(loss_kind(cfg, model, data), cfg.label_smoothing)
        optimizer = build_optimizer(model, cfg)
        steps = len(train)

        start_epoch, start_batch, partial = 0, 0, None
        best: dict[str, Any] = {
            "monitor": monitor,
            "value": None,
            "epoch": None,
            "mode": "max" if classification else "min",
            "why": "validation split"
            if "val" in splits
            else "no validation split, so the test split (use --val-split to hold one out)",
        }
        if resume is not None:
            ckpt = load_checkpoint(Path(resume) / "last.pt" if Path(resume).is_dir() else resume)
            run_dir = Path(ckpt["path"]).parent
            self._check_resumable(ckpt, model, cfg)
            load_weights(model, ckpt["state_dict"], ckpt["path"], cfg.model)
            optimizer.load_state_dict(ckpt["optimizer"])
            torch.set_rng_state(ckpt["rng"]["torch"])
            if device.type == "cuda" and ckpt["rng"].get("cuda"):
                torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
            start_epoch, start_batch, partial = ckpt["epoch"], ckpt["batch"], ckpt.get("partial")
            best = ckpt["best"]
            runs.truncate_metrics(run_dir, start_epoch)
        else:
            run_dir = runs.new_run_dir(cfg.runs_dir, cfg.run_name, cfg.model)
        history = runs.read_metrics(run_dir)
        record = model_record(model)
        base_payload = {
            "config": cfg.to_dict(),
            "model": record or {"name": None, "class": type(model).__name__},
            "data": {
                "name": data.name,
                "classes": data.classes,
                "task": data.task,
                "transform": transform.describe(),
                "input_shape": list(data.input_shape),
            },
        }
        env = runs.environment(str(device))
        runs.write_config(
            run_dir,
            {
                "config": cfg.to_dict(),
                "run": {
                    "id": run_dir.name,
                    "monitor": monitor,
                    "best_checkpoint_chosen_on": best["why"],
                    "resumed_from_epoch": start_epoch if resume else None,
                },
                "data": {
                    "name": data.name,
                    "train": train.num_samples,
                    **{name: b.num_samples for name, b in splits.items()},
                    "classes": data.classes,
                    "mean": data.mean,
                    "std": data.std,
                },
                "model": {
                    **(record or {"class": type(model).__name__}),
                    "parameters": sum(p.numel() for p in model.parameters()),
                },
                "environment": env,
            },
        )

        def payload(epoch: int, batch: int, counts: Counts | None) -> dict[str, Any]:
            rng = {"torch": torch.get_rng_state()}
            if device.type == "cuda":
                rng["cuda"] = torch.cuda.get_rng_state_all()
            return {
                **base_payload,
                "state_dict": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "batch": batch,
                "rng": rng,
                "best": dict(best),
                "partial": counts.state() if counts is not None and batch else None,
                "metrics": history[-1] if history else {},
            }

        result = FitResult(
            run_dir=run_dir,
            status="completed",
            history=history,
            best=best,
            last_path=run_dir / "last.pt",
            best_path=run_dir / "best.pt" if (run_dir / "best.pt").exists() else None,
        )
        self._emit(
            "on_fit_start",
            {
                "run_dir": run_dir,
                "device": str(device),
                "amp": str(amp_dtype).replace("torch.", "") if amp_dtype else "off",
                "epochs": cfg.epochs,
                "start_epoch": start_epoch,
                "steps_per_epoch": steps,
                "train_samples": train.num_samples,
                "monitor": monitor,
            },
        )
        with _StopFlag() as stop:
            for epoch in range(start_epoch, cfg.epochs):
                counts = Counts(data.num_classes, device)
                if partial:
                    counts.load_state(partial)
                state = EpochState(
                    epoch, start_batch, counts, stop_requested=lambda: stop.requested
                )
                start_batch, partial = 0, None
                began = time.perf_counter()
                on_batch = None
                if self.callbacks:

                    def on_batch(s: EpochState, loss_sum: torch.Tensor) -> None:
                        self._emit("on_batch_end", s, loss_sum, steps)

                done = train_one_epoch(
                    model,
                    train,
                    optimizer,
                    loss_fn,
                    state,
                    lambda step: lr_at(cfg, step, steps),
                    on_batch,
                    amp_dtype,
                )
                if not done:
                    save_checkpoint(run_dir / "last.pt", payload(epoch, state.batch, counts))
                    result.status = "interrupted"
                    break
                train_metrics = counts.read()
                self._check_finite(train_metrics.loss, model, epoch, run_dir)
                train_seconds = time.perf_counter() - began
                row: dict[str, Any] = {"epoch": epoch + 1, **train_metrics.as_row("train")}
                for name, batches in splits.items():
                    row.update(
                        evaluate(model, batches, loss_fn, data.num_classes, amp_dtype).as_row(name)
                    )
                row.update(self._regression_errors(model, data))
                row["lr"] = optimizer.param_groups[0]["lr"]
                row["train_seconds"] = round(train_seconds, 3)
                row["seconds"] = round(time.perf_counter() - began, 3)
                row["images_per_s"] = round(train_metrics.n / max(train_seconds, 1e-9), 1)
                row["time"] = round(time.time(), 3)  # wall clock, to time runs from outside
                history.append(row)
                runs.append_metrics(run_dir, row)
                improved = best["value"] is None or (
                    row[monitor] > best["value"]
                    if best["mode"] == "max"
                    else row[monitor] < best["value"]
                )
                if improved:
                    best.update(value=row[monitor], epoch=epoch + 1)
                ckpt = payload(epoch + 1, 0, None)
                save_checkpoint(run_dir / "last.pt", ckpt)
                if improved:
                    save_checkpoint(run_dir / "best.pt", ckpt)
                    result.best_path = run_dir / "best.pt"
                self._emit("on_epoch_end", row)
                if stop.requested and epoch + 1 < cfg.epochs:
                    result.status = "interrupted"
                    break
        if classification and result.status == "completed" and result.best_path is not None:
            self._save_predictions(model, result, splits["test"], data, amp_dtype)
        self._emit("on_fit_end", result)
        return result

    @staticmethod
    def _save_predictions(
        model: nn.Module,
        result: FitResult,
        test: Batches,
        data: Dataset,
        amp_dtype: torch.dtype | None,
    ) -> None:
        """predictions.npz from best.pt's weights (the model keeps its last weights after)."""
        from trainlab.engine.predictions import prediction_arrays, save_predictions

        last = None
        if result.best.get("epoch") != (result.history[-1]["epoch"] if result.history else None):
            last = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best = load_checkpoint(result.best_path)["state_dict"]
            model.load_state_dict(best)
        arrays = prediction_arrays(model, test, data.test_x, data.classes, amp_dtype)
        save_predictions(result.run_dir / "predictions.npz", arrays, "best.pt")
        if last is not None:
            model.load_state_dict(last)

    def _check_resumable(self, ckpt: dict[str, Any], model: nn.Module, cfg: TrainConfig) -> None:
        record = model_record(model) or {}
        saved = ckpt.get("model", {}).get("name")
        if saved and record.get("name") and saved != record["name"]:
            raise CheckpointError(
                f"{ckpt['path']}: the run trained model '{saved}', not '{record['name']}'. Resume "
                "with the run's own model (drop --model) or start a new run."
            )
        if ckpt["epoch"] >= cfg.epochs and not ckpt["batch"]:
            raise ConfigError(
                f"{ckpt['path']}: the run already finished {ckpt['epoch']} of {cfg.epochs} epochs. "
                f"Pass a larger --epochs to train further."
            )

    @staticmethod
    def _check_finite(loss: float, model: nn.Module, epoch: int, run_dir: Path) -> None:
        if math.isfinite(loss):
            return
        kept = run_dir / "last.pt"
        raise TrainingDiverged(
            f"training diverged in epoch {epoch + 1}: the training loss is {loss}. "
            + (
                f"The last good checkpoint ({kept}, after epoch {epoch}) is kept. "
                if epoch
                else "No epoch finished, so there is no checkpoint. "
            )
            + "Lower --lr (or use a schedule with warm-up), or check the data for bad values."
        )

    @staticmethod
    def _regression_errors(model: nn.Module, data: Dataset) -> dict[str, Any]:
        true_w = data.info.get("true_w")
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if true_w is None or len(linears) != 1 or linears[0].in_features != len(true_w):
            return {}
        layer = linears[0]
        w_error = (torch.tensor(true_w) - layer.weight.detach().cpu().reshape(-1)).tolist()
        b_error = float(data.info["true_b"] - layer.bias.detach().cpu().reshape(-1)[0])
        return {"w_error": w_error, "b_error": b_error}
