"""Kinds of data: each one says, in its own module, what its inputs are and what every step does
with them; a new kind is one module, and a run of it trains, predicts and serves."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from trainlab.data.kinds import KINDS, get_kind
from trainlab.errors import ConfigError


def test_each_kind_declares_its_task_page_and_augmentation():
    digits, images, tabular = get_kind("digits"), get_kind("images"), get_kind("tabular")
    assert {k: KINDS.all()[k].task.name for k in ("digits", "images", "tabular", "regression")} == {
        "digits": "classification",
        "images": "classification",
        "tabular": "classification",
        "regression": "regression",
    }
    assert (digits.page.title, digits.page.input) == ("Draw a digit", "draw")
    assert (images.page.title, images.page.input) == ("Classify a photo", "photo")
    assert tabular.page is None
    assert "rotations" in digits.augmentation((28, 28), "mnist").describe()
    assert "flip" in images.augmentation((32, 32), "photos").describe()


@pytest.mark.parametrize(
    ("kind", "call", "message"),
    [
        ("tabular", lambda k: k.augmentation((10,), "random"), "--augment changes images"),
        ("digits", lambda k: k.check_tta("flip", "mnist"), "never flipped"),
        ("tabular", lambda k: k.check_tta("flip", "random"), "--tta flip mirrors images"),
        ("tabular", lambda k: k.reader({"name": "random"}, 10), "predict, serve and export"),
        ("regression", lambda k: k.reader({"name": "linear"}, 10), "which it does not take"),
    ],
)
def test_what_a_kind_cannot_do_is_refused_by_its_own_words(kind, call, message):
    with pytest.raises(ConfigError, match=message):
        call(get_kind(kind))


NEW_KIND = '''
"""Sketches: black strokes on white, read as drawn (no MNIST-style centring)."""
from trainlab.data.kinds import register_kind
from trainlab.data.kinds.base import Page
from trainlab.data.kinds.images import ImageKind


class SketchKind(ImageKind):
    name = "sketches"
    summary = "pen sketches"
    page = Page("Sketch something", "draw", "sketch with the mouse")


register_kind(SketchKind())
'''


def test_a_new_kind_is_one_module_and_a_run_of_it_trains_predicts_and_serves(
    tmp_path, mnist_small, monkeypatch
):
    from trainlab import Trainer, build_model
    from trainlab.data import Dataset
    from trainlab.inference import Predictor
    from trainlab.serve.page import render_page

    (tmp_path / "sketchkind.py").write_text(NEW_KIND)
    monkeypatch.syspath_prepend(str(tmp_path))
    import sketchkind  # noqa: F401 - registers the kind: the only file that was added

    data = Dataset(
        "sketch-digits",
        mnist_small.train_x[:600],
        mnist_small.train_y[:600],
        mnist_small.test_x[:200],
        mnist_small.test_y[:200],
        classes=mnist_small.classes,
        kind="sketches",
    )
    torch.manual_seed(0)
    result = Trainer(epochs=1, runs_dir=str(tmp_path), device="cpu", quiet=True).fit(
        build_model("cnn", data), data
    )
    assert result.final["test_acc"] > 0.5
    predictor = Predictor(result.run_dir, device="cpu")
    assert predictor.kind == "sketches" and predictor.page.title == "Sketch something"
    digit = Image.fromarray(mnist_small.test_x[0, 0].numpy())
    (answer,) = predictor.predict([digit])
    assert answer.ok and answer.preview.shape[-2:] == (28, 28)
    assert np.isclose(sum(answer.probabilities), 1, atol=1e-4)
    page = render_page(predictor.describe(), predictor.page)
    assert "<h1>Sketch something</h1>" in page and "sketch with the mouse" in page
