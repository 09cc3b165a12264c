"""Augmentations of a whole batch at once, on its device (uint8 images scaled to [0, 1]).

Which of them a run uses is its kind's choice (``trainlab.data.kinds``): rotations and shifts
for digits, crops and flips for photos; tables get none. ``--augment strong`` adds more per
image: shear and scale for digits, torchvision's TrivialAugmentWide for photos, and random
erasing for both. Every draw is per image and comes from torch's global RNG, which checkpoints
save, so a resumed run draws the same ones.

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

    def __init__(
        self, degrees: float = 10.0, shift: float = 0.1, shear: float = 0.0, scale: float = 0.0
    ):
        self.degrees, self.shift, self.shear, self.scale = degrees, shift, shear, scale

    def describe(self) -> str:
        text = f"rotations (±{self.degrees:g}°) and shifts (±{100 * self.shift:g}%)"
        if self.shear or self.scale:
            text += f", shear (±{self.shear:g}°) and scale (±{100 * self.scale:g}%)"
        return text

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        angle = (torch.rand(n) * 2 - 1) * math.radians(self.degrees)
        shift = (torch.rand(n, 2) * 2 - 1) * (2 * self.shift)  # grid units: 2 = the full width
        cos, sin = torch.cos(angle), torch.sin(angle)
        matrix = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)
        if self.shear or self.scale:  # drawn only then: --augment basic draws as it always did
            shear = torch.tan((torch.rand(n) * 2 - 1) * math.radians(self.shear))
            zoom = 1 + (torch.rand(n) * 2 - 1) * self.scale
            sheared = torch.stack(
                [
                    torch.stack([torch.ones(n), shear], 1),
                    torch.stack([torch.zeros(n), torch.ones(n)], 1),
                ],
                1,
            )
            matrix = (matrix @ sheared) / zoom.view(n, 1, 1)  # the grid samples the input
        theta = torch.cat([matrix, shift.unsqueeze(2)], 2).to(x.device, x.dtype)
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


class RandomErasing:
    """Random erasing (Zhong et al. 2017) drawn per image over a whole batch: with probability
    ``p`` a rectangle of ``scale`` of the image's area and aspect ratio in ``ratio`` is set to 0
    (black, before normalisation). torchvision's ``v2.RandomErasing`` erases one rectangle per
    call, the same for a whole batch; this one draws each image's own."""

    def __init__(
        self, p: float = 0.25, scale: tuple[float, float] = (0.02, 0.25), ratio=(0.3, 3.3)
    ):
        self.p, self.scale, self.ratio = p, scale, ratio

    def describe(self) -> str:
        return f"random erasing (p {self.p:g}, {self.scale[0]:g}-{self.scale[1]:g} of the area)"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        area = torch.empty(n).uniform_(*self.scale) * h * w
        log_ratio = torch.empty(n).uniform_(math.log(self.ratio[0]), math.log(self.ratio[1]))
        aspect = torch.exp(log_ratio)
        eh = (area * aspect).sqrt().round().clamp(1, h)
        ew = (area / aspect).sqrt().round().clamp(1, w)
        top = (torch.rand(n) * (h - eh + 1)).floor()
        left = (torch.rand(n) * (w - ew + 1)).floor()
        erase = torch.rand(n) < self.p
        rows = torch.arange(h).view(1, h, 1)
        cols = torch.arange(w).view(1, 1, w)
        inside = (
            (rows >= top.view(n, 1, 1))
            & (rows < (top + eh).view(n, 1, 1))
            & (cols >= left.view(n, 1, 1))
            & (cols < (left + ew).view(n, 1, 1))
            & erase.view(n, 1, 1)
        )
        return x.masked_fill(inside.unsqueeze(1).to(x.device), 0.0)


class TrivialAugment:
    """torchvision's ``v2.TrivialAugmentWide`` with its own draw per image (one operation and
    one strength each, from torch's global RNG). The library's transform draws once per call,
    so the images go through it one by one, as uint8 (exact: the batch holds pixel / 255)."""

    def __init__(self):
        from torchvision.transforms import v2

        self.transform = v2.TrivialAugmentWide()

    def describe(self) -> str:
        return "TrivialAugmentWide per image"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        pixels = x.mul(255).round_().to(torch.uint8)
        out = torch.stack([self.transform(image) for image in pixels])
        return out.to(x.dtype).div_(255)


class Chain:
    """Augmentations applied in turn; described together."""

    def __init__(self, *steps):
        self.steps = steps

    def describe(self) -> str:
        return ", then ".join(step.describe() for step in self.steps)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            x = step(x)
        return x
