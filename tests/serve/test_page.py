"""The page each kind of data gets (serve/page.py), read as HTML; and a clear refusal for a
model whose kind has none. What the page does in a browser: test_load_and_page.py."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from helpers import assert_clean_error, run_cli, run_here
from trainlab.data.kinds import get_kind
from trainlab.errors import ConfigError
from trainlab.serve.page import render_page

V1 = Path(__file__).resolve().parents[1] / "fixtures" / "v1"


class Elements(HTMLParser):
    """Each element's attributes by id (and by tag for those without), the text of each, and
    the scripts."""

    def __init__(self, text: str):
        super().__init__()
        self.by_id: dict[str, dict[str, str]] = {}
        self.text: dict[str, str] = {}
        self.scripts: list[str] = []
        self.tags: list[tuple[str, dict[str, str]]] = []
        self._open: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attrs))
        key = attrs.get("id", tag)
        self.by_id.setdefault(key, attrs)
        if tag not in ("input", "img", "meta", "link", "br"):
            self._open.append(key)
        if tag == "script":
            self.scripts.append("")

    def handle_endtag(self, tag):  # noqa: ARG002 - every element closes the innermost
        if self._open:
            self._open.pop()

    def handle_data(self, data):
        for key in self._open:
            self.text[key] = self.text.get(key, "") + data
        if self._open and self._open[-1] == "script":
            self.scripts[-1] += data


@pytest.fixture(scope="module")
def described(default_run):
    from trainlab.inference import Predictor

    return Predictor(default_run, device="cpu").describe()


def test_a_digits_model_gets_a_drawing_pad(described):
    text = render_page(described, get_kind("digits").page)
    page = Elements(text)
    assert page.text["h1"] == "Draw a digit" and page.text["title"] == "trainlab: Draw a digit"
    pad = page.by_id["pad"]
    assert pad["class"] == "draw" and pad["aria-label"].startswith("drawing area")
    assert "camera" not in page.by_id  # nothing to hold up to a digit on a screen
    assert page.by_id["upload"]["type"] == "file"
    assert page.text["prob"] == "draw, or upload an image"
    assert "test accuracy" in page.text["run"] and "model cnn on mnist" in page.text["run"]
    assert "what the model saw (28×28)" in text


def test_a_photo_model_gets_an_upload_a_preview_and_a_phones_camera(described):
    model = {**described, "kind": "images", "input_shape": [3, 32, 32]}
    text = render_page(model, get_kind("images").page)
    page = Elements(text)
    assert page.text["h1"] == "Classify a photo" and "Draw" not in text
    pad = page.by_id["pad"]
    assert pad["class"] == "photo" and pad["role"] == "img"
    assert pad["aria-label"].startswith("preview of the photo sent to the model")
    assert "drawing" not in pad["aria-label"]
    # the camera input is there, in a label the stylesheet shows only for a coarse pointer
    camera = page.by_id["camera"]
    assert camera["capture"] == "environment" and camera["accept"] == "image/*"
    assert re.search(r"label\.camera \{ display: none; \}", text)
    assert re.search(r"@media \(pointer: coarse\) \{ label\.camera \{ display: inline-block", text)
    assert page.text["prob"] == "upload a photo, or take one"
    assert "(32×32)" in text


def test_markup_in_names_stays_text_and_the_script_stays_one_script(described):
    """A class named "</script><script>…" ends nothing: the page has one script, and the
    classes it reads are the names as given."""
    evil = ["</script><script>alert(1)</script>", "<b>bold</b>", "a & b", "it's"]
    model = {**described, "classes": evil, "run": "<i>run</i>", "dataset": "</div>"}
    text = render_page(model, get_kind("images").page)
    page = Elements(text)
    assert len(page.scripts) == 1 and text.count("<script>") == 1
    assert "<b>bold</b>" not in text and "<i>run</i>" not in text
    data = json.loads(re.search(r"const MODEL = (.*?);\n", page.scripts[0]).group(1))
    assert data["classes"] == evil and data["input"] == "photo"
    assert ", ".join(evil) in page.text["run"] and "<i>run</i>" in page.text["run"]


def test_no_page_no_network(described):
    for kind in ("digits", "images"):
        text = render_page(described, get_kind(kind).page)
        assert "http://" not in text and "https://" not in text
        assert all(not attrs.get("src", "").startswith("http") for _, attrs in Elements(text).tags)


def test_a_kind_without_a_page_is_refused_by_name(described):
    model = {**described, "kind": "tabular", "dataset": "random"}
    with pytest.raises(ConfigError) as refused:
        render_page(model, None)
    message = str(refused.value)
    assert "rows of numeric features" in message and "dataset 'random'" in message
    assert "offers no page" in message and "digits, images" in message


def test_serve_refuses_a_table_model_in_one_paragraph(tmp_path):
    """`trainlab train --dataset random --model mlp`, then serve it: a refusal, no server."""
    trained = run_here(
        "train", "--dataset", "random", "--model", "mlp", "--epochs", "1", "--device", "cpu",
        "--runs-dir", str(tmp_path), "--run-name", "table",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    proc = run_cli("serve", str(tmp_path / "table"), "--port", "1", timeout=300)
    assert_clean_error(proc, "rows of numeric features", "dataset 'random'", "serve")
    assert len(proc.stderr.strip().splitlines()) == 1 and "serving" not in proc.stderr


def test_serve_refuses_a_regression_model_in_one_paragraph():
    proc = run_cli("serve", str(V1 / "linreg"), "--port", "1", timeout=300)
    assert_clean_error(proc, "regression model", "not a classifier")
    assert len(proc.stderr.strip().splitlines()) == 1 and "serving" not in proc.stderr
