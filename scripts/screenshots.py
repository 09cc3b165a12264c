"""Take the docs' screenshots in a real browser: report.html, the serve page and the web export.

Usage:
    python scripts/screenshots.py [--chromium /usr/bin/chromium]    (make screenshots)

Trains a small default CNN on MNIST in a temporary folder (a few seconds), writes its report,
starts `trainlab serve` on a free port, draws a "7" on its page, exports the run's web folder
(`--format web`) and serves it with `python -m http.server`, draws a "7" there too, and saves
docs/report-screenshot.png, docs/serve-screenshot.png and docs/web-screenshot.png from headless
Chromium through
Playwright (the system's Chromium; nothing is downloaded, and the pages reach no network).
MNIST comes from the data root (``$TRAINLAB_DATA`` or trainlab's default).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TRAIN = ["--subset", "6000", "--test-subset", "1000", "--epochs", "2", "--val-split", "0.1"]


def trainlab(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, "-m", "trainlab", *args]
    return subprocess.run(command, env=env, check=True, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, server: subprocess.Popen, limit: float = 120) -> None:
    import urllib.request

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"trainlab serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url + "/api/health", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"trainlab serve did not answer at {url} within {limit:.0f} s")


def draw_seven(page) -> None:
    """A "7" on the page's drawing pad: a top bar, then a diagonal down."""
    box = page.locator("#pad").bounding_box()

    def at(x: float, y: float) -> tuple[float, float]:
        return box["x"] + x * box["width"], box["y"] + y * box["height"]

    page.mouse.move(*at(0.25, 0.2))
    page.mouse.down()
    page.mouse.move(*at(0.75, 0.2), steps=8)
    page.mouse.move(*at(0.45, 0.85), steps=8)
    page.mouse.up()
    page.wait_for_function("document.getElementById('label').textContent !== '–'")


def web_screenshot(browser, run: Path, folder: Path) -> None:
    """The run's web export, served as any static host would, with a "7" drawn on its pad."""
    trainlab("export", str(run), "--format", "web", "-o", str(folder), stdout=subprocess.DEVNULL)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory",
         str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        page = browser.new_page(viewport={"width": 900, "height": 700})
        deadline = time.monotonic() + 60
        while True:  # until the server answers
            try:
                page.goto(f"http://127.0.0.1:{port}/")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        page.wait_for_function("document.body.dataset.state === 'ready'")
        draw_seven(page)
        page.screenshot(path=str(DOCS / "web-screenshot.png"), full_page=True)
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        trainlab("train", *TRAIN, "--runs-dir", str(runs), "--run-name", "example", "--quiet")
        run = runs / "example"
        trainlab("report", str(run), stdout=subprocess.DEVNULL)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        server = subprocess.Popen(
            [sys.executable, "-m", "trainlab", "serve", str(run), "--port", str(port), "--quiet"],
            env=env,
        )
        try:
            wait_until_up(url, server)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium)
                page = browser.new_page(viewport={"width": 1000, "height": 800})
                page.goto((run / "report.html").as_uri())
                page.screenshot(path=str(DOCS / "report-screenshot.png"), full_page=True)
                page = browser.new_page(viewport={"width": 900, "height": 700})
                page.goto(url + "/")
                draw_seven(page)
                page.screenshot(path=str(DOCS / "serve-screenshot.png"), full_page=True)
                web_screenshot(browser, run, Path(tmp) / "web")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    for name in ("report-screenshot.png", "serve-screenshot.png", "web-screenshot.png"):
        print(f"wrote docs/{name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
