"""The web export in a real browser: the folder, served by `python -m http.server` on loopback,
answers in Debian's Chromium as `trainlab predict` does, and asks for nothing outside itself."""

import base64
import contextlib
import json
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
from PIL import Image

from helpers import ensure_chromium, launch_chromium, run_cli
from trainlab.inference.web import ORT_WEB, WebExportError, check_tarball, write_web_folder


@pytest.fixture(scope="module")
def web_run(tmp_path_factory, mnist_root):
    """A tiny default-cnn MNIST run, in float32 (--amp off) as the exported graph computes, so
    predict's figures and the page's differ only by the arithmetic's last bits."""
    runs = tmp_path_factory.mktemp("web-runs")
    proc = run_cli(
        "train", "--subset", "2000", "--epochs", "1", "--amp", "off", "--device", "cpu",
        "--runs-dir", str(runs), "--run-name", "web",
        env={"TRAINLAB_DATA": str(mnist_root)}, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return runs / "web"


@pytest.fixture(scope="module")
def site(web_run, tmp_path_factory):
    """`trainlab export RUN --format web`: the folder, scored like every target."""
    out = tmp_path_factory.mktemp("web-export")
    proc = run_cli("export", str(web_run), "--format", "web", "-o", str(out / "site"), "--json")
    if proc.returncode != 0 and "could not be downloaded" in proc.stderr:
        pytest.skip(
            f"onnxruntime-web is not cached and the npm registry is out of reach: {proc.stderr}"
        )
    assert proc.returncode == 0, proc.stderr
    return out / "site"


@pytest.fixture(scope="module")
def digit_files(mnist, tmp_path_factory):
    """Real MNIST test digits as PNG files: two as the dataset has them (28×28, light ink on
    black) and one as a person's scan would be (224×224 RGB, dark ink on white paper)."""
    folder = tmp_path_factory.mktemp("digits")
    files = []
    for i in (0, 1):
        path = folder / f"mnist-{i}-label-{int(mnist.test_y[i])}.png"
        Image.fromarray(mnist.test_x[i, 0].numpy()).save(path)
        files.append(path)
    paper = 255 - np.kron(mnist.test_x[2, 0].numpy(), np.ones((8, 8), np.uint8))
    path = folder / f"scan-2-label-{int(mnist.test_y[2])}.png"
    Image.fromarray(paper).convert("RGB").save(path)
    return [*files, path]


@pytest.fixture(scope="module")
def served(site):
    """`python -m http.server` on 127.0.0.1, a port the system picks; ready once it answers."""
    server = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
         "--directory", str(site)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        line = server.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N (...) ...", once bound
        port = int(line.split(" port ")[1].split()[0])
        url = f"http://127.0.0.1:{port}/"
        with urllib.request.urlopen(url, timeout=30) as reply:
            assert reply.status == 200
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_folder_holds_the_page_the_model_and_the_pinned_runtime(site, web_run):
    names = sorted(p.name for p in site.iterdir())
    assert names == sorted(
        ["index.html", "model.onnx", "prepare.js", "onnxruntime-web.txt", "ort.wasm.min.js",
         "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"]
    )  # fmt: skip
    html = (site / "index.html").read_text()
    assert "http://" not in html and "https://" not in html  # no CDN, no font, no analytics
    assert ORT_WEB.version in (site / "onnxruntime-web.txt").read_text()
    # scored on the run's test split beside the checkpoint, and listed with the other targets
    entry = json.loads((web_run / "exports.json").read_text())["targets"]["web"]
    print(json.dumps(entry))
    assert entry["agreement"] == 100.0 and entry["model"] == "float32", entry


def test_a_changed_tarball_is_refused_by_its_hash(site, tmp_path):
    fake = tmp_path / ORT_WEB.tarball
    fake.write_bytes(b"not the published package")
    with pytest.raises(WebExportError, match="refused") as caught:
        check_tarball(fake)
    assert ORT_WEB.integrity in str(caught.value) and str(fake) in str(caught.value)
    with pytest.raises(WebExportError, match="refused"):
        write_web_folder(site / "model.onnx", tmp_path / "site", cache=tmp_path)
    assert not (tmp_path / "site").exists()  # nothing written from a refused package


def _draw_a_seven(page):
    box = page.locator("#pad").bounding_box()
    points = [(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]
    page.mouse.move(box["x"] + points[0][0] * box["width"], box["y"] + points[0][1] * box["height"])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=10)
    page.mouse.up()


@contextlib.contextmanager
def _chromium():
    chromium = ensure_chromium()
    if not chromium:
        pytest.skip("Debian's chromium is not installed and could not be installed here")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install 'trainlab[dev]')")
    with sync_playwright() as p:
        browser = launch_chromium(p, chromium)
        try:
            yield browser
        finally:
            browser.close()


def test_the_page_answers_as_predict_with_no_request_outside_the_folder(
    served, web_run, digit_files, tmp_path
):
    requests, shown = [], []
    with _chromium() as browser:
        page = browser.new_page()
        page.on("request", lambda request: requests.append(request.url))
        page.goto(served)
        page.wait_for_selector("body[data-state=ready], body[data-state=error]", timeout=120_000)
        assert page.get_attribute("body", "data-state") == "ready", page.inner_text("#status")
        for n, path in enumerate(digit_files, start=1):
            page.set_input_files("#upload", str(path))
            page.wait_for_function(f"window.trainlab.answers >= {n}", timeout=60_000)
            last = page.evaluate("(({label, probability, input}) => "
                                 "({label, probability, pixels: Array.from(input.pixels)}))"
                                 "(window.trainlab.last)")  # fmt: skip
            assert page.inner_text("#label") == last["label"]
            assert page.inner_text("#prob").startswith(f"{100 * last['probability']:.1f}% sure")
            shown.append(last)
        _draw_a_seven(page)
        page.wait_for_function(f"window.trainlab.answers >= {len(digit_files) + 1}")
        shown.append(page.evaluate("({...window.trainlab.last, input: null})"))
        drawing = page.evaluate("document.getElementById('pad').toDataURL('image/png')")
    drawn = tmp_path / "drawn.png"
    drawn.write_bytes(base64.b64decode(drawing.split(",", 1)[1]))
    files = [*digit_files, drawn]
    proc = run_cli("predict", str(web_run), *map(str, files), "--json", "--preview",
                   str(tmp_path / "seen"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    expected = json.loads(proc.stdout)["predictions"]
    for path, page_answer, answer in zip(files, shown, expected, strict=True):
        gap = abs(page_answer["probability"] - answer["probability"])
        print(f"{path.name}: page {page_answer['label']} {page_answer['probability']:.6f}, "
              f"predict {answer['label']} {answer['probability']:.6f}, gap {gap:.1e}")  # fmt: skip
        assert page_answer["label"] == answer["label"]
        assert page_answer["probability"] == pytest.approx(answer["probability"], abs=1e-3)
    # the pixels the page gave the model are predict's (--preview), to one grey level
    for path, page_answer in zip(digit_files, shown, strict=False):
        seen = np.asarray(Image.open(next((tmp_path / "seen").glob(f"{path.stem}*"))))
        page_pixels = np.asarray(page_answer["pixels"], np.int16).reshape(seen.shape[:2])
        assert np.abs(page_pixels - seen.reshape(page_pixels.shape).astype(np.int16)).max() <= 1
    outside = [url for url in requests if not url.startswith(served)]
    assert requests and outside == []


def test_photos_are_prepared_as_python_prepares_them(served):
    """prepare.js on random pictures against trainlab.data.images: each recorded resize policy
    (crop, pad, grey, RGB) and the plain resize; at most one grey level apart (float32 sums
    in another order)."""
    from trainlab.data.images import ResizePolicy, resize_to

    rng = np.random.default_rng(0)
    policies = [ResizePolicy((32, 32), 3, "crop", 0.875), ResizePolicy((24, 40), 1, "pad")]
    with _chromium() as browser:
        page = browser.new_page()
        page.goto(served)
        for h, w in [(37, 64), (90, 23), (28, 28)]:
            rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            rgba = np.concatenate([rgb, np.full((h, w, 1), 255, np.uint8)], axis=-1)
            grey = np.asarray(Image.fromarray(rgb).convert("L"), np.float32) / 255
            cases = [({"how": "policy", "policy": p.to_dict()}, p.apply(rgb / 255.0))
                     for p in policies]  # fmt: skip
            resize = {"how": "resize", "size": [28, 28], "channels": 1, "dark": True}
            cases.append((resize, resize_to(grey, (28, 28), dark_background=True).image))
            for prepare, expected in cases:
                got = page.evaluate(
                    "([rgba, h, w, prepare]) => Array.from(Prepare.input("
                    "Uint8ClampedArray.from(rgba), h, w, prepare).pixels)",
                    [rgba.ravel().tolist(), h, w, prepare],
                )
                diff = np.abs(np.asarray(got, np.int16) - expected.ravel().astype(np.int16))
                assert diff.max() <= 1, (prepare, h, w)
