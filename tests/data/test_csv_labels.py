"""Images named in a CSV with their labels, made from real Fashion-MNIST (Debian's package) in
the Kaggle layout: one folder of PNGs, a ``train.csv`` of ``id,label`` with ids written without
their extension, and a separate ``test.csv``. It trains as well as the same images laid out as
class folders, ``predict --csv`` on the test images scores what eval scores, and missing, junk
and unreadable rows are reported, never dropped unsaid."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest
from PIL import Image

from helpers import assert_clean_error, run_here
from trainlab.cli import main

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
pytestmark = pytest.mark.skipif(
    not DEBIAN.is_dir(), reason="apt-get install dataset-fashion-mnist (.ci/run does)"
)
TRAIN, TEST = 3000, 1000
NAMED = ("path", "label", "probability", "error")
# small and quick, in float32 so that eval and predict compute the same numbers
SETTINGS = ["--image-size", "28", "--epochs", "2", "--device", "cpu", "--amp", "off", "--json"]


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """(the Kaggle folder, the same images as class folders)."""
    from trainlab.data import load_dataset

    data_root = tmp_path_factory.mktemp("fm-root")
    data = load_dataset("fashion-mnist", data_root, sources=("local", "system")).subset(TRAIN, TEST)
    names = [c.replace("/", " or ") for c in data.classes]  # "T-shirt/top": a folder name
    kaggle = tmp_path_factory.mktemp("kaggle")
    folders = tmp_path_factory.mktemp("folders")
    for split, xs, ys in (
        ("train", data.train_x, data.train_y),
        ("test", data.test_x, data.test_y),
    ):
        rows = [["id", "label"]]
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            picture = Image.fromarray(x[0].numpy())
            picture.save(kaggle / f"{split}{i:05d}.png")
            rows.append([f"{split}{i:05d}", names[int(y)]])
            where = folders / split / names[int(y)]
            where.mkdir(parents=True, exist_ok=True)
            picture.save(where / f"{split}{i:05d}.png")
        with open(kaggle / f"{split}.csv", "w", newline="") as f:
            csv.writer(f).writerows(rows)
    return kaggle, folders


def _train(tmp_path, name, *dataset_args) -> dict:
    args = ["train", *dataset_args, *SETTINGS, "--runs-dir", str(tmp_path), "--run-name", name]
    assert main(args) == 0
    return args


@pytest.fixture(scope="module")
def csv_run(layouts, tmp_path_factory):
    kaggle, _ = layouts
    runs = tmp_path_factory.mktemp("csv-runs")
    args = ["--dataset", str(kaggle / "train.csv"), "--test-csv", str(kaggle / "test.csv")]
    _train(runs, "csv", *args)
    return runs / "csv"


def _final(run_dir: Path) -> dict:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if "test_acc" in line][-1]


def test_it_trains_within_one_and_a_half_points_of_class_folders(csv_run, layouts, tmp_path):
    _, folders = layouts
    _train(tmp_path, "folders", "--dataset", str(folders))
    by_csv, by_folders = _final(csv_run), _final(tmp_path / "folders")
    assert by_csv["test_n"] == by_folders["test_n"] == TEST
    assert abs(by_csv["test_acc"] - by_folders["test_acc"]) <= 0.015, (by_csv, by_folders)
    assert by_csv["test_acc"] > 0.7  # it learnt: ten classes, chance is 0.1


def test_predict_csv_on_the_test_images_scores_what_eval_scores(csv_run, layouts, tmp_path, capsys):
    kaggle, _ = layouts
    capsys.readouterr()
    assert main(["eval", str(csv_run), "--json", "--device", "cpu"]) == 0
    evaluated = json.loads(capsys.readouterr().out)["accuracy"]
    with open(kaggle / "test.csv", newline="") as f:
        truth = {row["id"]: row["label"] for row in csv.DictReader(f)}
    files = [str(kaggle / f"{name}.png") for name in truth]
    out = tmp_path / "submission.csv"
    argv = ["predict", str(csv_run), *files, "--csv", str(out), "--csv-columns", "id,label"]
    assert main([*argv, "--device", "cpu"]) == 0
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", "label"] and [r[0] for r in rows[1:]] == list(truth)  # in order
    correct = sum(label == truth[name] for name, label in rows[1:])
    assert correct / len(truth) == pytest.approx(evaluated, abs=1e-9)


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def _train_rows(kaggle: Path, count: int) -> list[list[str]]:
    with open(kaggle / "train.csv", newline="") as f:
        return list(csv.reader(f))[: count + 1]


def test_missing_junk_and_unreadable_rows_are_reported_and_listed(layouts, tmp_path):
    kaggle, _ = layouts
    (kaggle / "notes.txt").write_text("labels checked by hand\n")
    (kaggle / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    rows = _train_rows(kaggle, 200)
    rows += [
        ["gone00001", "Bag"],
        ["notes.txt", "Bag"],
        ["cut", "Coat"],
        ["train00003", rows[4][1]],
    ]
    messy = _write_csv(kaggle / "messy.csv", rows)
    args = ["train", "--dataset", str(messy), *SETTINGS[:-1], "--epochs", "1"]
    proc = run_here(*args, "--runs-dir", str(tmp_path), "--run-name", "messy")
    assert proc.returncode == 0, proc.stderr
    assert (
        "note: 1 row(s) whose file is missing; 1 row(s) naming a file that is not an image; "
        "1 file(s) named again with the same label; 1 unreadable image(s): 4 row(s) left out "
        "(--strict makes this an error)\n"
        "  gone00001: missing (line 202)\n"
        "  notes.txt: not an image file (line 203)\n"
        "  train00003: named again on line 205\n"
        "  cut.png: unreadable: "
    ) in proc.stderr
    assert "10 classes, 201 images" in proc.stderr  # the unreadable one is tried
    listed = (tmp_path / "messy" / "skipped_files.txt").read_text().splitlines()
    assert len(listed) == 4 and listed[0] == "gone00001\tmissing (line 202)"
    strict = run_here(*args, "--runs-dir", str(tmp_path), "--strict")
    assert_clean_error(strict, "(--strict)", "gone00001: missing", "cut.png: unreadable")


@pytest.mark.parametrize(
    ("rows", "options", "needles"),
    [
        (
            [["id", "label"], ["train00000", "Bag"], ["train00000", "Coat"]],
            [],
            ["train00000 is labelled 'Bag' on line 2 and 'Coat' on line 3"],
        ),
        (
            [["id", "label"], ["train00000", "Bag"], ["train00001", " "]],
            [],
            ["line 3 (train00001): the label (column 'label') is empty"],
        ),
        (
            [["id", "file", "label"], ["train00000", "train00000.png", "Bag"]],
            [],
            ["several columns could be the file column (id, file)", "--file-column"],
        ),
        (
            [["name", "kind"], ["train00000", "Bag"]],
            [],
            ["no file column (one of file, file_name", "its columns: name, kind"],
        ),
        (
            [["id", "label"], ["train00000", "Bag"]],
            ["--label-column", "Label"],
            ["no column 'Label' (--label-column); its columns: id, label"],
        ),
        (
            [["id", "label", "split"], ["train00000", "Bag", "holdout"]],
            [],
            ["line 2: split 'holdout' is not one of train, val, valid, test"],
        ),
    ],
)
def test_bad_label_files_are_refused_by_name(layouts, tmp_path, rows, options, needles):
    kaggle, _ = layouts
    bad = _write_csv(kaggle / f"bad-{tmp_path.name}.csv", rows)
    proc = run_here("train", "--dataset", str(bad), *options, "--runs-dir", str(tmp_path))
    assert_clean_error(proc, *needles)


def test_a_folder_with_metadata_csv_honours_its_split_column_and_images(layouts, tmp_path):
    """Hugging Face's imagefolder layout, its images elsewhere (--images), three splits named."""
    kaggle, _ = layouts
    rows = _train_rows(kaggle, 400)
    hf = tmp_path / "hf"
    hf.mkdir()
    split = ["train"] * 300 + ["valid"] * 40 + ["test"] * 60
    table = [["file_name", "category", "split"]]
    table += [[f"{name}.png", label, s] for (name, label), s in zip(rows[1:], split, strict=True)]
    _write_csv(hf / "metadata.csv", table)
    args = ["train", "--dataset", str(hf), "--images", str(kaggle), *SETTINGS, "--epochs", "1"]
    proc = run_here(*args, "--runs-dir", str(tmp_path), "--run-name", "hf-run")
    assert proc.returncode == 0, proc.stderr
    final = json.loads(proc.stdout)["final"]
    assert final["test_n"] == 60 and final["val_n"] == 40, final
    assert "--val-split" not in proc.stderr  # the CSV's own validation rows, none cut


def test_predict_csv_keeps_failed_inputs_in_order_with_their_error(csv_run, layouts, tmp_path):
    kaggle, _ = layouts
    inputs = [str(kaggle / "test00000.png"), str(tmp_path / "absent.png")]
    (tmp_path / "junk.png").write_bytes(b"not a picture")
    inputs += [str(tmp_path / "junk.png"), str(kaggle / "test00001.png")]
    out = tmp_path / "out.csv"
    proc = run_here("predict", str(csv_run), *inputs, "--csv", str(out), "--csv-probabilities")
    assert proc.returncode == 1  # some inputs failed; the others are still written
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["path"] for r in rows] == inputs  # in the order given, failed ones included
    assert rows[0]["error"] == "" and rows[0]["label"] and rows[3]["label"]
    assert rows[1]["label"] == "" and "no such file" in rows[1]["error"]
    assert rows[2]["label"] == "" and "junk.png" in rows[2]["error"]
    per_class = [float(v) for k, v in rows[0].items() if k not in NAMED]
    assert len(per_class) == 10 and sum(per_class) == pytest.approx(1, abs=1e-4)
    assert float(rows[0]["probability"]) == max(per_class)
    argv = ["predict", str(csv_run), inputs[0], "--csv", str(out), "--csv-columns", "id,score"]
    assert_clean_error(run_here(*argv), "--csv-columns id,score: unknown column(s) score")


def test_file_and_label_columns_name_them(layouts, tmp_path):
    """Columns with other names: refused with the list of columns, read once named."""
    kaggle, _ = layouts
    rows = _train_rows(kaggle, 200)
    odd = _write_csv(kaggle / "odd.csv", [["picture", "kind"], *rows[1:]])
    args = ["train", "--dataset", str(odd), *SETTINGS, "--epochs", "1", "--runs-dir", str(tmp_path)]
    assert_clean_error(run_here(*args), "no file column", "its columns: picture, kind")
    proc = run_here(*args, "--file-column", "picture", "--label-column", "kind")
    assert proc.returncode == 0, proc.stderr
    assert "10 classes, 200 images" in proc.stderr


def test_is_valid_marks_the_validation_rows_and_a_stem_of_two_files_is_reported(
    layouts, tmp_path, caplog
):
    """fastai's is_valid column; a name without extension that fits two files is not guessed."""
    from trainlab.data import load_dataset

    kaggle, _ = layouts
    rows = _train_rows(kaggle, 100)
    for i, (name, _) in enumerate(rows[1:]):
        link = tmp_path / f"{name}.png"
        link.symlink_to(kaggle / f"{name}.png")
        if i == 0:  # the same stem twice
            (tmp_path / f"{name}.jpg").symlink_to(kaggle / f"{name}.png")
    table = [["image", "label", "is_valid"]]
    table += [
        [name, label, "True" if i % 5 == 0 else "False"] for i, (name, label) in enumerate(rows[1:])
    ]
    caplog.set_level(logging.INFO, logger="trainlab")
    data = load_dataset(str(_write_csv(tmp_path / "labels.csv", table)))
    lines = [record.getMessage() for record in caplog.records]
    assert len(data.val_y) == 19  # rows 5, 10, ... 95 (row 0 fits two files)
    assert len(data.train_y) + len(data.test_y) == 80
    assert data.info["skipped"] == [
        (rows[1][0], f"several files with this stem ({rows[1][0]}.jpg, {rows[1][0]}.png) (line 2)")
    ]
    assert any("1 row(s) whose name fits several image files" in line for line in lines)
