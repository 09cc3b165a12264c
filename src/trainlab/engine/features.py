"""Features computed once: a frozen backbone without augmentation trains its head from a cache.

Example:
    $ trainlab train --model efficientnet-lite0 --pretrained --freeze-features --subset 100
    features computed once (frozen backbone, no augmentation): train 100, test 10,000 ×1280 ...

With ``--freeze-features`` the backbone is a fixed function (its modules in eval mode, see
``models.pretrained.freeze_features``), so each image's input to the head is the same every
epoch. The first epoch computes those inputs for every split, once; from then on an epoch
costs only the head: a few matrix products instead of a pass through the network. The
checkpoints still hold the whole model (the head's parameters are the model's own), so eval,
predict, export and serve see a model like any other. The batches are the same as through the
network (the shuffle depends only on the seed, the epoch and the count), and so are the
weights: ``tests/engine/test_features.py``.

The cache is used only when it is exact: the head is found, the model's output is the head's
output on what the head received (checked on a batch), no augmentation, one process. Otherwise
the run trains through the frozen network and says why.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from trainlab.data.batches import Batches
from trainlab.engine.loop import autocast

_LOG = logging.getLogger(__name__)

# Features beyond this many bytes stay uncomputed (the run goes through the network).
MEMORY_BUDGET = 4 * 2**30


@dataclass
class FeatureCache:
    head: nn.Module
    width: int
    counts: dict[str, int]
    seconds: float

    def describe(self) -> dict[str, Any]:
        return {
            "cached": True,
            "width": self.width,
            "counts": self.counts,
            "seconds": round(self.seconds, 3),
        }

    def line(self) -> str:
        counts = ", ".join(f"{k} {v:,}" for k, v in self.counts.items())
        return (
            f"features computed once (frozen backbone, no augmentation): {counts} ×{self.width} "
            f"in {self.seconds:.1f} s; each epoch trains and scores the head alone"
        )


def why_not(cfg, data, setup) -> str | None:
    """Why the cache cannot be used for this run (None: it can)."""
    if not cfg.freeze_features:
        return "features are not frozen"
    if not cfg.feature_cache:
        return "--no-feature-cache"
    if cfg.mixup or cfg.cutmix:
        return "--mixup/--cutmix mix the images every batch"
    if cfg.augment != "none":
        return "--augment changes the images every epoch"
    if cfg.tta != "none":
        return "--tta flip scores the mirrored images too"
    if setup.dist.world > 1:
        return "a torchrun job shards the data (one process caches)"
    if not data.kind_entry.task.has_classes:
        return f"{data.task} (the head's features are for classes)"
    return None


def _head_inputs(
    model: nn.Module, head: nn.Module, batches: Batches, amp_dtype, bar=None
) -> torch.Tensor:
    """What the head receives for every sample of ``batches``, in order (float32)."""
    seen: list[torch.Tensor] = []

    def grab(_module, args):
        seen.append(args[0].detach().float())

    handle = head.register_forward_pre_hook(grab)
    try:
        model.eval()
        with torch.inference_mode(), autocast(batches.device, amp_dtype):
            for x, _ in batches:
                model(x)
                if bar is not None:
                    bar.update(len(x))
    finally:
        handle.remove()
    return torch.cat(seen)


def _is_exact(model, head, batches, amp_dtype) -> bool:
    """Is the model's output the head's output on what the head received? (A model that does
    more after its head, e.g. a log-softmax in forward, would train differently from a cache.)"""
    x, _ = next(iter(batches))
    x = x[:8]
    seen: list[torch.Tensor] = []
    handle = head.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    try:
        model.eval()
        with torch.inference_mode(), autocast(batches.device, amp_dtype):
            out = model(x)
            if len(seen) != 1:  # the head ran more than once, or not at all
                return False
            again = head(seen[0])
    finally:
        handle.remove()
    return isinstance(out, torch.Tensor) and out.shape == again.shape and torch.equal(out, again)


def try_cache(cfg, model: nn.Module, data, setup) -> tuple[Any, FeatureCache | None]:
    """The run's setup with the head training on cached features, and the cache; or the setup
    as it was and None (with the reason logged when features are frozen)."""
    from trainlab.models.pretrained import head_of

    reason = why_not(cfg, data, setup)
    head = None
    if reason is None:
        try:
            head = head_of(model)
        except Exception:  # noqa: BLE001 - no linear head: no cache, the run says so
            reason = "the model has no head trainlab can find"
    if reason is None:
        probe = Batches(data.train_x[:8], data.train_y[:8], 8, device=setup.device,
                        transform=setup.transform)  # fmt: skip
        if not _is_exact(model, head, probe, setup.amp_dtype):
            reason = "the model's output is not its head's (it computes more after the head)"
    if reason is not None:
        if cfg.freeze_features:
            _LOG.info(f"features not cached ({reason}): each epoch runs the frozen network")
        return setup, None
    began = time.perf_counter()
    width = _head_inputs(model, head, probe, setup.amp_dtype).shape[1]
    total = sum(len(y) for y in (data.train_y, data.val_y, data.test_y) if y is not None)
    if total * width * 4 > MEMORY_BUDGET:
        _LOG.info(
            f"features not cached ({total:,} × {width} floats would take "
            f"{total * width * 4 / 2**30:.1f} GiB): each epoch runs the frozen network"
        )
        return setup, None
    in_order = Batches(
        data.train_x, data.train_y, cfg.eval_batch_size, device=setup.device,
        transform=setup.transform,
    )  # fmt: skip
    from tqdm import tqdm

    bar = tqdm(total=total, desc="features", unit="img", file=sys.stderr, leave=False,
               disable=not _LOG.isEnabledFor(logging.INFO) or not sys.stderr.isatty())  # fmt: skip
    with bar:
        train_features = _head_inputs(model, head, in_order, setup.amp_dtype, bar)
        splits = {
            name: Batches(
                _head_inputs(model, head, batches, setup.amp_dtype, bar),
                batches.y,
                batches.batch_size,
                device=setup.device,
            )
            for name, batches in setup.shards.items()
        }
    t = setup.train
    train = Batches(
        train_features, t.y, t.batch_size, shuffle=t.shuffle, seed=t.seed,
        drop_last=t.drop_last, device=setup.device, sample_weights=t.sample_weights,
    )  # fmt: skip
    cache = FeatureCache(
        head,
        int(width),
        {"train": len(t.y)} | {name: b.num_samples for name, b in splits.items()},
        time.perf_counter() - began,
    )
    # one process: the splits are the shards; the head scores them from here on
    cached = replace(
        setup, train=train, shards=splits, splits=splits, train_model=head, scorer=head
    )
    return cached, cache
