"""Photos and other pictures (a folder of your own images, CIFAR): resized to the model's input,
augmented by random crops and flips, scored with test-time flips when asked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trainlab.data.kinds.base import Kind, Page, Reader
from trainlab.errors import ConfigError

# --tta: none, or flip (each image and its left-right mirror, outputs averaged)
TTAS = ("none", "flip")


class ImageKind(Kind):
    """uint8 images N×C×H×W, normalised per batch on the device."""

    name = "images"
    summary = "images"
    page = Page("Classify a photo", "photo", "upload a photo, or take one")
    rate = "images_per_s"
    images = True

    def augmentation(self, size: Sequence[int], dataset: str, strength: str = "basic"):  # noqa: ARG002
        from trainlab.data.augment import Chain, CropFlip, RandomErasing, TrivialAugment

        if strength == "light":  # a short run or a time budget: less to learn than it shows
            return CropFlip(pad=max(1, round(min(size) / 14)))
        crop_flip = CropFlip(pad=max(1, round(min(size) / 8)))
        if strength == "strong":
            return Chain(crop_flip, TrivialAugment(), RandomErasing(p=0.25))
        return crop_flip

    def check_tta(self, tta: str, dataset: str) -> None:  # noqa: ARG002
        if tta not in TTAS:
            raise ConfigError(f"--tta {tta}: choose one of {', '.join(TTAS)}.")

    def input_transform(self, data, record, norm, channels_last):
        from trainlab.data.batches import InputTransform

        size, channels = record.get("size"), record.get("channels")
        mean, std = norm
        if not mean:  # the normalisation the model's weights expect (its spec's), or the data's
            mean, std = (
                (record["mean"], record["std"]) if record.get("mean") else (data.mean, data.std)
            )
        wanted = channels or data.input_shape[0]
        if len(mean) not in (1, wanted):
            raise ConfigError(
                f"--norm-mean/--norm-std have {len(mean)} values; the model's input has "
                f"{wanted} channel(s). Give one value, or one per channel."
            )
        return InputTransform(
            mean=mean,
            std=std,
            size=tuple(size) if size else None,
            channels=channels,
            channels_last=channels_last,
        )

    def channel_stats(self, train_x):
        from trainlab.data.dataset import channel_stats

        return channel_stats(train_x)

    def reader(self, data: dict[str, Any], max_pixels: int) -> Reader:
        from trainlab.data.images import Prepared, ResizePolicy, read_for, read_image, resize_to

        if data.get("preprocess"):  # a folder dataset's resize policy: made as its images were
            policy = ResizePolicy.from_dict(data["preprocess"])

            def by_policy(source, name=None):
                image = read_for(policy, source, name=name, max_pixels=max_pixels)
                return Prepared(image, False, tuple(policy.size[::-1]))

            return by_policy
        size = tuple(data["input_shape"][-2:])
        # the training data's polarity: light on dark data gets light-on-dark inputs
        mean = data.get("mean") or [0.0]
        dark = sum(mean) / len(mean) < 0.5

        def resized(source, name=None):
            grey = read_image(source, max_pixels=max_pixels, name=name)
            return resize_to(grey, size, dark_background=dark)

        return resized

    def graph_input(self, data: dict[str, Any]) -> str:
        c, h, w = data["input_shape"]
        return f"float32 N×{c}×{h}×{w}, values in [0, 1] (pixel / 255); batch size N is dynamic"


def _register() -> None:
    from trainlab.data.kinds import register_kind

    register_kind(ImageKind())


_register()
