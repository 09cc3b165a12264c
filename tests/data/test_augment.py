"""Batch augmentations on the device: digits moved and turned, photos cropped and mirrored."""

import torch

from trainlab.data.augment import CropFlip, RotateShift
from trainlab.data.batches import InputTransform
from trainlab.data.kinds import get_kind


def test_augment_moves_pixels_keeps_shape_and_follows_the_seed(mnist_small):
    transform = InputTransform(mnist_small.mean, mnist_small.std)
    augmented = transform.with_augment(RotateShift(degrees=10, shift=0.1))
    images = mnist_small.test_x[:64]
    torch.manual_seed(0)
    a = augmented(images)
    torch.manual_seed(0)
    b = augmented(images)
    plain = transform(images)
    assert a.shape == plain.shape and torch.equal(a, b)
    assert (a - plain).abs().mean() > 0.05  # really moved
    # ink is conserved up to the border and interpolation: the digit is moved, not erased
    ink = (images.float() / 255).sum((1, 2, 3))
    moved = (a * transform.std[0] + transform.mean[0]).sum((1, 2, 3))
    assert ((moved - ink).abs() / ink).median() < 0.1
    assert transform.augment is None  # evaluation batches are never augmented


def test_crop_flip_moves_or_mirrors_each_image_of_a_batch():
    import torch.nn.functional as F

    torch.manual_seed(0)
    x = torch.rand(64, 3, 8, 8)
    flipped = CropFlip(pad=0, flip=True)(x)
    mirrored = [torch.equal(a, b.flip(-1)) for a, b in zip(flipped, x, strict=True)]
    kept = [torch.equal(a, b) for a, b in zip(flipped, x, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True)) and 10 < sum(mirrored) < 54
    shifted = CropFlip(pad=2, flip=False)(x)
    padded = F.pad(x, (2, 2, 2, 2), mode="reflect")
    windows = {(i, j) for i in range(5) for j in range(5)}
    for image, source in zip(shifted, padded, strict=True):
        assert any(torch.equal(image, source[:, i : i + 8, j : j + 8]) for i, j in windows)
    # what --augment means is the kind's: rotations and shifts for digits, crops for photos
    assert "rotations" in get_kind("digits").augmentation((28, 28), "mnist").describe()
    crop = get_kind("images").augmentation((32, 32), "photos").describe()
    assert crop.startswith("random crop (±4 px")
