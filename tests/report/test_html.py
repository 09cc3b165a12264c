"""report.html, read back as a person's browser would see it: the summary, the tables, the
embedded images, and text that stays text. The run is a real one (the v1 CNN fixture, with the
figures its own `trainlab eval` recorded in eval.json)."""

from __future__ import annotations

import base64
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from trainlab.engine.predictions import load_predictions, save_predictions
from trainlab.report import make_report

V1_CNN = Path(__file__).resolve().parents[1] / "fixtures" / "v1" / "cnn-mnist"


class Page(HTMLParser):
    """The text of each table (by class), each image, each heading and the summary."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[dict[str, str]] = []
        self.headings: list[str] = []
        self.summary = ""
        self.scripts = 0
        self._table, self._row, self._cell, self._in = None, None, None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("class", ""), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""
        elif tag == "img":
            self.images.append(attrs)
        elif tag == "script":
            self.scripts += 1
        elif tag in ("h2", "p"):
            self._in = tag if tag == "h2" or attrs.get("class") == "summary" else None
            if self._in == "h2":
                self.headings.append("")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "table":
            self._table = self._row = None
        elif tag in ("h2", "p"):
            self._in = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        elif self._in == "h2":
            self.headings[-1] += data
        elif self._in == "p":
            self.summary += data


@pytest.fixture
def run(tmp_path):
    run_dir = tmp_path / "cnn-mnist"
    shutil.copytree(V1_CNN, run_dir)
    return run_dir


def test_the_page_shows_the_runs_figures(v1_report):
    run, paths = v1_report
    recorded = json.loads((run / "eval.json").read_text())
    page = Page(paths["html"].read_text())

    assert page.summary.startswith(f"test accuracy {100 * recorded['accuracy']:.2f}% (best.pt)")
    assert "best.pt chosen on the validation split" in page.summary
    assert page.headings[:5] == [
        "Curves",
        "Per epoch",
        "Confusion matrix",
        "Per class",
        "Most confident mistakes",
    ]
    # the confusion table is eval's, row by row
    header, *rows = page.tables["confusion"]
    assert header[1:] == recorded["classes"]
    assert [[int(c) for c in row[1:]] for row in rows] == recorded["confusion"]
    # per class: the test count next to the recall, then precision and F1, as eval recorded
    header, *rows = page.tables["per-class"]
    assert header == ["class", "test count", "recall", "precision", "F1"]
    per = recorded["per_class"]
    for i, (name, count, recall, precision, f1) in enumerate(rows):
        assert name == recorded["classes"][i] and int(count) == per["support"][i]
        assert float(recall) == pytest.approx(per["recall"][i], abs=5e-5)
        assert float(precision) == pytest.approx(per["precision"][i], abs=5e-5)
        assert float(f1) == pytest.approx(per["f1"][i], abs=5e-5)
    # one row per epoch of metrics.jsonl
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row[0] for row in page.tables["epochs"][1:]] == [str(r["epoch"]) for r in epochs]


def test_the_figures_are_embedded_and_nothing_is_fetched(v1_report):
    _, paths = v1_report
    text = paths["html"].read_text()
    page = Page(text)
    figures, gallery = page.images[:3], page.images[3:]
    assert [i["alt"] for i in figures] == [
        "loss and accuracy per epoch",
        "confusion matrix",
        "top mistakes",
    ]
    prefix = "data:image/png;base64,"
    for image, name in zip(figures, ("curves", "confusion", "mistakes"), strict=True):
        assert image["src"].startswith(prefix)
        assert base64.b64decode(image["src"][len(prefix) :]) == paths[name].read_bytes()
    # the mistakes gallery: each mistake beside its heat map, both embedded PNGs
    assert [i["alt"] for i in gallery] == [
        alt for n in range(1, 17) for alt in (f"test image {n}", f"heat map of test image {n}")
    ]
    assert all(base64.b64decode(i["src"][len(prefix) :])[:4] == b"\x89PNG" for i in gallery)
    assert page.scripts == 0 and "http://" not in text and "https://" not in text
    assert "<link" not in text and "@import" not in text


def test_markup_in_class_names_and_settings_shows_as_text(run):
    """A folder named `<script>…` is a class name like any other: the page shows it, and a
    browser never runs it."""
    arrays = load_predictions(run / "predictions.npz")
    checkpoint = str(arrays.pop("checkpoint"))
    evil = "<script>alert('x')</script>"
    arrays["classes"] = np.array([evil, "a & b", *[str(c) for c in arrays["classes"][2:]]])
    save_predictions(run / "predictions.npz", arrays, checkpoint)
    config = (run / "config.toml").read_text()
    (run / "config.toml").write_text(config.replace('model = "cnn"', 'model = "<b>cnn</b>"', 1))

    text = make_report(run)["html"].read_text()
    page = Page(text)
    assert "<script>" not in text and "<b>cnn</b>" not in text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in text
    assert page.scripts == 0
    # a browser shows the names as they are
    assert page.tables["confusion"][0][1:3] == [evil, "a & b"]
    assert [row[0] for row in page.tables["per-class"][1:3]] == [evil, "a & b"]
    assert ["model", "<b>cnn</b>"] in page.tables["kv"]


def test_a_run_without_predictions_has_curves_and_settings_only(run):
    (run / "predictions.npz").unlink()
    page = Page(make_report(run)["html"].read_text())
    settings = ["Configuration", "Data and model", "Environment"]
    assert page.headings == ["Curves", "Per epoch", *settings]
    assert not page.summary.startswith("test accuracy") and "1 epochs in" in page.summary
    assert [i["alt"] for i in page.images] == ["loss and accuracy per epoch"]


def test_the_page_templates_ship_in_the_wheel(tmp_path):
    """report.html.j2 and serve's page.html.j2 are package data: a wheel built from this
    checkout holds them (one build checks both), and names jinja2 among its requirements."""
    import subprocess
    import sys
    import zipfile

    root = Path(__file__).resolve().parents[2]
    source = tmp_path / "source"  # a copy: a build writes build/ and *.egg-info beside it
    shutil.copytree(root / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["-w", str(tmp_path / "wheel"), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "wheel").glob("trainlab-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "trainlab/report/templates/report.html.j2" in names
    assert "trainlab/serve/templates/page.html.j2" in names
    requires = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))
    )
    assert b"Requires-Dist: jinja2" in requires
