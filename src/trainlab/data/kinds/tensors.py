"""Float tensors used as they are: what a DataLoader gives after its own transforms (images
normalised already, features of any shape). trainlab adds no preprocessing, augmentation or
flips; predict and serve of files do not apply (the run never saw files)."""

from __future__ import annotations

from trainlab.data.kinds.base import Kind


class TensorKind(Kind):
    name = "tensors"
    summary = "float tensors used as given (from DataLoaders)"


def _register() -> None:
    from trainlab.data.kinds import register_kind

    register_kind(TensorKind())


_register()
