"""``trainlab serve`` on a table's run (wine, from a CSV with a categorical column and empty
cells): the JSON API takes rows as objects and answers as predict does; a missing column or a
cell that is not a number is a 400 naming it, never a 500."""

from __future__ import annotations

import csv

import pytest

from helpers import write_sklearn_table
from trainlab.cli import main

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wine")
    path = write_sklearn_table("wine", folder / "wine.csv")
    argv = ["train", "--dataset", str(path), "--target", "target", "--epochs", "5"]
    argv += ["--optimizer", "adam", "--lr", "0.003", "--device", "cpu", "--amp", "off"]
    assert main([*argv, "--runs-dir", str(folder), "--run-name", "run", "--json"]) == 0
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return folder / "run", rows


@pytest.fixture(scope="module")
def client(table_run):
    from fastapi.testclient import TestClient

    from trainlab.inference import Predictor
    from trainlab.serve.rows import create_rows_app

    run, _ = table_run
    return TestClient(create_rows_app(Predictor(run, device="cpu")))


def _row(cells: dict) -> dict:
    """A CSV row as JSON gives it: numbers as numbers, empty cells as null."""
    out = {}
    for name, value in cells.items():
        if name == "target":
            continue
        try:
            out[name] = float(value) if value else None
        except ValueError:
            out[name] = value
    return out


def test_rows_as_objects_get_the_predictions_predict_gives(client, table_run):
    from trainlab.inference import Predictor

    run, rows = table_run
    expected = Predictor(run, device="cpu").predict(rows[:5], [str(i) for i in range(5)])
    one = client.post("/api/predict", json=_row(rows[0]))
    assert one.status_code == 200, one.text
    assert one.json()["label"] == expected[0].label
    assert one.json()["probability"] == pytest.approx(expected[0].probability, abs=1e-6)
    many = client.post("/api/predict", json=[_row(r) for r in rows[:5]])
    assert many.status_code == 200, many.text
    labels = [p["prediction"]["label"] for p in many.json()["predictions"]]
    assert labels == [e.label for e in expected]
    model = client.get("/api/model").json()
    assert "hue" in model["columns"] and model["classes"] == ["class_0", "class_1", "class_2"]
    assert "use the JSON API" in client.get("/").text


def test_a_missing_column_or_junk_is_a_400_naming_it(client, table_run):
    _, rows = table_run
    row = _row(rows[0])
    del row["hue"]
    answer = client.post("/api/predict", json=row)
    assert answer.status_code == 400 and "no column 'hue'" in answer.json()["error"]
    junk = {**_row(rows[0]), "alcohol": "lots"}
    answer = client.post("/api/predict", json=junk)
    assert answer.status_code == 400
    assert "'lots' in numeric column 'alcohol' is not a number" in answer.json()["error"]
    assert client.post("/api/predict", json=[1, 2]).status_code == 400
    assert (
        client.post(
            "/api/predict", content=b"{", headers={"content-type": "application/json"}
        ).status_code
        == 400
    )
    batch = client.post("/api/predict", json=[_row(rows[1]), row])
    assert batch.status_code == 200
    assert "no column 'hue'" in batch.json()["predictions"][1]["error"]
