"""A live line plot that works in Jupyter, in a terminal and headless, and never blocks.

Example:
    >>> plot = LivePlot(xlabel="epoch", legend=["train loss", "test acc"], xlim=[1, 10])
    >>> plot.add(1, (0.52, 0.81))

- In Jupyter (an IPython kernel is running): one figure updated in place.
- Elsewhere (terminal, CI): matplotlib's Agg backend, no window; the figure is rewritten to a PNG
  whose path is printed once, and each ``add`` prints one line with the values.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from typing_extensions import override

from trainlab.engine.callbacks import Callback


def in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython() if hasattr(shell, "get_ipython") else None
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def pyplot():
    """matplotlib.pyplot, on the Agg backend unless a notebook is running (never a window)."""
    import matplotlib

    if not in_notebook():
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


class LivePlot:
    """Incrementally plot several lines (d2l's ``Animator``, with the same arguments)."""

    def __init__(
        self,
        xlabel=None,
        ylabel=None,
        legend=None,
        xlim=None,
        ylim=None,
        xscale="linear",
        yscale="linear",
        fmts=("-", "m--", "g-.", "r:"),
        nrows=1,
        ncols=1,
        figsize=(3.5, 2.5),
        path: str | Path | None = None,
        stream=None,
    ):
        self.plt = pyplot()
        self.fig, axes = self.plt.subplots(nrows, ncols, figsize=figsize)
        self.axes = list(axes.flat) if nrows * ncols > 1 else [axes]
        self.xlabel, self.ylabel, self.legend = xlabel, ylabel, list(legend or [])
        self.xlim, self.ylim, self.xscale, self.yscale = xlim, ylim, xscale, yscale
        self.fmts = fmts
        self.X: list[list[float]] | None = None
        self.Y: list[list[float]] | None = None
        self.notebook = in_notebook()
        if self.notebook:
            # Detach the figure from pyplot: the inline backend shows every open figure again
            # when the cell ends, which would leave a second copy below the live one.
            # ``display(fig)`` still renders a closed figure.
            self.plt.close(self.fig)
        self.path = Path(path) if path else Path("animator.png")
        self.stream = stream or sys.stderr
        self._announced = False
        self._handle = None

    def config_axes(self) -> None:
        ax = self.axes[0]
        ax.set_xlabel(self.xlabel)
        ax.set_ylabel(self.ylabel)
        ax.set_xscale(self.xscale)
        ax.set_yscale(self.yscale)
        if self.xlim:
            ax.set_xlim(self.xlim)
        if self.ylim:
            ax.set_ylim(self.ylim)
        if self.legend:
            ax.legend(self.legend)
        ax.grid(True)

    def add(self, x, y) -> None:
        """Add one point to each line (``None`` skips a line for this x)."""
        if not hasattr(y, "__len__"):
            y = [y]
        n = len(y)
        if not hasattr(x, "__len__"):
            x = [x] * n
        if not self.X:
            self.X = [[] for _ in range(n)]
        if not self.Y:
            self.Y = [[] for _ in range(n)]
        for i, (a, b) in enumerate(zip(x, y, strict=False)):
            if a is not None and b is not None:
                self.X[i].append(float(a))
                self.Y[i].append(float(b))
        ax = self.axes[0]
        ax.cla()
        for xs, ys, fmt in zip(self.X, self.Y, self.fmts, strict=False):
            ax.plot(xs, ys, fmt)
        self.config_axes()
        self._show(x, y)

    def _show(self, x: Sequence, y: Sequence) -> None:
        if self.notebook:
            from IPython import display

            if self._handle is None:
                self._handle = display.display(self.fig, display_id=True)
            else:
                self._handle.update(self.fig)
            return
        self.save(self.path)
        if not self._announced:
            print(
                f"live plot: {self.path.resolve()} (rewritten at each point)",
                file=self.stream,
                flush=True,
            )
            self._announced = True
        names = self.legend or [f"y{i}" for i in range(len(y))]
        values = "  ".join(
            f"{name} {float(v):.4f}" for name, v in zip(names, y, strict=False) if v is not None
        )
        print(f"{self.xlabel or 'x'} {float(x[0]):g}: {values}", file=self.stream, flush=True)

    def save(self, path: str | Path) -> Path:
        from trainlab.fsutil import atomic_write

        path = Path(path)
        atomic_write(
            path, lambda tmp: self.fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
        )
        return path

    def close(self) -> None:
        self.plt.close(self.fig)


class LivePlotCallback(Callback):
    """``Trainer.fit(..., live_plot=True)``: d2l's Animator picture, updated each epoch."""

    def __init__(self, path=None):
        self.path = path
        self.plot = None
        self.keys: list[str] = []

    @override
    def on_fit_start(self, trainer, info: dict[str, Any]) -> None:
        from trainlab.report.live import LivePlot

        self.keys = [
            "train_loss",
            "train_acc",
            *(["val_acc"] if info["monitor"].startswith("val") else []),
            "test_acc",
        ]
        self.plot = LivePlot(
            xlabel="epoch",
            xlim=[1, info["epochs"]],
            legend=[k.replace("_", " ") for k in self.keys],
            path=self.path or info["run_dir"] / "live.png",
            fmts=("-", "m--", "g-.", "r:"),
        )

    @override
    def on_epoch_end(self, trainer, row: dict[str, Any]) -> None:
        self.plot.add(row["epoch"], tuple(row.get(k) for k in self.keys))

    @override
    def on_fit_end(self, trainer, result) -> None:
        if self.plot is not None:
            self.plot.close()
