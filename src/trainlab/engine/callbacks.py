"""The events a run emits (``Callback``), the callbacks that steer it, and what a fit returns.

Callbacks observe the run; two kinds may also steer it, through the trainer and never by
touching the loop's arithmetic behind its back:
- any callback may ask the loop to stop after this epoch with ``trainer.request_stop(reason)``
  (``EarlyStopping`` does; a sweep's pruner would);
- ``on_before_step`` sees the gradients before each optimizer step (``GradientClipping``).

Presentation (console, TensorBoard, live plot) lives in ``trainlab.report`` and implements these
hooks; the engine knows none of it. A callback with ``state_key`` keeps its state in every
checkpoint, so it survives Ctrl-C and resume. ``all_ranks = True`` runs it on every process of
a torchrun job (steering must agree everywhere); the others run on rank 0 only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from trainlab.engine.loop import EpochState


class Callback:
    """Hooks a callback may implement.

    ``on_fit_start`` gets a dict with run_dir, device, amp, epochs, start_epoch, start_batch,
    steps_per_epoch, train_samples, monitor and changes (a resume's changed settings).
    """

    all_ranks = False
    state_key: str | None = None

    def on_fit_start(self, trainer: Any, info: dict[str, Any]) -> None: ...
    def on_before_step(self, trainer: Any, model: torch.nn.Module) -> None: ...
    def on_batch_end(
        self, trainer: Any, state: EpochState, loss_sum: torch.Tensor, num_batches: int
    ) -> None: ...
    def on_epoch_end(self, trainer: Any, row: dict[str, Any]) -> None: ...
    def on_fit_end(self, trainer: Any, result: FitResult) -> None: ...
    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs in a row (Keras' and Lightning's rule). Its state lives in the checkpoints."""

    all_ranks = True
    state_key = "early_stop"

    def __init__(self, monitor: str, mode: str, patience: int, min_delta: float = 0.0):
        self.monitor, self.mode, self.patience, self.min_delta = monitor, mode, patience, min_delta
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0

    def improved(self, value: float) -> bool:
        if self.best is None:
            return math.isfinite(value)
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def on_epoch_end(self, trainer: Any, row: dict[str, Any]) -> None:
        value = row[self.monitor]
        if self.improved(value):
            self.best, self.best_epoch, self.wait = value, row["epoch"], 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            trainer.request_stop(
                f"early stop: {self.monitor} did not improve by more than {self.min_delta:g} "
                f"for {self.patience} epoch(s); best {self.best:.4f} at epoch {self.best_epoch}"
            )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]


class GradientClipping(Callback):
    """Clip the global L2 norm of the gradients before each optimizer step."""

    all_ranks = True

    def __init__(self, max_norm: float):
        self.max_norm = max_norm

    def on_before_step(self, trainer: Any, model: torch.nn.Module) -> None:  # noqa: ARG002
        import torch

        torch.nn.utils.clip_grad_norm_(model.parameters(), self.max_norm)


@dataclass
class FitResult:
    run_dir: Path
    status: str  # "completed", "stopped early" or "interrupted"
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=dict)
    last_path: Path | None = None
    best_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    config: Any = None  # the TrainConfig that ran
    stopped: dict[str, Any] | None = None  # why and when training stopped early

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}
