"""The ``Kind`` every kind of data subclasses: the defaults, and what each one may override."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from trainlab.data.kinds.tasks import CLASSIFICATION, Task
from trainlab.errors import ConfigError


@dataclass(frozen=True)
class Page:
    """What the serve page offers for a kind's inputs.

    Args:
        title: the page's heading ("Draw a digit").
        input: "draw" (a drawing pad, and an upload) or "photo" (an upload, and the camera
            on a phone).
        hint: shown before the first answer.
    """

    title: str
    input: str
    hint: str


# What turns one input a person gives (a path, bytes, a PIL image, an array) into the model's
# input: ``reader(source, name) -> trainlab.data.images.Prepared``.
Reader = Callable[[Any, str | None], Any]


class Kind:
    """A kind of data. Subclasses set the class attributes and override what differs.

    Attributes:
        name: the registry name, recorded with every dataset and run.
        summary: one line for listings.
        task: the task family (loss, metrics, the monitor of best.pt).
        page: what ``trainlab serve``'s page offers; None: no page (nor predict of files).
        rate: the name of the epoch's throughput in metrics.jsonl.
        images: its inputs are uint8 images N×C×H×W (float images in [0, 1] are converted);
            otherwise float inputs are used as they are.
    """

    name = ""
    summary = ""
    task: Task = CLASSIFICATION
    page: Page | None = None
    rate = "samples_per_s"
    images = False
    rows = False  # predict and serve take rows of named cells (a table), not files

    # --- training -----------------------------------------------------------------------
    def augmentation(self, size: Sequence[int], dataset: str, strength: str = "basic") -> Callable:  # noqa: ARG002
        """What ``--augment STRENGTH`` (basic or strong) does to a training batch of this kind
        (images of ``size``)."""
        raise ConfigError(
            f"--augment changes images; dataset '{dataset}' holds {self.summary}. Drop it."
        )

    def check_tta(self, tta: str, dataset: str) -> None:
        """Refuse a ``--tta`` this kind cannot use (only "none" by default)."""
        if tta != "none":
            raise ConfigError(
                f"--tta {tta} mirrors images; dataset '{dataset}' holds {self.summary}. Drop it."
            )

    def input_transform(
        self,
        data: Any,
        record: dict[str, Any],  # noqa: ARG002
        norm: tuple[Sequence[float], Sequence[float]],
        channels_last: bool,  # noqa: ARG002
    ):
        """The per-batch preprocessing of this kind's inputs, for a model with ``record``
        (``trainlab.models.record_of``) and the config's ``--norm-mean``/``--norm-std``."""
        from trainlab.data.batches import InputTransform

        if norm[0]:
            raise ConfigError(
                f"--norm-mean/--norm-std apply to images; dataset '{data.name}' holds "
                f"{self.summary} (shape {list(data.input_shape)}). Drop them."
            )
        return InputTransform()

    def channel_stats(self, train_x: Any) -> tuple[list[float], list[float]]:  # noqa: ARG002
        """The data's own normalisation statistics (none for features)."""
        return [], []

    def default_model(self, data: Any) -> tuple[str, dict[str, Any]] | None:  # noqa: ARG002
        """The model (name, options) a run of this data trains when it names none; None:
        the config's default."""
        return None

    # --- using a trained model ------------------------------------------------------------
    def reader(self, data: dict[str, Any], max_pixels: int) -> Reader:  # noqa: ARG002
        """How a person's input becomes the model's input, for a checkpoint's ``data``
        record; refused for kinds whose inputs are not files."""
        raise ConfigError(
            f"this model was trained on {self.summary} (dataset '{data.get('name')}'); "
            "predict, serve and export read images, which it does not take."
        )

    def graph_input(self, data: dict[str, Any]) -> str:
        """What an exported graph takes, in words, for its metadata."""
        return f"float32 N×{'×'.join(map(str, data['input_shape']))}; batch size N is dynamic"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "summary": self.summary,
            "task": self.task.name,
            "page": self.page.input if self.page else None,
        }
