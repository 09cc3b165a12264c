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


def parameter_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    """The trainable parameters; with ``--backbone-lr-mult``, the head's in a group of their
    own and the backbone's at that fraction of the learning rate (``lr_mult``, which the loop
    applies at every step)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.backbone_lr_mult == 1.0:
        return [{"params": params, "lr_mult": 1.0}]
    from trainlab.models.pretrained import head_of

    head = {id(p) for p in head_of(model).parameters()}
    groups = [
        {"params": [p for p in params if id(p) not in head], "lr_mult": cfg.backbone_lr_mult},
        {"params": [p for p in params if id(p) in head], "lr_mult": 1.0},
    ]
    return [g for g in groups if g["params"]]


def _fused(groups: list[dict]) -> bool | None:
    """Adam's one-kernel step on the CPU: 0.30 ms against 0.76 ms a step over seed-mlp's
    parameters on one core (the for-each and per-tensor steps alike), the same formula."""
    params = [p for g in groups for p in g["params"]]
    on_cpu = all(p.device.type == "cpu" and p.dtype.is_floating_point for p in params)
    return True if params and on_cpu else None


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer | SGD:
    params = parameter_groups(model, cfg)
    if cfg.optimizer == "sgd":
        return SGD(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov and cfg.momentum > 0,
            weight_decay=cfg.weight_decay,
        )
    if cfg.optimizer in ("adam", "adamw"):
        kind = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
        return kind(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=_fused(params))
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


class SGD:
    """torch.optim.SGD's update, without ``torch.optim.Optimizer``.

    The base class wraps ``__init__``'s ``add_param_group``, ``zero_grad``, ``step``,
    ``state_dict`` and ``load_state_dict`` in ``torch._disable_dynamo`` and graph breaks, and the
    first call of any of them imports ``torch._dynamo``: 1.5-2.8 s of a default run that never
    compiles. This class calls torch's own functional ``torch.optim.sgd.sgd`` (the function
    ``torch.optim.SGD.step`` calls, with the same defaults), so the arithmetic is torch's, and
    reads and writes the same state_dict layout, so checkpoints move between the two.
    """

    def __init__(
        self,
        params,
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ):
        self.defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": 0.0,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": False,
            "foreach": None,
            "differentiable": False,
            "fused": None,
        }
        params = list(params)
        groups = params if params and isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = [{**self.defaults, **g, "params": list(g["params"])} for g in groups]
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_().zero_()

    @torch.no_grad()
    def step(self) -> None:
        from torch.optim.sgd import sgd

        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            buffers = [self.state.get(p, {}).get("momentum_buffer") for p in params]
            sgd(
                params,
                [p.grad for p in params],
                buffers,
                weight_decay=group["weight_decay"],
                momentum=group["momentum"],
                lr=group["lr"],
                dampening=group["dampening"],
                nesterov=group["nesterov"],
                maximize=group["maximize"],
                has_sparse_grad=False,
                foreach=group["foreach"],
            )
            if group["momentum"]:
                for p, buffer in zip(params, buffers, strict=True):
                    self.state.setdefault(p, {})["momentum_buffer"] = buffer

    def _indexed(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self) -> dict:
        """As ``torch.optim.SGD.state_dict()``: state by parameter index, groups by index."""
        index = {id(p): i for i, p in enumerate(self._indexed())}
        return {
            "state": {index[id(p)]: dict(s) for p, s in self.state.items()},
            "param_groups": [
                {
                    **{k: v for k, v in g.items() if k != "params"},
                    "params": [index[id(p)] for p in g["params"]],
                }
                for g in self.param_groups
            ],
        }

    def load_state_dict(self, state_dict: dict) -> None:
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
            len(saved["params"]) != len(own["params"])
            for saved, own in zip(groups, self.param_groups, strict=False)
        ):
            from trainlab.errors import CheckpointError

            raise CheckpointError(
                "the checkpoint's optimizer state has parameter groups of other sizes than this "
                "model's optimizer: it was saved for another model, or with other frozen layers "
                "(--freeze-features). Resume with the run's own settings, or start a new run."
            )
        params = self._indexed()
        for saved, own in zip(groups, self.param_groups, strict=True):
            own.update({k: v for k, v in saved.items() if k in self.defaults})
        self.state = {}
        for i, values in state_dict["state"].items():
            p = params[int(i)]
            self.state[p] = {
                k: v.to(device=p.device, dtype=p.dtype) if torch.is_tensor(v) else v
                for k, v in values.items()
            }
