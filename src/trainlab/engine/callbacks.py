"""The events a run emits (``Callback``) and what a fit returns (``FitResult``).

Callbacks observe; they never change the arithmetic. Presentation (console, TensorBoard, live
plot) lives in ``trainlab.report`` and implements these hooks; the engine knows none of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from trainlab.engine.loop import EpochState


class Callback:
    """Hooks a callback may implement; each only observes.

    ``on_fit_start`` gets a dict with run_dir, device, amp, epochs, start_epoch, start_batch,
    steps_per_epoch, train_samples, monitor and changes (a resume's changed settings).
    """

    def on_fit_start(self, trainer: Any, info: dict[str, Any]) -> None: ...
    def on_batch_end(
        self, trainer: Any, state: EpochState, loss_sum: torch.Tensor, num_batches: int
    ) -> None: ...
    def on_epoch_end(self, trainer: Any, row: dict[str, Any]) -> None: ...
    def on_fit_end(self, trainer: Any, result: FitResult) -> None: ...


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
