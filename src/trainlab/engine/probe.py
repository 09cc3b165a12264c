"""One batch through the model before the first step: the mistakes a run would otherwise make
silently, or find after a whole epoch, said up front.

Example:
    >>> notes = probe(model, data, transform, "cross-entropy")
    ConfigError: the model gives 5 outputs; the data has 10 classes ...

- the model rejects the data's input (a shape it was not built for): the shape the data gives;
- its output is not one score per class (or per regression target);
- it ends in a softmax while the loss is cross-entropy, which expects logits (the most common
  tutorial mistake: training is slower and ends worse) — a warning naming the layer;
- lazy modules (``nn.LazyLinear``) get their shapes from this batch, before the parameters are
  counted, the optimizer is built or a checkpoint is loaded into them.

The probe runs in eval mode, without gradients, on a forked random generator: it changes no
weight, no batch-norm statistic and no random draw of the run.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from trainlab.errors import ConfigError

_LOG = logging.getLogger(__name__)

PROBE_SIZE = 8


def has_lazy(model: nn.Module) -> bool:
    return any(isinstance(p, nn.parameter.UninitializedParameter) for p in model.parameters())


def _forward(model: nn.Module, x: torch.Tensor) -> Any:
    training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            return model(x)
    finally:
        model.train(training)


def materialize(model: nn.Module, input_shape: tuple[int, ...]) -> None:
    """Give lazy modules their shapes from a zero batch of ``input_shape`` (C×H×W or D), so
    a checkpoint's weights can be loaded into them."""
    if has_lazy(model):
        device = next((b.device for b in model.buffers()), torch.device("cpu"))
        _forward(model, torch.zeros(2, *input_shape, device=device))


def probe(model: nn.Module, data: Any, transform: Any, loss: str) -> dict[str, str]:
    """Run ``PROBE_SIZE`` training samples through ``model`` and check what comes out.

    Returns:
        Notes for the run's record (a final softmax), also logged as a warning.

    Raises:
        ConfigError: the model rejects the input, or its output does not fit the data.
    """
    x = transform(data.train_x[:PROBE_SIZE])
    device = next((p.device for p in model.parameters() if not _lazy(p)), x.device)
    shape = "×".join(map(str, data.input_shape))
    try:
        out = _forward(model, x.to(device))
    except Exception as e:  # noqa: BLE001 - a user's model raises anything on a wrong input
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise ConfigError(
            f"the model rejects the data's input: dataset '{data.name}' gives {shape} per "
            f"sample (a batch of {tuple(x.shape)} after preprocessing), and the model raised "
            f"{type(e).__name__}: {first}. Build the model for that input (its first layer's "
            "channels or features), or resize the data (--image-size for a folder of images)."
        ) from None
    if not isinstance(out, torch.Tensor):
        raise ConfigError(
            f"the model returned {type(out).__name__}, not a tensor of scores: forward() must "
            "return the outputs as one tensor (N×classes)."
        )
    task = data.kind_entry.task
    wanted = data.output_size
    got = out.shape[1] if out.dim() == 2 else None
    if out.dim() != 2 or out.shape[0] != len(x) or got != wanted:
        what = f"{wanted} classes" if task.has_classes else f"{wanted} target(s) per sample"
        gives = f"{got} outputs" if got is not None else f"outputs of shape {tuple(out.shape)}"
        raise ConfigError(
            f"the model gives {gives} per sample; the data has {what} (dataset "
            f"'{data.name}'). Make its last layer output {wanted} (e.g. nn.Linear(..., {wanted})"
            "; trainlab passes num_classes to a model that takes it)."
        )
    notes: dict[str, str] = {}
    if task.has_classes and loss == "cross-entropy" and _are_probabilities(out):
        layer = _last_softmax(model)
        where = f", from {layer}" if layer else ""
        note = (
            f"the model's outputs are probabilities (they sum to 1){where}, but cross-entropy"
            " expects logits and applies the softmax itself: training this "
            "way is slower and ends worse. Remove the final softmax from the model (predict and "
            "serve apply it), or end in nn.LogSoftmax and train with --loss nll."
        )
        notes["softmax"] = note
        _LOG.warning(f"warning: {note}")
    return notes


def _lazy(p: torch.Tensor) -> bool:
    return isinstance(p, nn.parameter.UninitializedParameter)


def _are_probabilities(out: torch.Tensor) -> bool:
    out = out.detach().float()
    if out.shape[1] < 2 or not torch.isfinite(out).all() or (out < 0).any():
        return False
    return bool(torch.allclose(out.sum(1), torch.ones(len(out)), atol=1e-3))


def _last_softmax(model: nn.Module) -> str | None:
    found = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Softmax | nn.Softmax2d):
            found = f"layer '{name}' ({type(module).__name__})"
    return found
