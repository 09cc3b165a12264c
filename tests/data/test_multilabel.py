"""Several labels per image, from real MNIST: 56×56 canvases holding 1-3 different digits in
the cells of a 2×2 grid, written as PNGs with a labels CSV such as ``c00012.png,3 7``. Trained
with ``--multi-label``, the run reaches micro-F1 >= 0.90 on held-out canvases (made from MNIST's
test digits), and the thresholds it tuned on its validation split are the ones predict, the
exported ONNX graph (in ONNX Runtime) and serve apply: all three give the same label sets."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import assert_clean_error, run_here
from trainlab.cli import main
from trainlab.errors import DataError

TRAIN, TEST = 3000, 600
# float32, so that eval, predict, the exported graph and serve compute the same numbers
SETTINGS = ["--epochs", "6", "--device", "cpu", "--amp", "off", "--json"]


def _canvases(folder: Path, images, labels, count: int, seed: int, prefix: str) -> list:
    """``count`` canvases of 1-3 different digits; their (file, labels) rows."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        canvas, present = np.zeros((56, 56), np.uint8), set()
        for cell in rng.choice(4, rng.integers(1, 4), replace=False):
            j = int(rng.integers(len(labels)))
            while int(labels[j]) in present:
                j = int(rng.integers(len(labels)))
            row, col = divmod(int(cell), 2)
            canvas[28 * row : 28 * row + 28, 28 * col : 28 * col + 28] = images[j]
            present.add(int(labels[j]))
        name = f"{prefix}{i:05d}.png"
        Image.fromarray(canvas).save(folder / name)
        rows.append([name, " ".join(map(str, sorted(present)))])
    return rows


def _write_csv(path: Path, rows: list[list]) -> Path:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


@pytest.fixture(scope="module")
def canvases(tmp_path_factory):
    """A folder of canvases with train.csv (``file,labels``) and test.csv."""
    from trainlab.data import load_dataset

    mnist = load_dataset("mnist")
    folder = tmp_path_factory.mktemp("canvases")
    train = _canvases(folder, mnist.train_x[:, 0].numpy(), mnist.train_y, TRAIN, 0, "c")
    test = _canvases(folder, mnist.test_x[:, 0].numpy(), mnist.test_y, TEST, 1, "t")
    _write_csv(folder / "train.csv", [["file", "labels"], *train])
    _write_csv(folder / "test.csv", [["file", "labels"], *test])
    return folder


@pytest.fixture(scope="module")
def run(canvases, tmp_path_factory):
    runs = tmp_path_factory.mktemp("ml-runs")
    data = ["--dataset", str(canvases / "train.csv"), "--test-csv", str(canvases / "test.csv")]
    args = ["train", *data, "--multi-label", *SETTINGS, "--runs-dir", str(runs)]
    assert main([*args, "--run-name", "ml"]) == 0
    return runs / "ml"


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _truth(canvases: Path, name: str) -> dict[str, set[str]]:
    with open(canvases / name, newline="") as f:
        return {row["file"]: set(row["labels"].split()) for row in csv.DictReader(f)}


def test_canvases_reach_micro_f1_090_on_held_out_canvases(run, canvases, capsys):
    rows = _rows(run)
    best = max(rows, key=lambda r: r["val_micro_f1"])
    assert best["test_n"] == TEST
    assert best["test_micro_f1"] >= 0.90, best
    for name in ("test_macro_f1", "test_map", "test_subset_acc", "val_map"):
        assert 0 < best[name] <= 1
    assert best["test_map"] >= best["test_micro_f1"] - 0.05  # ranking is at least as good
    # one threshold per label, tuned on the validation split, recorded with best.pt
    checkpoint = torch.load(run / "best.pt", weights_only=False, map_location="cpu")
    assert checkpoint["metrics"]["thresholds"] == best["thresholds"]
    assert len(set(best["thresholds"])) > 1 and all(0 < t < 1 for t in best["thresholds"])
    assert checkpoint["data"]["kind"] == "multilabel-images"
    assert checkpoint["best"]["monitor"] == "val_micro_f1"
    assert checkpoint["data"]["cuts"].startswith("cuts stratified on ")  # the run says how
    assert "cuts stratified on " in (run / "config.toml").read_text()
    # eval scores best.pt at those thresholds: the figures of its epoch
    capsys.readouterr()
    assert main(["eval", str(run), "--json", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["thresholds"] == best["thresholds"]
    assert report["scores"]["micro_f1"] == pytest.approx(best["test_micro_f1"], abs=1e-6)
    truth = _truth(canvases, "test.csv").values()
    support = [sum(str(digit) in labels for labels in truth) for digit in range(10)]
    assert report["per_class"]["support"] == support  # per label, from scikit-learn


def test_predict_the_onnx_graph_and_serve_give_the_recorded_label_sets(run, canvases, tmp_path):
    pytest.importorskip("onnxruntime")
    from trainlab.inference import Predictor
    from trainlab.inference.export import export_model, onnx_session

    files = sorted(canvases.glob("t000[0-3]?.png"))  # 40 held-out canvases
    out = tmp_path / "labels.csv"
    argv = ["predict", str(run), *map(str, files), "--csv", str(out), "--device", "cpu"]
    assert main(argv) == 0
    with open(out, newline="") as f:
        predicted = {Path(r["path"]).name: r for r in csv.DictReader(f)}
    by_predict = {name: set(r["label"].split()) for name, r in predicted.items()}
    truth = _truth(canvases, "test.csv")
    right = sum(by_predict[name] == truth[name] for name in by_predict)
    assert right >= 0.6 * len(files)  # whole sets right; the F1 above is the real figure
    # each label its probability, in the same order, all at or over the recorded thresholds
    predictor = Predictor(run, device="cpu")
    # calibrated per label: the probabilities are of the logits over each label's temperature,
    # each threshold moved with it, so the label sets are those of the thresholds as tuned
    best = torch.load(run / "best.pt", weights_only=False)
    temperatures = torch.tensor(best["calibration"]["temperatures"], dtype=torch.float64)
    tuned = torch.tensor(best["metrics"]["thresholds"], dtype=torch.float64)
    moved = (torch.logit(tuned.clamp(1e-6, 1 - 1e-6)) / temperatures).sigmoid()
    assert predictor.thresholds == pytest.approx(moved.tolist())
    plain = Predictor(run, device="cpu")
    plain.label_temperatures, plain.thresholds = None, tuned.tolist()
    names = [{n for n, _ in p.labels} for p in predictor.predict(files)]
    assert names == [{n for n, _ in p.labels} for p in plain.predict(files)]
    limits = dict(zip(predictor.classes, predictor.thresholds, strict=True))
    for r in predicted.values():
        pairs = zip(r["label"].split(), r["probability"].split(), strict=True)
        assert all(float(p) >= limits[label] for label, p in pairs)

    exported = export_model(run, tmp_path / "model.onnx")
    meta = exported["metadata"]
    assert json.loads(meta["thresholds"]) == predictor.thresholds
    assert exported["parity"]["same_label_sets"]
    session = onnx_session(tmp_path / "model.onnx")
    pixels = np.stack([np.asarray(Image.open(f))[None] for f in files]).astype(np.float32) / 255
    probs = session.run(None, {"images": pixels})[0]
    limits_row = np.asarray(json.loads(meta["thresholds"]), np.float32)
    classes = json.loads(meta["classes"])
    by_onnx = {
        f.name: {classes[j] for j in np.nonzero(row >= limits_row)[0]}
        for f, row in zip(files, probs, strict=True)
    }
    assert by_onnx == by_predict

    by_serve = asyncio.run(_served(predictor, files))
    assert by_serve == by_predict


async def _served(predictor, files) -> dict[str, set[str]]:
    import httpx

    from trainlab.serve.app import create_app

    app = create_app(predictor)
    transport = httpx.ASGITransport(app=app)
    answers = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:
        model = (await client.get("/api/model")).json()
        assert model["thresholds"] == predictor.thresholds and model["kind"] == "multilabel-images"
        assert model["test_micro_f1"] >= 0.90
        page = (await client.get("/")).text
        assert "data.labels" in page  # the page lists the label set
        for f in files:
            reply = await client.post(
                "/api/predict", content=f.read_bytes(), headers={"Content-Type": "image/png"}
            )
            assert reply.status_code == 200, reply.text
            body = reply.json()
            assert body["label"] == " ".join(item["label"] for item in body["labels"])
            answers[f.name] = {item["label"] for item in body["labels"]}
    return answers


def _first(canvases: Path, count: int) -> list[list[str]]:
    with open(canvases / "train.csv", newline="") as f:
        return list(csv.reader(f))[1 : count + 1]


def _load(path: Path, **options):
    from trainlab.data import load_dataset

    return load_dataset(str(path), multi_label=True, **options)


def test_label_delim_and_label_columns_read_sets(canvases):
    """The same label sets from a space-separated cell, a ';'-separated one (--label-delim),
    0/1 columns named one by one (--label-columns a,b,c) or by a pattern ('tag_*')."""
    rows = _first(canvases, 300)
    by_space = _load(_write_csv(canvases / "space.csv", [["file", "labels"], *rows]))
    semi = [[name, ";".join(labels.split())] for name, labels in rows]
    by_delim = _load(
        _write_csv(canvases / "semi.csv", [["file", "labels"], *semi]), label_delim=";"
    )
    tags = [f"tag_{d}" for d in range(10)]
    flags = [[name, *(int(str(d) in labels.split()) for d in range(10))] for name, labels in rows]
    columns = _write_csv(canvases / "columns.csv", [["file", *tags], *flags])
    by_pattern = _load(columns, label_columns="tag_*")
    by_names = _load(columns, label_columns=",".join(reversed(tags)))
    assert by_space.kind == by_pattern.kind == "multilabel-images"
    assert by_space.classes == by_delim.classes == by_pattern.classes == [str(d) for d in range(10)]
    assert by_names.classes == tags[::-1]  # named: the columns' names, in the order given
    for other in (by_delim, by_pattern):
        assert torch.equal(other.train_y, by_space.train_y)
        assert torch.equal(other.test_y, by_space.test_y)
    # named in another order: the same sets (the cut may differ: strata are numbered anew)
    every = sorted(map(tuple, torch.cat([by_names.train_y, by_names.test_y]).flip(1).tolist()))
    assert every == sorted(map(tuple, torch.cat([by_space.train_y, by_space.test_y]).tolist()))
    assert by_space.train_y.shape[1] == 10 and by_space.train_y.dtype == torch.float32
    assert set(by_space.train_y.sum(1).tolist()) == {1.0, 2.0, 3.0}
    # without --label-delim, "3;7" is one label named "3;7"
    assert any(";" in c for c in _load(canvases / "semi.csv").classes)


def test_an_empty_cell_is_an_image_with_none_of_the_labels(canvases, caplog):
    rows = _first(canvases, 300)
    rows[5][1] = ""
    data = _load(_write_csv(canvases / "empty.csv", [["file", "labels"], *rows]))
    held = torch.cat([data.train_y, data.test_y])
    assert int((held.sum(1) == 0).sum()) == 1  # a negative for every label, kept
    with caplog.at_level("INFO", logger="trainlab"):
        _load(canvases / "empty.csv")
    said = caplog.text
    assert "1 image(s) with none of them" in said
    assert "cuts stratified on" in said and "label combination(s)" in said


def test_the_cuts_are_stratified_on_label_combinations(canvases):
    from trainlab.data.dataset import label_combinations

    data = _load(_write_csv(canvases / "strat.csv", [["file", "labels"], *_first(canvases, 600)]))
    data = data.split_validation(0.2, seed=0)
    pool = torch.cat([data.train_y, data.val_y])
    strata, count = label_combinations(pool)
    assert count > 10
    in_val = strata[len(data.train_y) :]
    for k in range(1, count):  # each combination held twice or more: its share, rounded
        members = int((strata == k).sum())
        assert abs(int((in_val == k).sum()) - 0.2 * members) <= 1, k
    # cross-validation folds are stratified the same way (--folds)
    whole = _load(canvases / "strat.csv")
    for fold in (1, 2):
        held = whole.split_fold(5, fold, seed=0)
        assert abs(len(held.val_y) - len(whole.train_y) / 5) <= 1
        assert len(held.val_y) + len(held.train_y) == len(whole.train_y)


def test_threshold_and_monitor_on_a_short_run(canvases, tmp_path, capsys):
    """--threshold replaces the tuned thresholds (recorded, used by predict), --monitor
    val_map chooses best.pt, --class-weights balanced weighs each label's positives."""
    small = _write_csv(canvases / "small.csv", [["file", "labels"], *_first(canvases, 400)])
    args = ["train", "--dataset", str(small), "--multi-label", *SETTINGS[2:], "--epochs", "2"]
    args += ["--threshold", "0.3", "--monitor", "val_map", "--class-weights", "balanced"]
    assert main([*args, "--runs-dir", str(tmp_path), "--run-name", "fixed"]) == 0
    rows = _rows(tmp_path / "fixed")
    assert all(row["thresholds"] == [0.3] * 10 for row in rows)
    checkpoint = torch.load(tmp_path / "fixed" / "best.pt", weights_only=False)
    assert checkpoint["best"]["monitor"] == "val_map"
    assert checkpoint["best"]["value"] == max(row["val_map"] for row in rows)
    image = str(canvases / "t00000.png")
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "fixed"), image, "--json", "--device", "cpu"]) == 0
    loose = json.loads(capsys.readouterr().out)["predictions"][0]
    probs = loose["probabilities"]
    # 0.3 on the uncalibrated probabilities: on the calibrated ones shown, each label's 0.3
    # moved with its temperature (the same label sets)
    from trainlab.inference import Predictor

    moved = Predictor(tmp_path / "fixed", device="cpu").thresholds
    assert {item["label"] for item in loose["labels"]} == {
        str(d) for d in range(10) if probs[d] >= moved[d]
    }
    strict = ["predict", str(tmp_path / "fixed"), image, "--json", "--threshold", "0.999999"]
    assert main([*strict, "--device", "cpu"]) == 0
    tight = json.loads(capsys.readouterr().out)["predictions"][0]
    assert {item["label"] for item in tight["labels"]} == {
        str(d) for d in range(10) if probs[d] >= 0.999999
    }


def test_balanced_class_weights_are_each_labels_negatives_over_positives(canvases):
    import torch.nn.functional as F

    from trainlab.config import TrainConfig
    from trainlab.engine.loop import loss_function
    from trainlab.engine.setup import class_weights

    data = _load(_write_csv(canvases / "w.csv", [["file", "labels"], *_first(canvases, 300)]))
    weights = class_weights(TrainConfig(class_weights="balanced"), data)
    positives = data.train_y.sum(0)
    assert torch.allclose(weights, (len(data.train_y) - positives) / positives)
    logits = torch.randn(len(data.train_y), 10)
    weighted = loss_function("bce", 0.0, weights)(logits, data.train_y)
    plain = loss_function("bce")(logits, data.train_y)
    expected = F.binary_cross_entropy_with_logits(
        logits, data.train_y, pos_weight=weights, reduction="sum"
    )
    assert float(weighted) == pytest.approx(float(expected) / 10, rel=1e-5)
    assert float(weighted) > float(plain)  # each positive counts (negatives/positives) times


def test_the_report_shows_label_co_occurrence(run, canvases):
    from trainlab.report import make_report

    paths = make_report(run)
    assert paths["cooccurrence"].is_file() and "confusion" not in paths
    page = paths["html"].read_text()
    assert "Label co-occurrence" in page and "Per label" in page
    predictions = np.load(run / "predictions.npz")
    recorded = torch.load(run / "best.pt", weights_only=False)["metrics"]["thresholds"]
    assert predictions["thresholds"].tolist() == pytest.approx(recorded)  # best.pt's
    both = predictions["labels"].astype(int).T @ predictions["labels"].astype(int)
    truth = list(_truth(canvases, "test.csv").values())
    assert both[3, 7] == sum({"3", "7"} <= labels for labels in truth)
    assert both[2, 2] == sum("2" in labels for labels in truth)
    # calibrated one temperature per label on the validation split, shown with its ECE
    record = torch.load(run / "best.pt", weights_only=False)["calibration"]
    assert len(record["temperatures"]) == 10 and record["uncalibrated_labels"] == []
    assert "one per label" in page and f"{100 * record['ece_after']:.2f}% after" in page


def test_a_sweep_and_early_stopping_take_the_multi_label_monitors():
    from trainlab.data.kinds import MULTILABEL
    from trainlab.engine.checkpoint import best_checkpoint
    from trainlab.tune.settings import check_monitor

    for name in ("val_micro_f1", "val_macro_f1", "val_map"):
        assert check_monitor(name) == (name, "maximize")
        assert best_checkpoint(name, True, MULTILABEL).mode == "max"
    assert best_checkpoint("val_loss", True, MULTILABEL).mode == "min"
    assert best_checkpoint(None, True, MULTILABEL).monitor == "val_micro_f1"


@pytest.mark.parametrize(
    ("rows", "options", "needles"),
    [
        (
            [["file", "tag_a", "tag_b"], ["c00000.png", "1", "2"]],
            {"label_columns": "tag_*"},
            ["line 2 (c00000.png): column 'tag_b' holds '2'", "holds 1", "or 0"],
        ),
        (
            [["file", "tag_a", "tag_b"], ["c00000.png", "1", "yes"]],
            {"label_columns": "tag_a,tag_b"},
            ["line 2 (c00000.png): column 'tag_b' holds 'yes'"],
        ),
        (
            [["file", "tag_a"], ["c00000.png", "1"]],
            {"label_columns": "tag_a,tag_z"},
            ["--label-columns names column(s) it does not have: tag_z", "its columns: file"],
        ),
        (
            [["file", "tag_a"], ["c00000.png", "1"]],
            {"label_columns": "kind_*"},
            ["--label-columns 'kind_*' matches no column; its columns: file, tag_a"],
        ),
        (
            [["file", "labels"], ["c00000.png", ""]],
            {},
            ["no image has a label"],
        ),
        (
            [["file", "labels"], ["c00000.png", "3 7"]],
            {"label_columns": "x", "label_column": "labels"},
            ["--label-columns reads the labels from 0/1 columns, --label-column from one cell"],
        ),
    ],
)
def test_bad_multi_label_files_are_refused_by_name(canvases, tmp_path, rows, options, needles):
    bad = _write_csv(canvases / f"bad-{tmp_path.name}.csv", rows)
    with pytest.raises(DataError) as caught:
        _load(bad, **options)
    for needle in needles:
        assert needle in str(caught.value)


def test_flags_that_need_multi_label_say_so_without_a_traceback(canvases, tmp_path):
    small = canvases / "small.csv"
    if not small.exists():
        _write_csv(small, [["file", "labels"], *_first(canvases, 400)])
    base = ["train", "--dataset", str(small), "--runs-dir", str(tmp_path)]
    assert_clean_error(
        run_here(*base, "--label-delim", ";"),
        "--label-delim reads several labels per image; add --multi-label",
    )
    assert_clean_error(
        run_here(*base, "--multi-label", "--loss", "cross-entropy", "--epochs", "1"),
        "--loss cross-entropy: a multi-label run scores each label by a sigmoid",
    )
    assert_clean_error(
        run_here(
            "train",
            "--dataset",
            "mnist",
            "--subset",
            "200",
            "--threshold",
            "0.3",
            "--runs-dir",
            str(tmp_path),
        ),  # fmt: skip
        "--threshold sets the multi-label thresholds; dataset 'mnist' is classification",
    )


def test_a_mid_epoch_checkpoint_keeps_the_multi_label_sums(canvases, tmp_path):
    """An interrupted epoch's sums go into last.pt (loaded with weights_only) and come back."""
    from trainlab.engine.metrics import MultiLabelCounts

    data = _load(_write_csv(canvases / "sums.csv", [["file", "labels"], *_first(canvases, 200)]))
    counts = MultiLabelCounts(10, torch.device("cpu"))
    logits = torch.randn(len(data.train_y), 10)
    counts.add(torch.tensor(3.0), logits[:50], data.train_y[:50])
    counts.add(torch.tensor(4.0), logits[50:], data.train_y[50:])
    torch.save({"partial": counts.state()}, tmp_path / "last.pt")
    back = MultiLabelCounts(10, torch.device("cpu"))
    back.load_state(torch.load(tmp_path / "last.pt", weights_only=True)["partial"])
    assert back.n == counts.n and back.read().scores == counts.read().scores
    assert back.read().loss == pytest.approx(7.0 / len(data.train_y))


def test_serve_threshold_answers_over_http_with_the_thresholds_given(run, canvases):
    """`trainlab serve RUN --threshold T`, a real server: every label's threshold is T."""
    import importlib.util

    import httpx

    where = Path(__file__).parents[1] / "serve" / "serving.py"
    spec = importlib.util.spec_from_file_location("serving", where)
    serving = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(serving)
    server = serving.Server(run, "--threshold", "0.02")
    try:
        model = httpx.get(f"{server.url}/api/model", timeout=60).json()
        image = (canvases / "t00001.png").read_bytes()
        reply = httpx.post(
            f"{server.url}/api/predict",
            content=image,
            headers={"Content-Type": "image/png"},
            timeout=60,
        )
    finally:
        server.stop()
    assert model["thresholds"] == [0.02] * 10
    body = reply.json()
    wanted = {str(d) for d, p in enumerate(body["probabilities"]) if p >= 0.02}
    assert {item["label"] for item in body["labels"]} == wanted
    assert set(body["label"].split()) == wanted


def test_threshold_on_a_single_label_model_is_refused_by_name(canvases, tmp_path):
    """--threshold is a multi-label setting: predict on a one-label-per-image model says so."""
    single = [row for row in _first(canvases, 600) if " " not in row[1]]
    one = _write_csv(canvases / "one.csv", [["file", "label"], *single])
    args = ["train", "--dataset", str(one), *SETTINGS[2:], "--epochs", "1"]
    assert main([*args, "--runs-dir", str(tmp_path), "--run-name", "one"]) == 0
    image = str(canvases / "t00000.png")
    proc = run_here("predict", str(tmp_path / "one"), image, "--threshold", "0.3")
    assert_clean_error(proc, "--threshold sets a multi-label model's thresholds", "Drop it")


def test_calibrate_fits_one_temperature_per_label_as_the_run_did(run):
    from trainlab.workflow import calibrate_checkpoint

    before = torch.load(run / "best.pt", weights_only=False)["calibration"]
    record = calibrate_checkpoint(run, device="cpu")
    assert record["temperatures"] == pytest.approx(before["temperatures"], rel=1e-3)
    assert record["uncalibrated_labels"] == before["uncalibrated_labels"]
