"""POST /api/predict?explain=1: the heat map over the image the model saw, as a base64 PNG in
the answer, and the page's toggle that shows it. Over the app in-process."""

from __future__ import annotations

import asyncio
import base64
import io

import httpx
import numpy as np
import pytest
from PIL import Image

from trainlab.inference import Predictor
from trainlab.serve.app import create_app


@pytest.fixture(scope="module")
def app(default_run):
    return create_app(Predictor(default_run, device="cpu"))


def _ask(app, *requests):
    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:
            return [await client.request(*r[:2], **r[2]) for r in requests]

    return asyncio.run(scenario())


def _png(reply_b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(reply_b64)))


def test_explain_returns_the_overlay_and_the_same_answer(app, digits):
    blob, label = digits[0]
    png = {"content": blob, "headers": {"Content-Type": "image/png"}}
    plain, shown = _ask(app, ("POST", "/api/predict", png), ("POST", "/api/predict?explain=1", png))
    assert plain.status_code == 200 and shown.status_code == 200, shown.text
    assert plain.json()["heat_map_png"] is None  # only when asked
    answer = shown.json()
    assert answer["label"] == label
    assert answer["probabilities"] == plain.json()["probabilities"]  # the model is untouched
    overlay = _png(answer["heat_map_png"])
    assert overlay.mode == "RGB" and overlay.width >= 112 and overlay.width % 28 == 0
    # coloured where it looked: the overlay is not the grey preview scaled up
    pixels = np.asarray(overlay).astype(int)
    assert (pixels.max(-1) - pixels.min(-1)).max() > 60


def test_bad_input_with_explain_is_a_400_and_a_batch_explains_the_good_ones(app, digits):
    blob, _ = digits[1]
    junk = {"content": b"not an image", "headers": {"Content-Type": "image/png"}}
    batch = {"json": {"images": [base64.b64encode(blob).decode(), "bm90IGFuIGltYWdl"]}}
    bad, empty, listed = _ask(
        app,
        ("POST", "/api/predict?explain=1", junk),
        ("POST", "/api/predict?explain=1", {"content": b"", "headers": junk["headers"]}),
        ("POST", "/api/predict/batch?explain=1", batch),
    )
    assert bad.status_code == 400 and "error" in bad.json()
    assert empty.status_code == 400
    assert listed.status_code == 200, listed.text
    good, broken = listed.json()["predictions"]
    assert _png(good["prediction"]["heat_map_png"]).mode == "RGB"
    assert broken["error"] and broken.get("prediction") is None


def test_the_page_has_a_toggle_that_asks_for_the_heat_map(app):
    (page,) = _ask(app, ("GET", "/", {}))
    assert page.status_code == 200
    assert 'id="explain" type="checkbox"' in page.text
    assert "api/predict?explain=1" in page.text and "heat_map_png" in page.text
