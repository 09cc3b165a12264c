"""Under load (16 clients, 500 requests) and in a real browser (Debian's chromium)."""

import os
import shutil
import threading
from pathlib import Path

import httpx
import pytest

from helpers import ensure_chromium, launch_chromium

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_500_requests_from_16_clients_are_answered_and_right(server, digits):
    answers, lock = [], threading.Lock()

    def client(k: int):
        with httpx.Client(timeout=60) as http:
            for i in range(k, 500, 16):
                blob, label = digits[i % len(digits)]
                try:
                    reply = http.post(
                        server.url + "/api/predict",
                        content=blob,
                        headers={"Content-Type": "image/png"},
                    )
                    got = (reply.status_code, reply.json().get("label"), label)
                except httpx.HTTPError as e:  # a failed request, not an answer
                    got = (type(e).__name__, None, label)
                with lock:
                    answers.append(got)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 500
    assert {status for status, _, _ in answers} <= {200, 503}
    ok = [(got, want) for status, got, want in answers if status == 200]
    assert ok and all(got == want for got, want in ok)
    print(f"16 clients, 500 requests: {len(ok)} answered 200, {500 - len(ok)} answered 503")


def _draw(page, strokes):
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        (x0, y0), rest = stroke[0], stroke[1:]
        page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=8)
        page.mouse.up()


def test_draw_and_upload_in_chromium(server, digits, tmp_path):
    chromium = ensure_chromium()
    if not chromium:
        pytest.skip("Debian's chromium is not installed and could not be installed here")
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as p:
        browser = launch_chromium(p, chromium)
        page = browser.new_page(viewport={"width": 900, "height": 700})
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on(
            "request",
            lambda r: (
                None
                if r.url.startswith((server.url, "data:"))
                else problems.append(f"left 127.0.0.1: {r.url}")
            ),
        )
        page.goto(server.url + "/")
        assert "test accuracy" in page.inner_text("#run") and "cnn" in page.inner_text("#run")
        # the digits kind's page: a pad to draw on, no camera
        assert page.inner_text("h1") == "Draw a digit" and page.title() == "trainlab: Draw a digit"
        assert page.get_attribute("#pad", "aria-label").startswith("drawing area")
        assert page.evaluate("getComputedStyle(document.getElementById('pad')).cursor") == (
            "crosshair"
        )
        assert page.query_selector("#camera") is None
        # a "7": a top bar, then a diagonal down
        _draw(page, [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]])
        page.wait_for_function("document.getElementById('label').textContent !== '–'")
        assert page.inner_text("#label") == "7"
        assert page.evaluate("document.getElementById('preview').src").startswith("data:image/png")
        assert page.evaluate("document.getElementById('preview').naturalWidth") == 28
        shot = tmp_path / "serve.png"
        page.screenshot(path=str(shot), full_page=True)
        # upload, reached with the keyboard alone
        page.click("#clear")
        page.keyboard.press("Tab")
        for _ in range(6):
            if page.evaluate("document.activeElement.id") == "upload":
                break
            page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "upload"
        blob, label = digits[3]
        (tmp_path / "digit.png").write_bytes(blob)
        page.set_input_files("#upload", str(tmp_path / "digit.png"))
        page.wait_for_function(f"document.getElementById('label').textContent === '{label}'")
        # a phone-sized viewport: nothing wider than the screen, the pad fully visible
        phone = browser.new_page(viewport={"width": 375, "height": 740})
        phone.goto(server.url + "/")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 375
        pad = phone.locator("#pad").bounding_box()
        assert pad["width"] >= 250 and pad["x"] >= 0 and pad["x"] + pad["width"] <= 375
        browser.close()
    assert problems == []
    assert shot.read_bytes()[:4] == b"\x89PNG"
    if os.environ.get("TRAINLAB_KEEP_SCREENSHOT"):
        shutil.copy(shot, DOCS / "serve-screenshot.png")


def _pad_is_blank(page) -> bool:
    """Whether the pad shows nothing but its placeholder (no photo drawn on it)."""
    return page.evaluate(
        """() => {
          const pad = document.getElementById("pad");
          const d = pad.getContext("2d").getImageData(0, 0, pad.width, pad.height).data;
          let coloured = 0;  // the placeholder is grey text; a photo here is tinted
          for (let i = 0; i < d.length; i += 4)
            if (Math.max(d[i], d[i+1], d[i+2]) - Math.min(d[i], d[i+1], d[i+2]) > 40) coloured++;
          return coloured === 0;
        }"""
    )


def test_a_photo_model_page_in_chromium(photo_run, photo_folder, tmp_path):
    """The images kind's page: headed with its title, a preview area (not a drawing area, no
    crosshair), an upload on every screen and the camera only on a touch screen."""
    from serving import Server

    chromium = ensure_chromium()
    if not chromium:
        pytest.skip("Debian's chromium is not installed and could not be installed here")
    from playwright.sync_api import sync_playwright

    photo = tmp_path / "coat.jpg"
    shutil.copy(next((photo_folder / "test" / "Coat").iterdir()), photo)
    server = Server(photo_run)
    problems: list[str] = []
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p, chromium)
            desktop = browser.new_page(viewport={"width": 900, "height": 700})
            desktop.on("pageerror", lambda e: problems.append(str(e)))
            desktop.goto(server.url + "/")
            assert desktop.inner_text("h1") == "Classify a photo"
            assert desktop.title() == "trainlab: Classify a photo"
            assert "Draw" not in desktop.inner_text("body")
            label = desktop.get_attribute("#pad", "aria-label")
            assert label == "preview of the photo sent to the model: none yet"
            assert desktop.get_attribute("#pad", "role") == "img"
            cursor = "getComputedStyle(document.getElementById('pad')).cursor"
            assert desktop.evaluate(cursor) == "default"
            # a desktop: an upload, no camera (a mouse pointer is fine, not coarse)
            assert not desktop.evaluate("matchMedia('(pointer: coarse)').matches")
            assert desktop.is_visible("text=Upload a photo")
            assert not desktop.is_visible("text=Take a photo")
            assert desktop.inner_text("#prob") == "upload a photo, or take one"
            assert _pad_is_blank(desktop)
            desktop.set_input_files("#upload", str(photo))
            desktop.wait_for_function("document.getElementById('label').textContent !== '–'")
            classes = httpx.get(server.url + "/api/model").json()["classes"]
            assert desktop.inner_text("#label") in classes
            assert desktop.evaluate("document.getElementById('preview').naturalWidth") == 28
            desktop.wait_for_function(
                "document.getElementById('pad').getAttribute('aria-label').endsWith('coat.jpg')"
            )
            assert not _pad_is_blank(desktop)  # the photo shows in the preview area
            desktop.screenshot(path=str(tmp_path / "serve-photo-desktop.png"), full_page=True)

            # a phone: the camera too, and nothing wider than the screen
            phone = browser.new_context(**p.devices["Pixel 5"]).new_page()
            phone.on("pageerror", lambda e: problems.append(str(e)))
            phone.goto(server.url + "/")
            assert phone.evaluate("matchMedia('(pointer: coarse)').matches")
            assert phone.is_visible("text=Take a photo") and phone.is_visible("text=Upload a photo")
            assert phone.get_attribute("#camera", "capture") == "environment"
            width = phone.evaluate("window.innerWidth")
            assert phone.evaluate("document.documentElement.scrollWidth") <= width
            phone.screenshot(path=str(tmp_path / "serve-photo-phone.png"))
            browser.close()
    finally:
        server.stop()
    assert problems == []
