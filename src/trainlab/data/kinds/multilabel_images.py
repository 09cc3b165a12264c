"""Images with a set of labels each ("beach sunset people"): read, resized and augmented as
other images are, with a multi-label task (one sigmoid per label, binary cross-entropy,
per-label thresholds tuned on the validation split; see ``trainlab.data.multilabel``).

Its targets are multi-hot: a float32 N×K tensor of 0 and 1, one column per class. predict,
serve and export answer with the labels whose probability reaches the label's threshold.
"""

from __future__ import annotations

from typing import Any

from trainlab.data.kinds.base import Page
from trainlab.data.kinds.images import ImageKind
from trainlab.data.kinds.tasks import MULTILABEL


class MultiLabelImageKind(ImageKind):
    name = "multilabel-images"
    summary = "images with several labels each"
    task = MULTILABEL
    page = Page("Label a photo", "photo", "upload a photo, or take one")

    def graph_input(self, data: dict[str, Any]) -> str:
        return super().graph_input(data) + "; outputs: one probability per label (sigmoid)"


def _register() -> None:
    from trainlab.data.kinds import register_kind

    register_kind(MultiLabelImageKind())


_register()
