"""Pretrained and local weights, loaded offline where possible.

ImageNet weights come through torchvision's weights API and its cache
(``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``). When they are
not cached and cannot be downloaded, the error says which file to put where, or how to go on.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from trainlab.errors import CheckpointError, ConfigError

# model name -> (weights enum, member); the features block is what transfers.
PRETRAINED = {"alexnet": ("AlexNet_Weights", "IMAGENET1K_V1")}


def _weights_enum(name: str):
    import torchvision.models as tvm

    enum_name, member = PRETRAINED[name]
    return getattr(getattr(tvm, enum_name), member)


def cache_path(name: str) -> Path:
    """Where torchvision's cache keeps the ImageNet weights of ``name``."""
    weights = _weights_enum(name)
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def load_pretrained(model: nn.Module, name: str) -> list[str]:
    """Load ImageNet weights into ``model`` (all but the replaced head). Returns the keys loaded."""
    if name not in PRETRAINED:
        raise ConfigError(
            f"model '{name}' has no pretrained weights; models that do: {', '.join(PRETRAINED)}. "
            "Drop --pretrained, or load your own with --weights PATH."
        )
    weights, path = _weights_enum(name), cache_path(name)
    if path.is_file():
        state = _read_state_dict(path)
    else:
        try:
            state = weights.get_state_dict(progress=False, check_hash=True)
        except (OSError, RuntimeError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise ConfigError(
                f"ImageNet weights for {name} are not in the cache and cannot be downloaded "
                f"({reason}). Put {path.name} (from {weights.url}) into {path.parent}/ "
                "($TORCH_HOME/hub/checkpoints), or start from scratch with --no-pretrained, or "
                "load a local file with --weights PATH."
            ) from None
    # Only the features transfer: the seed replaces the whole classifier with fresh layers, even
    # the two whose shapes match ImageNet's.
    features = {k: v for k, v in state.items() if k.startswith("features.")}
    return load_matching(model, features, str(path), required_prefix="features.")


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure to read is reported the same way
        raise CheckpointError(
            f"{path}: cannot be read as a state_dict with weights_only=True "
            f"({type(e).__name__}: {str(e).splitlines()[0][:160]})."
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a trainlab checkpoint
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: not a state_dict (a mapping of names to tensors).")
    return state


def load_matching(
    model: nn.Module, state: dict[str, torch.Tensor], source: str, required_prefix: str = ""
) -> list[str]:
    """Copy every tensor whose name and shape match; the ``required_prefix`` part must all match."""
    own = model.state_dict()
    matching = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    required = [k for k in own if k.startswith(required_prefix)] if required_prefix else []
    missing = [k for k in required if k not in matching]
    if not matching or missing:
        raise CheckpointError(
            f"{source}: its weights do not fit this model "
            + (
                f"(missing or mis-shaped: {', '.join(missing[:4])})"
                if missing
                else "(no name matches)"
            )
            + ". Use weights saved from the same architecture."
        )
    model.load_state_dict(matching, strict=False)
    return sorted(matching)


def load_weights_file(model: nn.Module, path: str | Path) -> list[str]:
    """``--weights PATH``: a state_dict or trainlab checkpoint; loads what fits by name, shape."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"--weights {path}: no such file.")
    return load_matching(model, _read_state_dict(path), str(path))


def freeze_features(model: nn.Module) -> int:
    """Train only the head: ``model.classifier`` if there is one, else the last linear layer.

    Returns the number of parameters left trainable.
    """
    head = getattr(model, "classifier", None)
    if head is None:
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ConfigError("--freeze-features: this model has no linear head to train alone.")
        head = linears[-1]
    for p in model.parameters():
        p.requires_grad_(False)
    for p in head.parameters():
        p.requires_grad_(True)
    return sum(p.numel() for p in head.parameters())
