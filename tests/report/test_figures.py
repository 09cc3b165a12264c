"""The report's figures, read as pixels: mistakes.png's captions stay clear of the images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from trainlab.engine.predictions import load_predictions
from trainlab.report import figures

FASHION = ["T-shirt or top", "Trouser", "Pullover", "Dress", "Coat"]
FASHION += ["Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _layout(fig):
    """Draw ``fig`` as savefig does; its pixels (RGB, rows from the top), caption boxes and
    image boxes in pixels."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    shown = [ax for ax in fig.axes if ax.images]
    titles = [ax.title.get_window_extent(renderer) for ax in shown]
    images = [ax.images[0].get_window_extent(renderer) for ax in shown]
    return pixels, titles, images


def _crop(pixels, box):
    """The pixels inside a display box (origin at the bottom left)."""
    height = pixels.shape[0]
    top, bottom = int(np.floor(height - box.y1)), int(np.ceil(height - box.y0))
    return pixels[max(top, 0) : bottom, max(int(box.x0), 0) : int(np.ceil(box.x1))]


@pytest.mark.parametrize("names, k", [(None, 16), (FASHION, 32)], ids=["as-run", "long-names"])
def test_no_caption_of_mistakes_png_runs_into_an_image(v1_report, names, k):
    """The run's mistakes.png (16 mistakes: two rows of eight), then four rows with longer
    class names: every caption's box is clear of every image, and the pixels in it are the
    caption's own (the same with the images made transparent)."""
    run, paths = v1_report
    predictions = load_predictions(run / "predictions.npz")
    if names is not None:
        predictions["classes"] = np.array(names)
    fig = figures.mistakes_figure(predictions, k)
    pixels, titles, images = _layout(fig)
    if names is None:  # the figure drawn here is the one the report saved
        saved = np.asarray(Image.open(paths["mistakes"]).convert("RGB"))
        assert saved.shape == pixels.shape and np.array_equal(saved, pixels)
    rows = sorted({round(box.y0) for box in images})
    assert len(images) == k and len(rows) == k // 8 >= 2

    for ax, title in zip((ax for ax in fig.axes if ax.images), titles, strict=True):
        assert ax.get_title().startswith("true ")
        assert not any(title.overlaps(image) for image in images), (title, ax.get_title())
        assert sum(title.overlaps(other) for other in titles) == 1  # only itself
        assert title.y0 >= 0 and title.y1 <= pixels.shape[0]  # inside the picture

    # the same figure drawn once more (constrained layout moves a little on a second draw of
    # one figure, so a new one), its images transparent: still laid out, no longer drawn
    blank = figures.mistakes_figure(predictions, k)
    for ax in blank.axes:
        for image in ax.images:
            image.set_alpha(0)
    alone, still, _ = _layout(blank)
    assert [tuple(b.bounds) for b in still] == [tuple(b.bounds) for b in titles]
    for title in titles:
        caption = _crop(pixels, title)
        assert caption.min() < 100  # the caption's dark text is there
        assert np.array_equal(caption, _crop(alone, title))  # and nothing of any image


def test_without_mistakes_the_figure_says_so():
    predictions = {
        "classes": np.array(["0", "1"]),
        "mistakes": np.zeros(0, np.int64),
        "labels": np.zeros(3, np.int64),
        "pred": np.zeros(3, np.int64),
    }
    fig = figures.mistakes_figure(predictions)
    assert [t.get_text() for ax in fig.axes for t in ax.texts] == ["no mistakes"]
