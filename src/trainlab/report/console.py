"""Progress on stderr: a bar per epoch on a terminal, plain lines everywhere else.

On a terminal (stderr is a TTY): a tqdm bar per epoch with batches done, images/s, ETA and the
running loss (read from the device at most every half second), then one summary line per epoch.
Elsewhere (CI, pipes, log files): a plain line every ``log_every`` batches and one per epoch,
with no carriage returns or escape codes. ``quiet`` prints nothing; results go to stdout.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from typing_extensions import override

from trainlab.engine.callbacks import Callback
from trainlab.resolve import describe_changes


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def epoch_summary(row: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}", f"train loss {row['train_loss']:.4f}"]
    if "train_acc" in row:
        parts.append(f"acc {_pct(row['train_acc'])}")
    for split in ("val", "test"):
        if f"{split}_loss" in row:
            parts.append(f"{split} loss {row[f'{split}_loss']:.4f}")
            if f"{split}_acc" in row:
                parts.append(f"acc {_pct(row[f'{split}_acc'])}")
            if f"{split}_micro_f1" in row:  # multi-label
                parts.append(f"micro-F1 {row[f'{split}_micro_f1']:.4f}")
    if "w_error" in row:
        errors = [round(e, 4) for e in row["w_error"]]
        parts.append(f"w error {errors} b error {row['b_error']:.4f}")
    rate, unit = (
        (row["images_per_s"], "img/s")
        if "images_per_s" in row
        else (
            row.get("samples_per_s", 0.0),
            "samples/s",
        )
    )
    parts.append(f"{row['seconds']:.1f}s ({rate:,.0f} {unit})")
    return "  ".join(parts)


class ConsoleLogger(Callback):
    """Progress output for people; never changes what is computed."""

    def __init__(
        self, log_every: int = 0, stream=None, quiet: bool = False, bar: bool | None = None
    ):
        from trainlab.report.live import in_notebook

        self.log_every, self.quiet = log_every, quiet
        self.stream = stream or sys.stderr
        isatty = getattr(self.stream, "isatty", lambda: False)()
        self.notebook = stream is None and in_notebook()  # a widget bar in Jupyter
        self.bar_enabled = (isatty or self.notebook) if bar is None else bar
        self.epochs = 0
        self._bar = None
        self._last_refresh = 0.0
        self._running = (0.0, 0)  # (Σ loss, n) since the last refresh, for the bar's loss

    def _print(self, line: str) -> None:
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    @override
    def on_fit_start(self, trainer, info: dict[str, Any]) -> None:
        self.epochs = info["epochs"]
        self.batch_size = trainer.config.batch_size
        resumed = ""
        if info.get("resumed"):
            resumed = f", resuming at epoch {info['start_epoch'] + 1}"
            if info.get("start_batch"):
                resumed += f" batch {info['start_batch'] + 1}/{info['steps_per_epoch']}"
        if info.get("resumed"):
            self._print(describe_changes(info.get("changes") or {}))
        self._print(
            f"run {info['run_dir']} on {info['device']} ({info['amp']}): "
            f"{info['train_samples']} training samples, {info['steps_per_epoch']} "
            f"batches per epoch{resumed}"
        )

    def _open_bar(self, state, num_batches: int) -> None:
        if self.notebook:
            from tqdm.auto import tqdm
        else:
            from tqdm import tqdm

        # Some pseudo-terminals (`script -qc`, some CI runners) report a 0×0 size, where tqdm
        # sizes the bar to nothing and hides it below "row 0": use a fixed 100×24 there.
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            columns = 0
        self._bar = tqdm(
            total=num_batches,
            initial=state.batch - 1,
            file=self.stream,
            desc=f"epoch {state.epoch + 1}/{self.epochs}",
            unit="batch",
            leave=False,
            mininterval=0.25,
            dynamic_ncols=columns > 0,
            ncols=None if columns > 0 else 100,
            nrows=None if columns > 0 else 24,
        )

    @override
    def on_batch_end(self, trainer, state, loss_sum, num_batches: int) -> None:
        if self.quiet:
            return
        self.epochs = trainer.config.epochs  # a --budget revises its count after the first
        if self.bar_enabled:
            if self._bar is None:
                self._open_bar(state, num_batches)
            self._bar.update(1)
            now = time.perf_counter()
            if now - self._last_refresh > 0.5:  # one device sync per refresh, not per batch
                self._last_refresh = now
                rate = self._bar.format_dict.get("rate") or 0.0
                self._bar.set_postfix_str(
                    f"loss {float(loss_sum) / self.batch_size:.4f}  "
                    f"{rate * self.batch_size:,.0f} img/s",
                    refresh=False,
                )
            return
        if self.log_every and state.batch % self.log_every == 0:
            loss = float(loss_sum) / max(1, min(self.batch_size, state.counts.n))
            self._print(
                f"epoch {state.epoch + 1}/{self.epochs} batch {state.batch}/{num_batches} "
                f"loss {loss:.4f}"
            )

    @override
    def on_epoch_end(self, trainer, row: dict[str, Any]) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._print(epoch_summary(row, trainer.config.epochs))

    @override
    def on_fit_end(self, trainer, result) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if result.stopped:
            self._print(
                f"stopped after epoch {result.stopped['epoch']}: {result.stopped['reason']}"
            )
