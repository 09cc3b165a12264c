"""torchvision's classification models by name: ``--model torchvision:resnet18``.

Example:
    $ trainlab train --dataset photos/ --model torchvision:resnet18 --no-pretrained
    $ trainlab train --dataset photos/ --model torchvision:resnet18 --pretrained

Every name ``torchvision.models.list_models(module=torchvision.models)`` gives is a model here,
built with its head sized for the data's classes. ``--pretrained`` loads torchvision's default
ImageNet weights into everything but the head: from the hub cache
(``$TORCH_HOME/hub/checkpoints``), else downloaded with a progress bar where the network allows;
offline the error names the file, the folder and the ways on. The input contract: RGB (grey is
repeated), ImageNet's mean and std in place of the data's.
"""

from __future__ import annotations

from typing import Any

from trainlab.errors import CheckpointError, ConfigError, unknown_name
from trainlab.models.registry import ModelSpec

PREFIX = "torchvision:"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def names() -> list[str]:
    import torchvision.models as tv

    return list(tv.list_models(module=tv))


def spec(name: str) -> ModelSpec:
    import torchvision

    model = name[len(PREFIX) :]
    if model not in names():
        raise unknown_name("torchvision model", model, names())

    def builder(input_shape, outputs):  # noqa: ARG001 - any H×W; channels fixed to 3 below
        import torchvision.models as tv

        return tv.get_model(model, weights=None, num_classes=outputs)

    return ModelSpec(
        name,
        builder,
        summary=f"torchvision's {model}",
        channels=3,
        min_size=32,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        source={"kind": "torchvision", "version": torchvision.__version__},
    )


def imagenet_state(name: str) -> tuple[dict[str, Any], dict[str, str]]:
    """torchvision's default ImageNet weights of ``name``, and where they came from."""
    import os
    from pathlib import Path
    from urllib.parse import urlparse

    import torch
    import torchvision.models as tv

    model = name[len(PREFIX) :]
    try:
        weights = tv.get_model_weights(model).DEFAULT
    except (ValueError, KeyError):
        raise ConfigError(f"{name}: torchvision has no pretrained weights for it.") from None
    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)
    try:
        state = weights.get_state_dict(progress=True, check_hash=True)
    except (OSError, RuntimeError, ValueError) as e:
        raise CheckpointError(
            f"ImageNet weights for {name} are not in the cache and cannot be downloaded "
            f"({getattr(e, 'reason', e)}). Put {path.name} (from {weights.url}) into "
            f"{path.parent}/, or load a file of your own with --weights PATH, or train from "
            "scratch with --no-pretrained."
        ) from None
    return state, {"weights": f"torchvision {weights}", "file": str(path)}
