"""Tables from CSV files made from scikit-learn's bundled data (breast cancer, wine, diabetes),
each with an added categorical column and some empty cells: they train to the accuracy (or
R²) of the usual baselines, the encoding is fitted on the training rows and recorded with the
run, and bad files get a message naming the file, line and column."""

from __future__ import annotations

import csv
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from helpers import assert_clean_error, run_here, write_sklearn_table
from trainlab.cli import main
from trainlab.data import load_dataset

# small and quick, in float32 so that eval computes what training did; a small table's
# validation split (a dozen rows) chooses best.pt by chance, so these train to the last epoch
SETTINGS = ["--optimizer", "adam", "--lr", "0.003", "--val-split", "0"]
SETTINGS += ["--device", "cpu", "--amp", "off", "--json"]


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tables")
    for name in ("breast_cancer", "wine", "diabetes"):
        write_sklearn_table(name, folder / f"{name}.csv")
    return folder


def _train(runs: Path, name: str, *args: str, epochs: int = 40) -> Path:
    argv = ["train", *args, *SETTINGS, "--epochs", str(epochs), "--runs-dir", str(runs)]
    assert main([*argv, "--run-name", name]) == 0
    return runs / name


def _eval(run: Path, capsys) -> dict:
    capsys.readouterr()
    assert main(["eval", str(run), "--json", "--device", "cpu"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(("name", "floor"), [("breast_cancer", 0.95), ("wine", 0.93)])
def test_classification_tables_reach_the_baselines(tables, tmp_path, capsys, name, floor):
    run = _train(tmp_path, name, "--dataset", str(tables / f"{name}.csv"), "--target", "target")
    report = _eval(run, capsys)
    assert report["accuracy"] >= floor, report["accuracy"]
    config = tomllib.loads((run / "config.toml").read_text())
    assert config["data"]["task"] == "classification"
    assert config["data"]["preprocess"]["task_rule"] == "its cells are text"
    assert config["config"]["model"] == "mlp"  # the default for a table, sized from it
    assert config["config"]["model_options"]["hidden"][0] >= 32


def test_diabetes_regression_is_within_005_r2_of_ridge(tables, tmp_path, capsys):
    from sklearn.linear_model import Ridge

    path = tables / "diabetes.csv"
    run = _train(tmp_path, "diabetes", "--dataset", str(path), "--target", "target")
    report = _eval(run, capsys)
    data = load_dataset(str(path), target="target")  # the same rows, split and encoding
    ridge = Ridge().fit(data.train_x.numpy(), data.train_y.numpy().ravel())
    ridge_r2 = ridge.score(data.test_x.numpy(), data.test_y.numpy().ravel())
    assert report["r2"] >= ridge_r2 - 0.05, (report["r2"], ridge_r2)
    config = tomllib.loads((run / "config.toml").read_text())
    assert config["data"]["task"] == "regression"
    assert config["data"]["kind"] == "table-regression"
    assert config["config"]["model"] == "mlp-regressor"
    target = config["data"]["preprocess"]["target"]
    assert target["name"] == "target" and 100 < target["mean"] < 200  # the raw units


def test_the_encoding_is_fitted_on_the_training_rows_and_recorded(tables):
    data = load_dataset(str(tables / "breast_cancer.csv"), target="target")
    encoding = data.info["preprocess"]["encoding"]
    names = data.info["preprocess"]["feature_names"]
    assert len(names) == data.train_x.shape[1] == encoding["features"]
    first = encoding["columns"][0]
    assert first["type"] == "numeric" and first["indicator"]  # it has empty cells
    assert names[:2] == ["mean_radius", "mean_radius (missing)"]
    train = data.train_x.numpy()
    assert abs(train[:, 0].mean()) < 1e-5 and abs(train[:, 0].std() - 1) < 1e-4
    assert abs(data.test_x.numpy()[:, 0].mean()) > 1e-4  # the test rows' own stats unused
    colour = next(c for c in encoding["columns"] if c["name"] == "colour")
    assert colour["type"] == "categorical"
    assert sorted(colour["values"]) == ["blue", "green", "red"]
    assert [n for n in names if n.startswith("colour=")][-1] == "colour=(other)"


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_missing_cells_are_imputed_with_an_indicator_and_unseen_values_go_to_other(tmp_path):
    from trainlab.data.table_encode import Encoding

    rows = ["x,city,y"] + [f"{i},{'ab'[i % 2]},{i % 2}" for i in range(40)] + [",a,0"]
    data = load_dataset(_write(tmp_path / "t.csv", "\n".join(rows) + "\n"), target="y")
    record = data.info["preprocess"]["encoding"]
    x_column, city = record["columns"]
    assert x_column["fill"] == pytest.approx(19.5 if x_column["indicator"] else 0)
    encoding = Encoding.from_dict(record)
    out = encoding.apply({"x": [None, "3"], "city": ["Lyon", None]}, "rows")
    names = encoding.feature_names()
    row = dict(zip(names, out[0], strict=True))
    assert row["city=(other)"] == 1.0  # a value never seen in training
    assert out[0][0] == pytest.approx((x_column["fill"] - x_column["mean"]) / x_column["std"])
    missing = dict(zip(names, out[1], strict=True))
    assert missing[f"city={city['fill']}"] == 1.0  # the most frequent value


def test_task_categorical_and_max_categories_flags_change_the_encoding(tmp_path):
    rows = ["n,shop,score"] + [f"{i % 7},s{i % 12},{i % 30}" for i in range(120)]
    path = _write(tmp_path / "t.csv", "\n".join(rows) + "\n")
    auto = load_dataset(path, target="score")
    assert auto.task == "regression"  # 30 whole-number values: more than 20
    forced = load_dataset(path, target="score", task="classification")
    assert forced.task == "classification" and len(forced.classes) == 30
    assert forced.classes[:3] == ["0", "1", "2"] and forced.classes[10] == "10"  # numeric order
    plain = load_dataset(path, target="score")
    assert [c["type"] for c in plain.info["preprocess"]["encoding"]["columns"]] == [
        "numeric",
        "categorical",
    ]
    one_hot = load_dataset(path, target="score", categorical=["n"])
    assert one_hot.info["preprocess"]["encoding"]["columns"][0]["type"] == "categorical"
    assert one_hot.input_shape[0] == 8 + 13  # 7 values + other, 12 shops + other
    capped = load_dataset(path, target="score", max_categories=4)
    shop = capped.info["preprocess"]["encoding"]["columns"][1]
    assert len(shop["values"]) == 4 and capped.input_shape[0] == 1 + 5


def test_the_flags_reach_the_table_from_the_command_line(tmp_path):
    rows = ["n,shop,score"] + [f"{i % 7},s{i % 3},{i % 30}" for i in range(90)]
    path = _write(tmp_path / "t.csv", "\n".join(rows) + "\n")
    args = ["train", "--dataset", path, "--target", "score", "--task", "classification"]
    args += ["--categorical", "n", "--max-categories", "5", "--epochs", "1", "--val-split", "0"]
    proc = run_here(*args, "--runs-dir", str(tmp_path), "--run-name", "flags")
    assert proc.returncode == 0, proc.stderr
    assert "target 'score': classification (--task), 30 classes" in proc.stderr
    assert "3 input columns" not in proc.stderr and "2 input columns -> 10 features" in proc.stderr
    config = tomllib.loads((tmp_path / "flags" / "config.toml").read_text())
    assert config["config"]["data_options"]["categorical"] == ["n"]


def test_which_csv_is_a_table_and_which_names_images(tmp_path):
    from trainlab.data import csv_labels, table_read
    from trainlab.data.registry import spec_name

    assert table_read.FILE_COLUMNS == csv_labels.FILE_COLUMNS
    assert table_read.LABEL_COLUMNS == csv_labels.LABEL_COLUMNS
    kaggle = _write(tmp_path / "train.csv", "id,label\n0001,cat\n")
    photos = _write(tmp_path / "photos.csv", "file,label,size\nx.png,cat,3\n")
    table = _write(tmp_path / "table.csv", "id,age,city,label\n1,41,Lyon,yes\n")
    (tmp_path / "0007.jpg").write_bytes(b"")
    odd = _write(tmp_path / "odd.csv", "picture,kind,size\n0007,cat,3\n")  # 0007.jpg beside
    assert spec_name(kaggle) == spec_name(photos) == spec_name(odd) == "csv-labels"
    assert spec_name(table) == spec_name(f"table:{kaggle}") == "table"
    assert spec_name(str(tmp_path / "t.parquet")) == "table"


def test_a_labels_csv_given_a_target_names_both_readings(tmp_path):
    kaggle = _write(tmp_path / "train.csv", "id,label\n0001,cat\n")
    proc = run_here("train", "--dataset", kaggle, "--target", "label")
    assert_clean_error(proc, "csv-labels", "table:FILE")


@pytest.mark.parametrize(
    ("text", "args", "needles"),
    [
        ("", ["--target", "y"], ["t.csv: empty"]),
        ("a,b,y\n", ["--target", "y"], ["a header and no rows"]),
        ("a,b\n1,2\n3,4\n", ["--target", "y"], ["no column 'y' (--target)", "columns: a, b"]),
        ("a,b\n1,2\n3,4\n", [], ["--target COLUMN", "columns: a, b"]),
        ("a,y\n1,x\n2,x\n3,x\n", ["--target", "y"], ["target 'y' has one value (x)"]),
        ("a,y\n1,x\n2,z\n3\n", ["--target", "y"], ["line 4: 1 cells", "header has 2 columns"]),
        ("a,y\n1,x\n2,\n", ["--target", "y"], ["line 3: the target 'y' is empty"]),
        ("a,b,y\n1,2,1,5\n", ["--target", "y"], ["line 2: 4 cells"]),
        ("a,a,y\n1,2,x\n", ["--target", "y"], ["names column 'a' twice"]),
        (
            "a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(40)) + "4x,1\n",
            ["--target", "y"],
            ["line 42: '4x' in column 'a' is not a number", "--categorical"],
        ),  # fmt: skip
        ("a,y\n1,2\n3,4\n", ["--target", "y", "--categorical", "q"], ["--categorical names q"]),
        ("a,y\n1,2.5\n3,x\n", ["--target", "y", "--task", "regression"], ["line 3", "a number"]),
    ],
)
def test_bad_tables_get_a_message_naming_the_problem(tmp_path, text, args, needles):
    path = _write(tmp_path / "t.csv", text)
    proc = run_here("train", "--dataset", f"table:{path}", *args, "--runs-dir", str(tmp_path))
    assert_clean_error(proc, *needles)


def test_parquet_without_pyarrow_says_what_to_install(tmp_path):
    pytest.importorskip("pytest")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        path = tmp_path / "t.parquet"
        path.write_bytes(b"PAR1")
        proc = run_here("train", "--dataset", str(path), "--target", "y")
        assert_clean_error(proc, "pip install pyarrow")
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "t.parquet"
    values = np.arange(60)
    pq.write_table(pa.table({"a": values * 1.5, "y": values % 2}), path)
    data = load_dataset(str(path), target="y")
    assert data.classes == ["0", "1"] and data.input_shape == (1,)


def _rows_file(source: Path, numbers: list[int], path: Path, drop: str = "target") -> Path:
    """The rows ``numbers`` (from 1 after the header) of a CSV, without column ``drop``."""
    with open(source, newline="") as f:
        rows = list(csv.reader(f))
    keep = [i for i, name in enumerate(rows[0]) if name != drop]
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(
            [[row[i] for i in keep] for row in [rows[0]] + [rows[n] for n in numbers]]
        )
    return path


def test_predict_on_the_test_rows_equals_eval_and_a_missing_column_is_named(tables, tmp_path):
    from trainlab.workflow import evaluate_checkpoint

    path = tables / "wine.csv"
    run = _train(tmp_path, "wine", "--dataset", str(path), "--target", "target", epochs=5)
    _, (outputs, _) = evaluate_checkpoint(run, device="cpu", return_predictions=True)
    data = load_dataset(str(path), target="target")
    expected = [data.classes[i] for i in outputs.argmax(1).tolist()]
    rows = _rows_file(path, data.info["test_rows"], tmp_path / "rows.csv")
    out = tmp_path / "answers.csv"
    proc = run_here("predict", str(run), str(rows), "--csv", str(out), "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    with open(out, newline="") as f:
        answers = list(csv.reader(f))
    assert answers[0] == ["row", "label", "probability"]
    assert [a[0] for a in answers[1:]] == [str(i) for i in range(1, len(expected) + 1)]
    assert [a[1] for a in answers[1:]] == expected
    short = _rows_file(path, data.info["test_rows"], tmp_path / "short.csv", drop="hue")
    proc = run_here("predict", str(run), str(short), "--device", "cpu")
    assert_clean_error(proc, "short.csv: no column 'hue'", "this model takes the columns")


def test_the_exported_graph_gives_the_runs_predictions_on_encoded_rows(tables, tmp_path):
    pytest.importorskip("onnxruntime")
    from trainlab.data.table_encode import Encoding
    from trainlab.data.table_read import read_table
    from trainlab.inference import Predictor
    from trainlab.inference.export import export_model, onnx_session

    path = tables / "breast_cancer.csv"
    run = _train(tmp_path, "bc", "--dataset", str(path), "--target", "target", epochs=3)
    info = export_model(run, tmp_path / "bc.onnx")
    assert info["parity"]["inputs"].startswith("test rows")
    meta = info["metadata"]
    encoding = Encoding.from_dict(json.loads(meta["encoding"])["encoding"])
    assert "a table's rows encoded" in meta["input"]
    table = read_table(path)
    features = encoding.apply(table.cells, str(path))  # every row, as the metadata says
    outputs = onnx_session(tmp_path / "bc.onnx").run(None, {"images": features})[0]
    rows = [{c: table.cells[c][i] for c in table.columns} for i in range(len(table))]
    predicted = Predictor(run, device="cpu", amp="off").predict(rows)
    assert [json.loads(meta["classes"])[i] for i in outputs.argmax(1)] == [
        p.label for p in predicted
    ]


def test_a_regression_table_answers_values_in_predict_serve_and_export(tables, tmp_path):
    from trainlab.data.table_encode import Encoding
    from trainlab.data.table_read import read_table
    from trainlab.inference import Predictor
    from trainlab.workflow import evaluate_checkpoint

    path = tables / "diabetes.csv"
    run = _train(tmp_path, "diabetes", "--dataset", str(path), "--target", "target", epochs=3)
    _, (outputs, _) = evaluate_checkpoint(run, device="cpu", return_predictions=True)
    data = load_dataset(str(path), target="target")
    scale = data.info["preprocess"]["target"]
    expected = (outputs[:, 0].double() * scale["std"] + scale["mean"]).tolist()  # its units
    rows = _rows_file(path, data.info["test_rows"], tmp_path / "rows.csv")
    out = tmp_path / "values.csv"
    proc = run_here("predict", str(run), str(rows), "--csv", str(out), "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    with open(out, newline="") as f:
        answers = list(csv.reader(f))
    assert answers[0] == ["row", "value"]
    assert [float(a[1]) for a in answers[1:]] == pytest.approx(expected, rel=1e-4)
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from trainlab.serve.rows import create_rows_app

    with open(rows, newline="") as f:
        first = next(csv.DictReader(f))
    client = TestClient(create_rows_app(Predictor(run, device="cpu")))
    answer = client.post("/api/predict", json=first)
    assert answer.status_code == 200, answer.text
    assert answer.json()["value"] == pytest.approx(expected[0], rel=1e-5)
    pytest.importorskip("onnxruntime")
    from trainlab.inference.export import export_model, onnx_session

    info = export_model(run, tmp_path / "d.onnx")
    assert "value = output * std + mean" in info["metadata"]["output"]
    table = read_table(rows)
    encoding = Encoding.from_dict(json.loads(info["metadata"]["encoding"])["encoding"])
    graph = onnx_session(tmp_path / "d.onnx").run(
        None, {"images": encoding.apply(table.cells, str(rows))}
    )[0]
    assert (graph[:, 0] * scale["std"] + scale["mean"]).tolist() == pytest.approx(
        expected, rel=1e-4
    )
