"""Where a model looked: Grad-CAM heat maps (captum's ``LayerGradCam``), or occlusion for a
model without convolutions, drawn over the image the model saw.

Example:
    >>> maps = HeatMaps(model, transform, device, (1, 28, 28))
    >>> maps.maps([image], [predicted])        # one H×W array in [0, 1] per image
    >>> overlay(image, heat).save("why.png")   # the image with its map over it

The computation alone, from a model and its input transform, so that everything that has a
model explains it the same way: ``predict --explain`` and the server (through
``trainlab.inference.explain.Explainer``) and the report's mistakes gallery (from a checkpoint).

The target layer is found, not configured: the last ``Conv2d`` the model runs (for the built-in
CNNs, EfficientNet's head convolution, torchvision's models and people's own modules alike).
A model with none (an MLP) is explained by occlusion instead: how much the target class's
probability drops when each patch is blanked (captum's ``Occlusion``). Either way the map is
computed in float32, with gradients on, on a copy of the model in evaluation mode, so the
model that scores and its answers are never touched. The map is for the given class, scaled
so its largest value is 1, and brought to the image's size for the overlay.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from trainlab.errors import ConfigError

# What may follow the last convolution and still be its activation: normalisation, the
# non-linearity and pooling keep one map per channel, at the convolution's place in the image.
STAGE = (
    nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU,
    nn.GELU, nn.SiLU, nn.Hardswish, nn.Mish, nn.MaxPool2d, nn.AvgPool2d, nn.Dropout2d,
    nn.Dropout, nn.Identity,
)  # fmt: skip


def target_layer(model: nn.Module, x: torch.Tensor) -> tuple[str, nn.Module] | None:
    """The last convolutional activation the model runs on ``x``: the last ``Conv2d``, or the
    normalisation, non-linearity or pooling that directly follows it (the stage's output, as
    pytorch-grad-cam's examples take), or the block around them that ends on a map after
    them (a residual block's output, after its sum). Found by hooks on one forward pass, so
    the order the code calls them counts, not the order they were declared; None without a
    convolution.

    The activation, not the raw convolution: before batch norm and ReLU, a channel's map still
    holds what the stage throws away, and its heat lands on edges beside the object."""
    ran: list[tuple[str, nn.Module, int]] = []  # every module but the model, as each ends
    hooks = [
        m.register_forward_hook(lambda mod, _i, out, name=n: ran.append((name, mod, _spatial(out))))
        for n, m in model.named_modules()
        if n
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    leaves = [i for i, (_, m, _) in enumerate(ran) if not any(True for _ in m.children())]
    convs = [i for i in leaves if isinstance(ran[i][1], nn.Conv2d)]
    if not convs:
        return None
    last = convs[-1]
    for i in leaves[leaves.index(last) + 1 :]:
        if not (isinstance(ran[i][1], STAGE) and ran[i][2]):
            break
        last = i
    # a block around it that ends later on a map (a residual block: its sum, then its ReLU,
    # which are no modules) is the stage's real output
    name = ran[last][0]
    around = [
        i for i in range(last + 1, len(ran))
        if ran[i][2] and name.startswith(ran[i][0] + ".")
    ]  # fmt: skip
    found = ran[around[-1]] if around else ran[last]
    return found[0], found[1]


def _spatial(out) -> bool:
    """A map with more than one position (N×C×H×W, H×W > 1)."""
    return getattr(out, "ndim", 0) == 4 and out.shape[-1] * out.shape[-2] > 1


def require_captum() -> None:
    try:
        import captum.attr  # noqa: F401
    except ImportError:
        raise ConfigError(
            "explanations need captum: pip install 'trainlab[explain]' (or captum)."
        ) from None


class HeatMaps:
    """Heat maps of one model: ``transform`` turns uint8 images (as the model's reader gives
    them) into its inputs; ``input_shape`` (C, H, W) is what the reader gives."""

    def __init__(self, model: nn.Module, transform, device, input_shape):
        require_captum()
        from trainlab.models.tta import FlipAveraged

        # the model itself, not the flip-averaging wrapper (its layer runs twice per input)
        inner = model.model if isinstance(model, FlipAveraged) else model
        self.model = copy.deepcopy(inner).float().eval().to(device)
        self.model.to(memory_format=torch.contiguous_format)
        for p in self.model.parameters():
            p.requires_grad_(True)
        self.transform, self.device, self.input_shape = transform, device, tuple(input_shape)
        probe = np.zeros(self.input_shape, dtype=np.uint8)
        found = target_layer(self.model, self._inputs([probe]))
        self.layer_name, self.layer = found if found else (None, None)
        self.method = (
            f"grad-cam (layer '{self.layer_name}')" if self.layer is not None else "occlusion"
        )

    def _inputs(self, previews: list[np.ndarray]) -> torch.Tensor:
        x = torch.from_numpy(np.stack(previews))
        if x.dim() == 3:  # grey previews N×H×W: one channel
            x = x.unsqueeze(1)
        x = self.transform(x.to(self.device)).float()
        return x.contiguous()

    def raw_maps(self, previews: list[np.ndarray], targets: list[int]) -> torch.Tensor:
        """One map per input for its target class, at the method's own resolution (N×h×w)."""
        from captum.attr import LayerGradCam, Occlusion

        x = self._inputs(previews)
        target = torch.tensor(targets, device=self.device)
        with torch.enable_grad():
            if self.layer is not None:
                cam = LayerGradCam(self.model, self.layer)
                maps = cam.attribute(x, target=target, relu_attributions=True)[:, 0]
            else:
                side = max(2, min(x.shape[-2:]) // 7)
                window = (x.shape[1], side, side)
                strides = (x.shape[1], max(1, side // 2), max(1, side // 2))
                occlusion = Occlusion(lambda t: self.model(t).softmax(1))
                maps = occlusion.attribute(
                    x, target=target, sliding_window_shapes=window, strides=strides
                )
                maps = maps.clamp(min=0).sum(1)
        return maps.detach().float()

    def maps(self, previews: list[np.ndarray], targets: list[int]) -> list[np.ndarray]:
        """Each image's map for its target class at the image's size, scaled into [0, 1]."""
        out = []
        for start in range(0, len(previews), 32):
            chunk = previews[start : start + 32]
            raw = self.raw_maps(chunk, targets[start : start + 32])
            for heat, preview in zip(raw, chunk, strict=True):
                out.append(resized(scaled(heat).cpu().numpy(), preview.shape[-2:]))
        return out


def scaled(heat: torch.Tensor) -> torch.Tensor:
    top = heat.max()
    return heat / top if top > 0 else torch.zeros_like(heat)


def resized(heat: np.ndarray, size) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(heat))[None, None]
    up = torch.nn.functional.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False)
    return up[0, 0].clamp(0, 1).numpy()


def overlay(preview: np.ndarray, heat: np.ndarray, alpha: float = 0.45):
    """The image the model saw with its heat map over it (matplotlib's jet colours), as PIL."""
    from matplotlib import colormaps
    from PIL import Image

    image = preview if preview.ndim == 2 else np.moveaxis(preview, 0, -1)
    if image.ndim == 2 or image.shape[-1] == 1:
        image = np.repeat(image.reshape(*image.shape[:2], 1), 3, axis=-1)
    colours = colormaps["jet"](heat)[..., :3] * 255
    blended = (1 - alpha) * image.astype(np.float32) + alpha * colours
    picture = Image.fromarray(blended.clip(0, 255).astype(np.uint8))
    if max(picture.size) < 112:  # digits and other small inputs: big enough to see
        scale = 112 // max(picture.size) + 1
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    return picture


def overlay_png(preview: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> bytes:
    """The overlay as PNG bytes (for a page or a JSON answer; ``alpha`` 0: the image alone,
    at the overlay's size)."""
    import io

    buffer = io.BytesIO()
    overlay(preview, heat, alpha).save(buffer, format="PNG")
    return buffer.getvalue()
