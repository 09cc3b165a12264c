"""MNIST-style preprocessing: properties on random strokes, and every kind of bad or odd file."""

import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from trainlab.data.images import (
    ImageError,
    background_is_light,
    mnist_style,
    read_image,
)


def _strokes(rng: np.random.Generator, light_background: bool) -> tuple[Image.Image, tuple]:
    """A random 'digit': a few thick strokes somewhere on a canvas of random size."""
    w, h = int(rng.integers(40, 300)), int(rng.integers(40, 300))
    paper, ink = (235, 20) if light_background else (15, 240)
    image = Image.new("L", (w, h), paper)
    draw = ImageDraw.Draw(image)
    box_w, box_h = int(w * rng.uniform(0.2, 0.7)), int(h * rng.uniform(0.2, 0.7))
    x0, y0 = int(rng.integers(1, w - box_w)), int(rng.integers(1, h - box_h))
    width = max(2, int(min(box_w, box_h) * rng.uniform(0.08, 0.2)))
    for _ in range(int(rng.integers(1, 4))):
        points = [
            (x0 + rng.uniform(0, box_w), y0 + rng.uniform(0, box_h))
            for _ in range(int(rng.integers(2, 5)))
        ]
        draw.line(points, fill=ink, width=width, joint="curve")
    noise = rng.normal(0, 4, (h, w))
    return Image.fromarray(np.clip(np.asarray(image) + noise, 0, 255).astype(np.uint8)), (w, h)


def _centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(image.shape)
    total = image.sum()
    return (ys * image).sum() / total, (xs * image).sum() / total


@pytest.mark.parametrize("light_background", [True, False])
def test_properties_hold_on_random_strokes(light_background):
    rng = np.random.default_rng(1 if light_background else 2)
    full_size = 0
    for _ in range(100):
        picture, _ = _strokes(rng, light_background)
        grey = read_image(picture)
        prepared = mnist_style(grey)
        out = prepared.image
        assert out.shape == (28, 28) and out.dtype == np.uint8
        assert prepared.inverted is light_background  # polarity from the border
        rows, cols = np.nonzero(out > 0)
        # the ink was fitted into 20 pixels on its longer side (+1 for the anti-aliased rim);
        # a lopsided shape gets a smaller box rather than losing ink at the edge
        extent = max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
        assert 10 <= extent <= 22, extent
        full_size += extent >= 19
        # nothing was cut off: no ink on the field's outer rows and columns
        assert out[[0, -1]].max() == 0 and out[:, [0, -1]].max() == 0
        cy, cx = _centre_of_mass(out.astype(np.float64))
        assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5, (cy, cx)
        # light ink on black, as MNIST
        assert background_is_light(out.astype(np.float32) / 255)[0] is False
    assert full_size >= 80  # most shapes fill the 20-pixel box


def test_transparent_canvas_does_not_turn_black():
    image = Image.new("RGBA", (100, 100), (0, 0, 0, 0))  # fully transparent black
    ImageDraw.Draw(image).line([(30, 20), (60, 80)], fill=(0, 0, 0, 255), width=8)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    grey = read_image(buffer.getvalue())
    assert grey[0, 0] == 1.0 and grey[50, 45] < 0.2  # white paper, black ink
    assert mnist_style(grey).inverted is True


def _png_bytes(image: Image.Image, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, **kw)
    return buffer.getvalue()


def _digit(mode: str = "L") -> Image.Image:
    image = Image.new("L", (64, 64), 255)
    ImageDraw.Draw(image).ellipse([20, 12, 44, 52], outline=0, width=6)
    return image.convert(mode)


def test_sixteen_bit_palette_and_cmyk_images_work():
    sixteen = Image.fromarray(np.asarray(_digit(), dtype=np.uint16) * 257)
    assert sixteen.mode.startswith("I;16")
    palette = _digit().convert("P")
    cmyk = _digit("RGB").convert("CMYK")
    for data in (
        _png_bytes(sixteen, format="PNG"),
        _png_bytes(palette, format="PNG"),
        _png_bytes(cmyk, format="JPEG"),
        _png_bytes(_digit("RGB"), format="GIF"),
        _png_bytes(_digit("RGB"), format="WEBP"),
        _png_bytes(_digit("RGB"), format="BMP"),
    ):
        grey = read_image(data)
        assert grey.shape == (64, 64) and grey.max() > 0.9 and grey.min() < 0.1
        assert mnist_style(grey).image.max() > 200


def test_exif_orientation_is_applied():
    image = Image.new("L", (80, 40), 255)  # wide
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display
    data = _png_bytes(image.convert("RGB"), format="JPEG", exif=exif.tobytes())
    assert read_image(data).shape == (80, 40)  # tall after the rotation


def test_arrays_and_tensors_are_accepted():
    import torch

    grey = np.array(_digit(), dtype=np.uint8)
    a = mnist_style(read_image(grey)).image
    assert np.array_equal(a, mnist_style(read_image(torch.from_numpy(grey))).image)
    assert np.array_equal(a, mnist_style(read_image(grey.astype(np.float32) / 255)).image)
    with pytest.raises(ImageError, match="values in \\[0, 1\\]"):
        read_image(np.full((8, 8), 3.0))


def test_bad_files_give_clean_errors(tmp_path):
    (tmp_path / "notes.png").write_text("hello")
    with pytest.raises(ImageError, match="notes.png: not an image"):
        read_image(tmp_path / "notes.png")
    full = _png_bytes(_digit(), format="PNG")
    (tmp_path / "cut.png").write_bytes(full[: len(full) // 2])
    with pytest.raises(ImageError, match="cut.png: the image data is damaged or truncated"):
        read_image(tmp_path / "cut.png")
    with pytest.raises(ImageError, match="no such file"):
        read_image(tmp_path / "missing.png")


def test_an_empty_image_has_no_digit():
    for level in (0, 255, 128):
        with pytest.raises(ImageError, match="no digit found"):
            mnist_style(read_image(np.full((50, 50), level, dtype=np.uint8)))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height pixels, with a tiny (bogus) data stream."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 100))
        + chunk(b"IEND", b"")
    )


def _pixel_buffers() -> int:
    """How many image memories Pillow has allocated in this process (its arena's counter):
    decoding allocates one; reading a header allocates none."""
    return Image.core.get_stats()["new_count"]


@pytest.mark.parametrize("side", [5_000, 10_000, 50_000])
def test_decompression_bombs_are_refused_before_decoding(side):
    content = png_header_only(side, side)
    decoded = _pixel_buffers()
    read_image(_png_bytes(_digit(), format="PNG"))
    assert _pixel_buffers() > decoded  # the counter sees a decode
    before = _pixel_buffers()
    with pytest.raises(ImageError, match="refused before decoding"):
        read_image(content, max_pixels=16_000_000)
    assert _pixel_buffers() == before  # no pixel buffer for side² pixels, nor any other


def test_only_trainlabs_refusal_is_said_for_a_10000_pixel_square():
    """Pillow warns (DecompressionBombWarning) from 89 M pixels on, as it reads the header;
    trainlab's own refusal (16 M by default) is the one thing said."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageError) as refused:
            read_image(png_header_only(10_000, 10_000), name="big.png")
    assert str(refused.value) == (
        "big.png: 10000×10000 pixels is more than the limit of 16,000,000 (refused before "
        "decoding, as a decompression bomb could be). Scale the image down, or raise the limit "
        "(--max-pixels)."
    )
    assert [str(w.message) for w in caught] == []
    # with the limit raised past Pillow's, the image is decoded, and still nothing is warned
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageError, match="damaged or truncated"):  # its data is 100 bytes
            read_image(png_header_only(10_000, 10_000), max_pixels=100_000_000)
    assert [str(w.message) for w in caught] == []


def test_mnists_own_digits_pass_unchanged_and_others_are_refitted(mnist, tmp_path):
    """A digit that already looks like MNIST's (28×28, light on black, in 20×20, centred) is
    not fitted again: re-fitting only blurred it (14/255 per pixel on average), which cost
    predict's accuracy and the "none of these" share on MNIST's own test files."""
    from trainlab.data.images import mnist_style, read_image

    for i, digit in enumerate(mnist.test_x[:200, 0].numpy()):
        Image.fromarray(digit).save(tmp_path / f"{i}.png")
        seen = mnist_style(read_image(tmp_path / f"{i}.png")).image
        assert np.array_equal(seen, digit)
    moved = np.roll(mnist.test_x[0, 0].numpy(), 4, axis=1)  # off centre: centred again
    assert not np.array_equal(mnist_style(moved / 255.0).image, moved)
