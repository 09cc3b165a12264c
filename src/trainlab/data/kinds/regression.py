"""Float features with float targets (d2l's synthetic linear data): a regression task, scored
by its loss."""

from __future__ import annotations

from trainlab.data.kinds.tabular import TabularKind
from trainlab.data.kinds.tasks import REGRESSION


class RegressionKind(TabularKind):
    name = "regression"
    summary = "numeric features with numeric targets"
    task = REGRESSION


def _register() -> None:
    from trainlab.data.kinds import register_kind

    register_kind(RegressionKind())


_register()
