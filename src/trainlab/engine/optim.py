"""Optimizers by name, and learning-rate schedules as plain functions of the step.

A schedule is computed from (step, total steps), never kept as state, so a resumed run sets
exactly the learning rate an uninterrupted one would.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trainlab.config import TrainConfig
from trainlab.errors import unknown_name


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov and cfg.momentum > 0,
            weight_decay=cfg.weight_decay,
        )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adadelta":
        return torch.optim.Adadelta(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise unknown_name("optimizer", cfg.optimizer, ["sgd", "adam", "adamw", "adadelta"])


def lr_at(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Learning rate for optimizer step ``step`` (0-based).

    constant: lr. step: lr·gamma^(epoch // step_size). cosine: from lr to 0 over the run.
    onecycle: linear warm-up from lr/25 to lr over ``warmup`` of the steps, then cosine to lr/1e4
    (the shape of torch's OneCycleLR with linear warm-up).
    """
    total = max(cfg.epochs * steps_per_epoch, 1)
    progress = min(step / total, 1.0)
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "step":
        return cfg.lr * cfg.gamma ** ((step // max(steps_per_epoch, 1)) // cfg.step_size)
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))
    if cfg.schedule == "onecycle":
        start, end = cfg.lr / 25, cfg.lr / 1e4
        warm = cfg.warmup * total
        if step < warm:
            return start + (cfg.lr - start) * step / warm
        down = (step - warm) / max(total - warm, 1)
        return end + (cfg.lr - end) * 0.5 * (1 + math.cos(math.pi * min(down, 1.0)))
    raise unknown_name("schedule", cfg.schedule, ["constant", "step", "cosine", "onecycle"])


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
