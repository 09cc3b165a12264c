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
