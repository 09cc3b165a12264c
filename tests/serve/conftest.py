"""Fixtures: one real server for the API tests, MNIST digits as PNGs it gets right, and a
model of photos (a folder of Fashion-MNIST clothes, coloured, as JPEG files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from serving import Server, png

FASHION = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist


@pytest.fixture(scope="session")
def server(default_run):
    s = Server(default_run)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def digits(mnist, default_run):
    """(png bytes, label) for 50 MNIST test digits the model classifies right in-process."""
    from trainlab.inference import Predictor

    predictor = Predictor(default_run, device="cpu")
    images = mnist.test_x[:200, 0].numpy()
    labels = [str(int(v)) for v in mnist.test_y[:200]]
    blobs = [png(im, scale=3, invert=i % 2 == 0) for i, im in enumerate(images)]
    results = predictor.predict(blobs)
    chosen = [(b, y) for b, y, r in zip(blobs, labels, results, strict=True) if r.label == y]
    return chosen[:50]


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory) -> Path:
    """train/ and test/ folders of RGB JPEGs (56×56) named by class: 300 and 60 photos."""
    if not FASHION.is_dir():
        pytest.skip("apt-get install dataset-fashion-mnist (.ci/run does)")
    from PIL import Image

    from trainlab.data import load_dataset

    data_root = tmp_path_factory.mktemp("fashion-root")
    data = load_dataset("fashion-mnist", data_root, sources=("local", "system"))
    data = data.subset(300, 60)
    root = tmp_path_factory.mktemp("photos") / "clothes"
    names = [c.replace("/", " or ") for c in data.classes]  # "T-shirt/top": a folder name
    for split, xs, ys in (
        ("train", data.train_x, data.train_y),
        ("test", data.test_x, data.test_y),
    ):
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            ink = x[0].numpy().astype(np.float32)[..., None] / 255
            tint = np.array([1.0, 0.7, 0.4]) if int(y) % 2 else np.array([0.5, 0.8, 1.0])
            rgb = (255 - 255 * ink * tint).astype(np.uint8)  # coloured clothes on white
            folder = root / split / names[int(y)]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rgb).resize((56, 56)).save(folder / f"{i:04d}.jpg", quality=95)
    return root


@pytest.fixture(scope="session")
def photo_run(photo_folder, tmp_path_factory) -> Path:
    """One epoch on the photo folder: a model of the images kind, as `trainlab train` makes."""
    from helpers import run_here

    runs = tmp_path_factory.mktemp("photo-runs")
    proc = run_here(
        "train", "--dataset", str(photo_folder), "--image-size", "28", "--epochs", "1",
        "--device", "cpu", "--runs-dir", str(runs), "--run-name", "photos",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return runs / "photos"
