"""Images in: decoding any picture people give, and the resize policies that make it an input.

The one place that turns a file, bytes, a PIL image or an array into the model's input, for
training (folder datasets decode through ``ResizePolicy``) and for predict, export and serve.

Example:
    >>> from trainlab.data.images import read_image, mnist_style, ResizePolicy
    >>> grey = read_image("my_digit.jpg")            # float32 H×W in [0, 1], ink bright
    >>> digit = mnist_style(grey)                     # uint8 28×28, as MNIST's authors made theirs

MNIST digits are not just small pictures. Each was fitted into a 20×20 box keeping its aspect
ratio, anti-aliased, and placed in a 28×28 field so that its centre of mass is at the centre,
light ink on a dark background. A photo or a paint-program PNG resized naively to 28×28 is
none of these, and a model trained on MNIST gets most of them wrong. ``mnist_style`` does what
the dataset's authors did; ``read_image`` gets any image Pillow reads into a grey array with the
ink bright, refusing decompression bombs before anything is decoded. ``ResizePolicy`` is how
any other picture becomes an input (shorter side to the size and a centre crop, or padding),
recorded with a run so training and inference make the same pixels.
"""

from __future__ import annotations

import contextlib
import io
import math
import threading
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainlab.errors import TrainlabError

# Refused before decoding: a 16-megapixel photo fits; a 50,000×50,000 header (2.5 gigapixels,
# 2.5 GB as grey bytes) does not. ``--max-pixels`` changes it.
MAX_PIXELS = 16_000_000
# Ink: what differs from the background by more than this fraction of the image's contrast.
INK_THRESHOLD = 0.2
# Below this contrast (on the [0, 1] scale) an image is taken as empty: no digit to read.
MIN_CONTRAST = 0.1
FIELD, BOX = 28, 20
_PILLOW_WARNING_LOCK = threading.Lock()


class ImageError(TrainlabError):
    """An input image cannot be read or holds no digit; the message names the file."""


@dataclass
class Prepared:
    """One input made ready for the model."""

    image: np.ndarray  # uint8, the model's input size (28×28 for the MNIST family)
    inverted: bool  # the input was dark ink on a light background
    source_size: tuple[int, int]  # (width, height) of the decoded image


def read_image(
    source, *, max_pixels: int = MAX_PIXELS, name: str | None = None, colour: bool = False
) -> np.ndarray:
    """Decode an image into a float32 grey array in [0, 1] (H×W), 1.0 being white.

    Args:
        source: a path, raw bytes, a PIL image, a numpy array (H×W or H×W×C, uint8 or float in
            [0, 1], uint16) or a uint8 tensor (H×W or C×H×W).
        max_pixels: images whose header claims more pixels are refused before decoding.
        name: what to call the input in errors (default: the path).

    Applies the EXIF orientation, takes a GIF's first frame, composites transparency onto
    white (a transparent canvas must not turn black) and reads 16-bit and CMYK images.
    With ``colour``, returns float32 H×W×3 in [0, 1] (RGB; grey repeated) instead.
    """
    from PIL import Image, UnidentifiedImageError

    label = name or (str(source) if isinstance(source, str | Path) else type(source).__name__)
    if isinstance(source, torch.Tensor):
        source = source.detach().cpu().numpy()
        if source.ndim == 3 and source.shape[0] in (1, 3, 4):
            source = np.moveaxis(source, 0, -1)
    if isinstance(source, np.ndarray):
        if colour:
            return _rgb_from_array(source, label)
        return _grey_from_array(source, label)
    if isinstance(source, Image.Image):
        return _from_pil(source, label, max_pixels, colour)
    if isinstance(source, bytes | bytearray):
        stream = io.BytesIO(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"{label}: no such file.")
        stream = path.open("rb")
    with stream:
        try:
            image = open_image(stream)
        except Image.DecompressionBombError as e:
            raise ImageError(
                f"{label}: refused before decoding ({_first_line(e)}); trainlab's limit is "
                f"{max_pixels:,} pixels (--max-pixels)."
            ) from None
        except Exception as e:  # noqa: BLE001 - Pillow's plugins raise many kinds on bad data
            detail = "unknown format" if isinstance(e, UnidentifiedImageError) else _first_line(e)
            raise ImageError(
                f"{label}: not an image Pillow can read ({detail}). Give a PNG, JPEG, BMP, GIF, "
                "WebP or TIFF file."
            ) from None
        return _from_pil(image, label, max_pixels, colour)


@contextlib.contextmanager
def _no_pillow_bomb_warning():
    """Pillow warns (``DecompressionBombWarning``) past its own limit, 89 M pixels, as it reads
    a header or decodes; trainlab refuses past ``max_pixels`` itself, in its own words, so the
    warning is only noise printed before them. Warning filters are process-wide (Python 3.11),
    so the change is made under a lock: around header reads, and around the decoding of images
    past Pillow's limit (which only a raised --max-pixels lets through)."""
    from PIL import Image

    with _PILLOW_WARNING_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def open_image(source):
    """``PIL.Image.open`` (the header only; nothing is decoded) without Pillow's decompression
    bomb warning: callers compare ``image.size`` with their own limit and say so themselves.

    Raises:
        PIL.Image.DecompressionBombError: past twice Pillow's limit, as ``Image.open``.
    """
    from PIL import Image

    with _no_pillow_bomb_warning():
        return Image.open(source)


def _from_pil(image, label: str, max_pixels: int, colour: bool) -> np.ndarray:
    if not colour:
        return _grey_from_pil(image, label, max_pixels)
    grey_or_rgb = _grey_from_pil(image, label, max_pixels, keep_colour=True)
    if grey_or_rgb.ndim == 2:
        return np.repeat(grey_or_rgb[..., None], 3, axis=-1)
    return grey_or_rgb


def _rgb_from_array(array: np.ndarray, label: str) -> np.ndarray:
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        scale = 255.0 if array.dtype == np.uint8 else 65535.0 if array.dtype == np.uint16 else 1.0
        rgb = array[..., :3].astype(np.float32) / scale
        if array.shape[-1] == 4:
            alpha = array[..., 3:4].astype(np.float32) / scale
            rgb = rgb * alpha + (1 - alpha)
        if not np.isfinite(rgb).all() or rgb.min() < 0 or rgb.max() > 1:
            raise ImageError(f"{label}: a float image must hold values in [0, 1].")
        return rgb
    return np.repeat(_grey_from_array(array, label)[..., None], 3, axis=-1)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:200]


def _grey_from_pil(image, label: str, max_pixels: int, keep_colour: bool = False) -> np.ndarray:
    from PIL import Image, ImageOps

    width, height = image.size
    if width * height > max_pixels or width <= 0 or height <= 0:
        raise ImageError(
            f"{label}: {width}×{height} pixels is more than the limit of {max_pixels:,} "
            "(refused before decoding, as a decompression bomb could be). Scale the image down, "
            "or raise the limit (--max-pixels)."
        )
    past_pillows_limit = width * height > (Image.MAX_IMAGE_PIXELS or width * height)
    try:
        with _no_pillow_bomb_warning() if past_pillows_limit else contextlib.nullcontext():
            if getattr(image, "is_animated", False):
                image.seek(0)  # a GIF's (or WebP's) first frame
            image.load()
        image = ImageOps.exif_transpose(image)
        if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
            array = np.asarray(image, dtype=np.float64)
            top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
            if image.mode == "F" and array.max() <= 1.0:
                top = 1.0
            return np.clip(array / top, 0, 1).astype(np.float32)
        if image.mode == "P":
            image = image.convert("RGBA")
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            image = image.convert("RGBA")
            white = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, image)
        if keep_colour and image.mode not in ("L", "1"):
            return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        grey = image.convert("L")
    except MemoryError:
        raise ImageError(f"{label}: too large to decode in memory.") from None
    except Exception as e:  # noqa: BLE001 - Pillow's plugins raise many kinds on bad data
        raise ImageError(
            f"{label}: the image data is damaged or truncated ({_first_line(e)})."
        ) from None
    return np.asarray(grey, dtype=np.float32) / 255.0


def _grey_from_array(array: np.ndarray, label: str) -> np.ndarray:
    if array.ndim == 3 and array.shape[-1] in (1, 3, 4):
        if array.shape[-1] == 4:  # RGBA: composite onto white
            scale = 255.0 if array.dtype == np.uint8 else 1.0
            alpha = array[..., 3:4].astype(np.float32) / scale
            rgb = array[..., :3].astype(np.float32) / scale
            array = rgb * alpha + (1 - alpha)
            array = array.mean(-1)
        else:
            array = array.mean(-1) if array.dtype != np.uint8 else array.mean(-1) / 255.0
            return np.clip(array, 0, 1).astype(np.float32)
    if array.ndim != 2 or min(array.shape) < 1:
        raise ImageError(f"{label}: expected an H×W or H×W×C image array, got shape {array.shape}.")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    array = array.astype(np.float32)
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
        raise ImageError(f"{label}: a float image must hold values in [0, 1].")
    return array


def background_is_light(grey: np.ndarray) -> tuple[bool, float]:
    """Whether the picture is dark ink on a light background, judged from its border (the
    outer 5%, where a digit rarely is), and the background's grey level."""
    h, w = grey.shape
    band = max(1, round(0.05 * min(h, w)))
    border = np.concatenate(
        [grey[:band].ravel(), grey[-band:].ravel(), grey[:, :band].ravel(), grey[:, -band:].ravel()]
    )
    background = float(np.median(border))
    return background > 0.5, background


def ink_from_grey(grey: np.ndarray) -> tuple[np.ndarray, bool]:
    """Ink as bright values on 0: the polarity comes from the border, then the background level
    is subtracted, the contrast stretched to [0, 1] and faint noise cut."""
    inverted, background = background_is_light(grey)
    ink = np.clip((background - grey) if inverted else (grey - background), 0, None)
    contrast = float(ink.max())
    if contrast < MIN_CONTRAST:
        return np.zeros_like(grey), inverted
    ink = ink / contrast
    # below the threshold is paper grain, JPEG noise or shadow; above it, the faintest kept
    # stroke starts near 0 so the cut leaves no step
    ink = np.clip((ink - INK_THRESHOLD) / (1 - INK_THRESHOLD), 0, 1)
    return ink.astype(np.float32), inverted


def mnist_style(grey: np.ndarray, *, name: str = "image") -> Prepared:
    """A grey image (1.0 = white) as an MNIST digit: uint8 28×28, light ink on black, the ink
    fitted into 20×20 keeping its aspect ratio and anti-aliased, its centre of mass at the
    field's centre (13.5, 13.5) to sub-pixel accuracy.

    Raises:
        ImageError: the image holds no ink (blank, or background only).
    """
    if _already_mnist_style(grey):  # re-fitting would only blur it (MNIST's own test files)
        return Prepared(np.rint(grey * 255).clip(0, 255).astype(np.uint8), False, (FIELD, FIELD))
    ink, inverted = ink_from_grey(grey)
    rows, cols = np.nonzero(ink)
    if len(rows) == 0:
        raise ImageError(
            f"{name}: no digit found (the image is blank, or has too little contrast). Draw or "
            "photograph the digit darker or lighter than its background."
        )
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    # A digit whose mass sits far to one side of its box (a long thin tail) cannot have its
    # centre of mass at the centre and its whole box inside the field: then the box shrinks
    # a pixel at a time until both hold, rather than cutting ink off.
    for box in range(BOX, BOX // 2 - 1, -1):
        patch = _fit(crop, box)
        field = _place_by_centre_of_mass(patch)
        if field is not None:
            break
    else:
        field = _place_by_centre_of_mass(_fit(crop, BOX // 2), force=True)
    return Prepared(np.rint(field * 255).clip(0, 255).astype(np.uint8), inverted, grey.shape[::-1])


def _already_mnist_style(grey: np.ndarray) -> bool:
    """28×28, light ink on a black border, the ink's box at most 20×20 and its centre of mass
    within a pixel of the field's centre: what the steps below would make of it already."""
    if grey.shape != (FIELD, FIELD) or background_is_light(grey)[0]:
        return False
    if float(np.median(np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]]))) > 0.02:
        return False
    rows, cols = np.nonzero(grey > 0.02)
    if len(rows) == 0 or max(np.ptp(rows), np.ptp(cols)) + 1 > BOX:
        return False
    mass = grey / grey.sum()
    ys, xs = np.indices(grey.shape)
    centre = (FIELD - 1) / 2
    return bool(abs((mass * ys).sum() - centre) <= 1 and abs((mass * xs).sum() - centre) <= 1)


def _fit(crop: np.ndarray, box: int) -> np.ndarray:
    """Resize so the longer side is ``box`` pixels, keeping the aspect ratio, anti-aliased."""
    h, w = crop.shape
    scale = box / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return _resize(crop, size).astype(np.float64)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize with anti-aliasing (so shrinking averages, not skips), clamped to [0, 1]."""
    resized = F.interpolate(
        torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None],
        size=tuple(size),
        mode="bilinear",
        align_corners=False,
        antialias=True,
    )
    return resized[0, 0].clamp_(0, 1).numpy()


def _place_by_centre_of_mass(patch: np.ndarray, force: bool = False) -> np.ndarray | None:
    """Paste ``patch`` into the 28×28 field so its centre of mass lands on the centre.

    The shift is split into a whole-pixel paste and a sub-pixel bilinear shift; a bilinear
    shift moves the centre of mass by exactly its amount. Returns None when the patch would
    leave the field (a one-pixel margin is kept on every side), unless ``force``.
    """
    total = patch.sum()
    ys, xs = np.indices(patch.shape)
    cy, cx = (ys * patch).sum() / total, (xs * patch).sum() / total
    centre = (FIELD - 1) / 2  # 13.5: the middle of pixels 0..27
    top, left = centre - cy, centre - cx
    h, w = patch.shape
    low, high_top, high_left = 1.0, FIELD - 2 - h, FIELD - 2 - w
    if not (low <= top <= high_top and low <= left <= high_left):
        if not force:
            return None
        top, left = min(max(top, low), high_top), min(max(left, low), high_left)
    whole_top, whole_left = math.floor(top), math.floor(left)
    frac_y, frac_x = top - whole_top, left - whole_left
    field = np.zeros((FIELD, FIELD))
    field[whole_top : whole_top + h, whole_left : whole_left + w] = patch
    # bilinear shift down/right by (frac_y, frac_x); the margin keeps np.roll from wrapping ink
    down = np.roll(field, 1, axis=0)
    return (
        (1 - frac_y) * (1 - frac_x) * field
        + frac_y * (1 - frac_x) * down
        + (1 - frac_y) * frac_x * np.roll(field, 1, axis=1)
        + frac_y * frac_x * np.roll(down, 1, axis=1)
    )


def resize_to(grey: np.ndarray, size: tuple[int, int], *, dark_background: bool) -> Prepared:
    """For datasets other than the MNIST family: resize to the model's input, anti-aliased,
    turned to the training data's polarity (``dark_background``: light ink on black)."""
    inverted, _ = background_is_light(grey)
    ink_bright = 1 - grey if inverted else grey
    image = ink_bright if dark_background else 1 - ink_bright
    return Prepared(naive_resize(image, size), inverted, grey.shape[::-1])


def naive_resize(grey: np.ndarray, size: tuple[int, int] = (FIELD, FIELD)) -> np.ndarray:
    """What tutorials do: resize the whole picture, keep its polarity. For comparison only."""
    return np.rint(_resize(grey, size) * 255).astype(np.uint8)


@dataclass(frozen=True)
class ResizePolicy:
    """How a picture becomes the model's input: the one function training and inference share.

    Args:
        size: (height, width) of the result.
        channels: 1 (grey) or 3 (RGB).
        mode: "crop" (shorter side to the size, centre crop) or "pad" (longer side to the size,
            padded with black).
    """

    size: tuple[int, int]
    channels: int
    mode: str = "crop"
    crop: float = 1.0  # crop mode: the centre crop's share of the resized side (0.875: 256->224)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "size": list(self.size)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ResizePolicy:
        return cls(
            tuple(values["size"]),
            int(values["channels"]),
            values.get("mode", "crop"),
            float(values.get("crop", 1.0)),
        )

    def apply(self, picture: np.ndarray) -> np.ndarray:
        """float H×W×3 (or H×W) in [0, 1] -> uint8 C×H×W."""
        x = torch.from_numpy(np.ascontiguousarray(picture, dtype=np.float32))
        x = x[None, None] if x.dim() == 2 else x.permute(2, 0, 1)[None]
        if self.channels == 1 and x.shape[1] == 3:
            x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        elif self.channels == 3 and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        (h, w), (H, W) = x.shape[-2:], self.size
        scale = max(H / h, W / w) / self.crop if self.mode == "crop" else min(H / h, W / w)
        new = (max(1, round(h * scale)), max(1, round(w * scale)))
        x = F.interpolate(x, size=new, mode="bilinear", antialias=True, align_corners=False)
        if self.mode == "crop":
            top, left = (new[0] - H) // 2, (new[1] - W) // 2
            x = x[..., top : top + H, left : left + W]
        else:
            dh, dw = H - new[0], W - new[1]
            x = F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
        return (x[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def read_for(policy: ResizePolicy, source, *, name: str | None = None, max_pixels=None):
    """Decode any image people give (path, bytes, PIL, array) and apply ``policy``."""
    picture = read_image(source, max_pixels=max_pixels or MAX_PIXELS, name=name, colour=True)
    return policy.apply(picture)
