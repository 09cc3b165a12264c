"""``--mixup ALPHA`` and ``--cutmix ALPHA``: each training batch mixed with a shuffled copy of
itself, and the loss taken on the mixed targets.

Mixup (Zhang et al. 2018) blends whole images, ``lam·x + (1 - lam)·x[perm]``; CutMix (Yun et
al. 2019) pastes one box of ``x[perm]`` into every image and sets ``lam`` to the share of the
image left. ``lam`` comes from Beta(ALPHA, ALPHA), one draw per batch as both papers do; with
both flags, each batch uses one of the two at random. The loss is ``lam·L(out, y) + (1 - lam)·
L(out, y[perm])`` with the run's own loss (class weights, label smoothing, NLL) unchanged, which
torchvision's ``v2.MixUp``/``v2.CutMix`` (one-hot soft targets) would not keep; hence this module.

The mix happens where the batch is prepared (before normalisation, which is affine, so it is
the same) and the loss reads the draw of the batch it scores: the loop scores each batch before
the next is prepared. Draws come from torch's global RNG, which checkpoints save, so a resume
draws the same. Train accuracy is then counted on mixed inputs against their unmixed labels,
so it reads lower than a test figure (the run records the mix).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Mix:
    """The batch step (``__call__``, an augmentation of x) and the loss on mixed targets."""

    def __init__(self, mixup: float = 0.0, cutmix: float = 0.0):
        self.mixup, self.cutmix = mixup, cutmix
        self._draw: tuple[torch.Tensor, float] | None = None  # (perm, lam) of the last batch

    def describe(self) -> str:
        parts = [f"mixup (alpha {self.mixup:g})"] * bool(self.mixup)
        parts += [f"cutmix (alpha {self.cutmix:g})"] * bool(self.cutmix)
        return " or ".join(parts) + ", loss on the mixed targets"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        use_cutmix = bool(self.cutmix) and (not self.mixup or bool(torch.rand(()) < 0.5))
        alpha = self.cutmix if use_cutmix else self.mixup
        lam = float(torch.distributions.Beta(alpha, alpha).sample())
        perm = torch.randperm(n).to(x.device)
        if use_cutmix:
            h, w = x.shape[-2:]
            cut = (1 - lam) ** 0.5
            ch, cw = round(h * cut), round(w * cut)
            cy, cx = int(torch.randint(0, h, ())), int(torch.randint(0, w, ()))
            top, bottom = max(cy - ch // 2, 0), min(cy + ch - ch // 2, h)
            left, right = max(cx - cw // 2, 0), min(cx + cw - cw // 2, w)
            x = x.clone()
            x[..., top:bottom, left:right] = x[perm][..., top:bottom, left:right]
            lam = 1 - (bottom - top) * (right - left) / (h * w)  # the share really kept
        else:
            x = x.mul(lam).add_(x[perm], alpha=1 - lam)
        self._draw = (perm, lam)
        return x

    def loss(self, loss_fn: LossFn) -> LossFn:
        """``loss_fn`` on the mixed targets of the batch prepared last."""

        def mixed(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if self._draw is None or len(self._draw[0]) != len(y):
                return loss_fn(outputs, y)
            perm, lam = self._draw
            self._draw = None  # one batch, one draw
            return loss_fn(outputs, y) * lam + loss_fn(outputs, y[perm]) * (1 - lam)

        return mixed
