"""Augmentations of a whole batch at once, on its device (uint8 images scaled to [0, 1]).

Which of them a run uses is its kind's choice (``trainlab.data.kinds``): rotations and shifts
for digits, crops and flips for photos; tables get none. Every draw comes from torch's global
RNG, which checkpoints save, so a resumed run draws the same ones.

Example:
    >>> augment = CropFlip(pad=4)
    >>> x = augment(torch.rand(8, 3, 32, 32))     # each image shifted and maybe mirrored
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


class RotateShift:
    """Random rotations and shifts for a whole batch at once, on its device.

    One affine grid per batch (``affine_grid`` + ``grid_sample``), applied to images in [0, 1]
    before normalisation so the border fills with background. The angles and shifts come from
    torch's global RNG, which checkpoints save, so a resumed run draws the same ones.
    """

    def __init__(self, degrees: float = 10.0, shift: float = 0.1):
        self.degrees, self.shift = degrees, shift

    def describe(self) -> str:
        return f"rotations (±{self.degrees:g}°) and shifts (±{100 * self.shift:g}%)"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        angle = (torch.rand(n) * 2 - 1) * math.radians(self.degrees)
        shift = (torch.rand(n, 2) * 2 - 1) * (2 * self.shift)  # grid units: 2 = the full width
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack(
            [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
        ).to(x.device, x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class CropFlip:
    """Natural images' augmentation, a whole batch at once on its device: each image moved by
    up to ``pad`` pixels (reflected at the border, as a random crop of the padded image) and
    flipped left-right with probability 1/2. Never for digits (a flipped 2 is no 2).
    Draws come from torch's global RNG, which checkpoints save."""

    def __init__(self, pad: int = 4, flip: bool = True):
        self.pad, self.flip = pad, flip

    def describe(self) -> str:
        return f"random crop (±{self.pad} px, reflected)" + (" and left-right flip" * self.flip)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        p = self.pad
        if p:
            padded = F.pad(x, (p, p, p, p), mode="reflect")
            dy = torch.randint(0, 2 * p + 1, (n,)).to(x.device)
            dx = torch.randint(0, 2 * p + 1, (n,)).to(x.device)
            rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
            cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
            batch = torch.arange(n, device=x.device)[:, None, None, None]
            channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
            x = padded[batch, channel, rows, cols]
        if self.flip:
            flipped = (torch.rand(n) < 0.5).to(x.device).view(n, 1, 1, 1)
            x = torch.where(flipped, x.flip(-1), x)
        return x
