"""Rows of float features with a class each (the seeds' N×D feature matrices): used as they
are, never augmented or flipped; predict and serve of files do not apply."""

from __future__ import annotations

from trainlab.data.kinds.base import Kind


class TabularKind(Kind):
    name = "tabular"
    summary = "rows of numeric features"


def _register() -> None:
    from trainlab.data.kinds import register_kind

    register_kind(TabularKind())


_register()
