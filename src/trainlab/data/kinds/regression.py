"""Float features with float targets (d2l's synthetic linear data): a regression task, scored
by its loss."""

from __future__ import annotations

from typing import Any

from trainlab.data.kinds.tabular import TabularKind
from trainlab.data.kinds.tasks import REGRESSION


class RegressionKind(TabularKind):
    name = "regression"
    summary = "numeric features with numeric targets"
    task = REGRESSION

    def channel_stats(self, train_x: Any) -> tuple[list[float], list[float]]:  # noqa: ARG002
        """None: a linear model's weights are read in the features' own units (d2l's
        ``true_w``), so regression features are used as given."""
        return [], []


def _register() -> None:
    from trainlab.data.kinds import register_kind

    register_kind(RegressionKind())


_register()
