"""Handwritten digits and other MNIST-style data: light ink centred on black, 28×28.

People's own digits are made to look like MNIST's before the model sees them (polarity from the
border, ink cropped, fitted into 20×20, centred by its centre of mass); training augments by
small rotations and shifts; nothing is ever flipped (a mirrored 2 is no 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trainlab.data.kinds.base import Page, Reader
from trainlab.data.kinds.images import ImageKind
from trainlab.errors import ConfigError


class DigitsKind(ImageKind):
    name = "digits"
    summary = "MNIST-style digits"
    page = Page("Draw a digit", "draw", "draw, or upload an image")

    def augmentation(self, size: Sequence[int], dataset: str, strength: str = "basic"):  # noqa: ARG002
        from trainlab.data.augment import Chain, RandomErasing, RotateShift

        if strength == "strong":  # geometry and erasing only: no flips, no colour operations
            shapes = RotateShift(degrees=15, shift=0.12, shear=10, scale=0.1)
            return Chain(shapes, RandomErasing(p=0.5, scale=(0.02, 0.15)))
        if strength == "light":
            return RotateShift(degrees=5, shift=0.05)
        return RotateShift()

    def check_tta(self, tta: str, dataset: str) -> None:
        if tta != "none":
            raise ConfigError(
                f"--tta {tta} is for natural images (a folder of photos, CIFAR); '{dataset}' is "
                "of the MNIST family, which is never flipped (a mirrored digit is not the same "
                "digit). Drop --tta."
            )

    def reader(self, data: dict[str, Any], max_pixels: int) -> Reader:  # noqa: ARG002
        from trainlab.data.images import mnist_style, read_image

        def mnist_like(source, name=None):
            grey = read_image(source, max_pixels=max_pixels, name=name)
            return mnist_style(grey, name=name or "image")

        return mnist_like

    def graph_input(self, data: dict[str, Any]) -> str:
        c, h, w = data["input_shape"]
        return (
            f"float32 N×{c}×{h}×{w}, values in [0, 1] (pixel / 255), light ink on black as the "
            "training data; batch size N is dynamic"
        )


def _register() -> None:
    from trainlab.data.kinds import register_kind

    register_kind(DigitsKind())


_register()
