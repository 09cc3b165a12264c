"""Plain progress lines on stderr: one per epoch, and one every ``log_every`` batches."""

from __future__ import annotations

import sys
import time
from typing import Any

from trainlab.engine.trainer import Callback


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


class ConsoleLogger(Callback):
    def __init__(self, log_every: int = 0, stream=None, quiet: bool = False):
        self.log_every, self.quiet = log_every, quiet
        self.stream = stream or sys.stderr
        self.epochs = 0
        self._began = 0.0

    def _print(self, line: str) -> None:
        if not self.quiet:
            print(line, file=self.stream, flush=True)

    def on_fit_start(self, trainer, info: dict[str, Any]) -> None:
        self.epochs = info["epochs"]
        self._began = time.perf_counter()
        resumed = f", resuming at epoch {info['start_epoch'] + 1}" if info["start_epoch"] else ""
        self._print(
            f"run {info['run_dir']} on {info['device']} ({info['amp']}): "
            f"{info['train_samples']} training "
            f"samples, {info['steps_per_epoch']} batches per epoch{resumed}"
        )

    def on_batch_end(self, trainer, state, loss_sum, num_batches: int) -> None:
        if self.log_every and state.batch % self.log_every == 0:
            # One sync here, only every log_every batches.
            loss = float(loss_sum) / max(1, min(trainer.config.batch_size, state.counts.n))
            self._print(
                f"epoch {state.epoch + 1}/{self.epochs} batch {state.batch}/{num_batches} "
                f"loss {loss:.4f}"
            )

    def on_epoch_end(self, trainer, row: dict[str, Any]) -> None:
        parts = [f"epoch {row['epoch']}/{self.epochs}", f"train loss {row['train_loss']:.4f}"]
        if "train_acc" in row:
            parts.append(f"acc {_pct(row['train_acc'])}")
        for split in ("val", "test"):
            if f"{split}_loss" in row:
                parts.append(f"{split} loss {row[f'{split}_loss']:.4f}")
                if f"{split}_acc" in row:
                    parts.append(f"acc {_pct(row[f'{split}_acc'])}")
        if "w_error" in row:
            parts.append(
                f"w error {[round(e, 4) for e in row['w_error']]} b error {row['b_error']:.4f}"
            )
        parts.append(f"{row['seconds']:.1f}s ({row['images_per_s']:,.0f} img/s)")
        self._print("  ".join(parts))
