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


def _same_image(image, n=64):
    return image.unsqueeze(0).expand(n, *image.shape).clone()


def test_strong_draws_its_own_change_per_photo_of_one_batch():
    from skimage import data as photos

    cat = torch.from_numpy(photos.chelsea()).permute(2, 0, 1)[:, ::8, ::8].contiguous()  # 3×38×57
    batch = _same_image(cat.float() / 255)  # 64 copies of one photo
    augment = get_kind("images").augmentation(tuple(cat.shape[1:]), "photos", "strong")
    assert "TrivialAugmentWide per image" in augment.describe()
    assert "random erasing" in augment.describe()
    torch.manual_seed(0)
    out = augment(batch)
    assert out.shape == batch.shape and out.min() >= 0 and out.max() <= 1
    distinct = {tuple(image.flatten()[::97].tolist()) for image in out}
    assert len(distinct) >= 60  # nearly every copy got a change of its own
    torch.manual_seed(0)
    assert torch.equal(out, augment(batch))  # and the seed replays them


def _lean(images):
    """The covariance of ink's x and y coordinates, per image."""
    h, w = images.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    ink = images[:, 0]
    total = ink.sum((1, 2))
    mx, my = (ink * xs).sum((1, 2)) / total, (ink * ys).sum((1, 2)) / total
    return (ink * (xs - mx.view(-1, 1, 1)) * (ys - my.view(-1, 1, 1))).sum((1, 2)) / total


def test_strong_digits_are_moved_and_erased_never_mirrored_or_recoloured(mnist_small):
    seven = mnist_small.test_x[mnist_small.test_y == 7][0].float() / 255  # 1×28×28
    augment = get_kind("digits").augmentation((28, 28), "mnist", "strong")
    text = augment.describe()
    assert "shear" in text and "erasing" in text
    assert "flip" not in text and "TrivialAugment" not in text
    torch.manual_seed(0)
    out = augment(_same_image(seven, 256))
    distinct = {tuple(image.flatten()[::7].tolist()) for image in out}
    assert len(distinct) >= 250
    # each copy still leans as the 7 does (its stroke from top right to bottom left: ink's
    # x and y vary in opposite ways); a mirror image would lean the other way
    assert _lean(seven.unsqueeze(0)) < 0 and _lean(seven.flip(-1).unsqueeze(0)) > 0
    # (shear and erasing straighten a few; a left-right flip at p 0.5 would turn half)
    assert (_lean(out) < 0).float().mean() > 0.85
    # no colour operation: ink is only moved or erased, never brightened
    assert out.max() <= seven.max() + 1e-6


def test_random_erasing_blanks_one_rectangle_per_chosen_image():
    from trainlab.data.augment import RandomErasing

    torch.manual_seed(0)
    x = torch.rand(200, 3, 20, 20) * 0.9 + 0.1  # nothing is 0 before
    out = RandomErasing(p=0.5, scale=(0.05, 0.2))(x)
    erased = (out == 0).all(1)  # N×H×W, the same pixels in every channel
    counts = erased.sum((1, 2))
    assert 60 < int((counts > 0).sum()) < 140  # about half of them
    for mask in erased[counts > 0]:
        rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert int(mask.sum()) == int(box)  # one filled rectangle
        assert 0.05 * 400 * 0.5 <= int(box) <= 0.2 * 400 * 1.5  # its area as asked (rounding)


def test_clothes_are_mirrored_in_training_and_digits_are_not(tmp_path):
    """Fashion-MNIST is a set of pictures (a mirrored sandal is a sandal): crops and flips, as
    photos; the MNIST family's digits keep their rotations and shifts."""
    from pathlib import Path

    import pytest

    from trainlab.data import load_dataset
    from trainlab.data.registry import DATASETS

    assert DATASETS.lookup("fashion-mnist").kind == "images"
    assert DATASETS.lookup("mnist").kind == DATASETS.lookup("kmnist").kind == "digits"
    if not Path("/usr/share/datasets/fashion-mnist").is_dir():
        pytest.skip("apt-get install dataset-fashion-mnist (.ci/run does)")
    data = load_dataset("fashion-mnist", tmp_path, sources=("local", "system"))
    sandal = data.test_x[data.test_y == 5][0].float() / 255  # 1×28×28
    augment = data.kind_entry.augmentation((28, 28), "fashion-mnist")
    assert "flip" in augment.describe()
    torch.manual_seed(0)
    out = augment(_same_image(sandal, 256))
    mirrored = _lean(out) * _lean(sandal.unsqueeze(0)) < 0  # leaning the other way
    assert 0.3 < mirrored.float().mean() < 0.7  # about half of them


def test_light_moves_photos_and_digits_less_than_basic(mnist_small):
    """--augment light (a time budget's): crops of ±2 px at 28 px against basic's ±4, digits
    turned at most 5° and moved 5%; never a flip for digits at any strength."""
    images = get_kind("images")
    assert (
        images.augmentation((28, 28), "fashion-mnist", "light")
        .describe()
        .startswith("random crop (±2 px")
    )
    assert (
        images.augmentation((28, 28), "fashion-mnist").describe().startswith("random crop (±4 px")
    )
    digits = get_kind("digits")
    transform = InputTransform(mnist_small.mean, mnist_small.std)
    batch = mnist_small.test_x[:256]
    plain = transform(batch)
    moved = {}
    for strength in ("light", "basic"):
        torch.manual_seed(0)
        augment = digits.augmentation((28, 28), "mnist", strength)
        moved[strength] = (transform.with_augment(augment)(batch) - plain).abs().mean()
    assert 0 < moved["light"] < 0.75 * moved["basic"], moved
