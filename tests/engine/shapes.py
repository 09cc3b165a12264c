"""A synthetic photo set for explanations: one small coloured shape (square, disc or
triangle: the class) at a random place on textured noise, RGB, with each shape's box."""

from __future__ import annotations

import numpy as np
import torch

CLASSES = ["square", "disc", "triangle"]


def _texture(rng: np.random.Generator, side: int) -> np.ndarray:
    """Blotchy greyish noise: a coarse random field brought up to size, a faint tint per
    channel, and grain."""
    coarse = rng.uniform(50, 200, size=(1, side // 6, side // 6)).astype(np.float32)
    coarse = coarse + rng.uniform(-25, 25, size=(3, side // 6, side // 6)).astype(np.float32)
    field = torch.nn.functional.interpolate(
        torch.from_numpy(coarse)[None], size=(side, side), mode="bilinear", align_corners=False
    )[0].numpy()
    return field + rng.normal(0, 15, size=(3, side, side))


def _mask(kind: int, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    if kind == 0:
        return np.ones((size, size), bool)
    if kind == 1:
        return (yy - size / 2) ** 2 + (xx - size / 2) ** 2 <= (size / 2) ** 2
    return np.abs(xx - size / 2) <= yy / 2  # apex at the top, base at the bottom


def shapes(n: int, seed: int, side: int = 48) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """``n`` images (uint8 N×3×side×side), their classes, and each shape's box
    (top, left, bottom, right, inclusive)."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, 3, side, side), np.uint8)
    labels = rng.integers(0, 3, size=n)
    boxes = np.empty((n, 4), int)
    for i, kind in enumerate(labels):
        picture = _texture(rng, side)
        size = int(rng.integers(11, 16))
        top, left = rng.integers(0, side - size, size=2)
        colour = rng.uniform(0, 255, size=3)
        colour[rng.integers(0, 3)] = rng.choice([0, 255])  # saturated, stands out from grey
        mask = _mask(int(kind), size)
        patch = picture[:, top : top + size, left : left + size]
        patch[:, mask] = colour[:, None]
        images[i] = picture.clip(0, 255).astype(np.uint8)
        boxes[i] = (top, left, top + size - 1, left + size - 1)
    return torch.from_numpy(images), torch.from_numpy(labels), boxes
