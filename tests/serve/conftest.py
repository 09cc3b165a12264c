"""Fixtures: one real server for the API tests, and MNIST digits as PNGs it gets right."""

from __future__ import annotations

import pytest
from serving import Server, png


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
