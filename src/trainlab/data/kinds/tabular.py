"""Rows of float features with a class each (the seeds' N×D feature matrices): standardised
per feature with the training split's mean and std (recorded with the run, applied per batch
by eval, predict and export too), never augmented or flipped; predict and serve of files do
not apply.

A ``Dataset`` given its own ``mean=``/``std=`` keeps them; ``mean=[0.0], std=[1.0]`` uses the
features as they are. Runs recorded before features were standardised keep their (empty)
statistics, so they evaluate as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trainlab.data.kinds.base import Kind
from trainlab.errors import ConfigError


class TabularKind(Kind):
    name = "tabular"
    summary = "rows of numeric features"

    def channel_stats(self, train_x: Any) -> tuple[list[float], list[float]]:
        """Each feature's mean and std over the training split (std 1 for a constant one):
        an MLP on raw features of very different scales (scikit-learn's breast cancer) sits
        at the majority class."""
        if train_x.dim() != 2 or not train_x.dtype.is_floating_point or len(train_x) < 2:
            return [], []
        x = train_x.double()
        mean, std = x.mean(0), x.std(0, unbiased=False)
        std = std.where(std > 1e-12, std.new_ones(()))
        return mean.tolist(), std.tolist()

    def input_transform(
        self,
        data: Any,
        record: dict[str, Any],  # noqa: ARG002
        norm: tuple[Sequence[float], Sequence[float]],
        channels_last: bool,  # noqa: ARG002
    ):
        from trainlab.data.batches import InputTransform

        if norm[0]:
            raise ConfigError(
                f"--norm-mean/--norm-std apply to images; dataset '{data.name}' holds "
                f"{self.summary}, standardised with its own statistics. Drop them."
            )
        return InputTransform(data.mean, data.std)


def _register() -> None:
    from trainlab.data.kinds import register_kind

    register_kind(TabularKind())


_register()
