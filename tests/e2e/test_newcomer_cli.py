"""What a newcomer found in the CLI, on real MNIST: the train summary gives the figure eval will
give, predict reads a test/<class>/ tree and scores it as eval does, out-of-range flags are
refused by name, a path through a file is not blamed on the disk, and serve's help says what the
page is for each kind of data."""

from __future__ import annotations

import errno
import json
import re

import pytest

from helpers import assert_clean_error, run_cli, run_here


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory, mnist_root):
    """Two epochs of an MLP at a constant learning rate of 0.3: on this subset the second
    epoch scores worse than the first, so best.pt (chosen on validation) is epoch 1, not the
    last (which is what the newcomer met)."""
    runs = tmp_path_factory.mktemp("runs")
    proc = run_cli(
        *("train", "--model", "mlp", "--epochs", "2", "--subset", "1000", "--test-subset", "300"),
        *("--val-split", "0.2", "--lr", "0.3", "--schedule", "constant", "--device", "cpu"),
        *("--runs-dir", str(runs), "--run-name", "mlp", "--quiet"),
        env={"TRAINLAB_DATA": str(mnist_root)},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return runs / "mlp", proc.stdout


def _percent(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in: {text}"
    return float(found.group(1))


@pytest.mark.parametrize(
    ("args", "flag", "wanted", "value"),
    [
        (["predict", "RUN", "x.png", "--batch-size", "0"], "--batch-size", "at least 1", "0"),
        (["predict", "RUN", "x.png", "--top-k", "0"], "--top-k", "at least 1", "0"),
        (["predict", "RUN", "x.png", "--min-confidence", "2"], "--min-confidence", "0 to 1", "2"),
        (["predict", "RUN", "x.png", "--max-pixels", "-5"], "--max-pixels", "at least 1", "-5"),
        (["eval", "RUN", "--batch-size", "0"], "--batch-size", "at least 1", "0"),
        (["serve", "RUN", "--port", "99999"], "--port", "from 1 to 65535", "99999"),
        (["serve", "RUN", "--max-body-mb", "0"], "--max-body-mb", "above 0", "0"),
        (["serve", "RUN", "--max-batch", "0"], "--max-batch", "at least 1", "0"),
        (["serve", "RUN", "--max-in-flight", "0"], "--max-in-flight", "at least 1", "0"),
        (["serve", "RUN", "--queue-wait-ms", "-1"], "--queue-wait-ms", "at least 0", "-1"),
        (["serve", "RUN", "--port", "http"], "--port", "from 1 to 65535", "'http'"),
    ],
)
def test_out_of_range_flags_are_refused_naming_flag_range_and_value(
    mnist_run, args, flag, wanted, value
):
    run, _ = mnist_run
    proc = run_here(*(str(run) if a == "RUN" else a for a in args))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"argument {flag}: expected " in proc.stderr, proc.stderr
    assert wanted in proc.stderr and f"got {value}" in proc.stderr, proc.stderr


def test_in_range_values_still_work(mnist_run, mnist, tmp_path):
    from PIL import Image

    run, _ = mnist_run
    Image.fromarray(mnist.test_x[0][0].numpy()).save(tmp_path / "digit.png")
    proc = run_here(
        *("predict", str(run), str(tmp_path / "digit.png"), "--top-k", "20"),
        *("--min-confidence", "1", "--batch-size", "1", "--device", "cpu"),
    )
    assert proc.returncode == 0, proc.stderr
    header = proc.stdout.splitlines()[0]
    assert "top 10" in header  # ten classes: a top 20 lists the ten there are


def test_a_path_through_a_file_is_not_blamed_on_the_disk_space(mnist_run, mnist, tmp_path):
    from PIL import Image

    run, _ = mnist_run
    Image.fromarray(mnist.test_x[0][0].numpy()).save(tmp_path / "digit.png")
    preview = tmp_path / "digit.png" / "previews"  # a folder asked for below a file
    proc = run_here("predict", str(run), str(tmp_path / "digit.png"), "--preview", str(preview))
    assert_clean_error(proc, str(preview), "a file, not a folder")
    assert "disk" not in proc.stderr.replace(str(preview), "")


@pytest.mark.parametrize(
    ("number", "advice"),
    [
        (errno.ENOENT, "does not exist"),
        (errno.ENOTDIR, "a file, not a folder"),
        (errno.ENOSPC, "disk is full"),
        (errno.EDQUOT, "quota"),
    ],
)
def test_only_a_full_disk_talks_of_disk_space(number, advice, tmp_path):
    from trainlab.cli import os_error_message

    path = str(tmp_path / "x")
    message = os_error_message(OSError(number, "the system's words", path))
    assert advice in message and path in message
    assert ("disk" in message.replace(path, "")) == (number in (errno.ENOSPC, errno.EDQUOT))


def test_serve_help_says_what_the_page_does_for_each_kind():
    from trainlab.data.kinds import KINDS

    proc = run_here("serve", "--help")
    text = " ".join(proc.stdout.split())
    assert "draw-a-digit" not in text
    served = [kind for kind in KINDS.all().values() if kind.page is not None]
    assert len(served) >= 2  # digits draw, photos upload
    for kind in served:
        assert f"for {kind.summary}, {kind.page.hint}" in text
    assert "has no page and is not served" in text


def test_the_train_summary_gives_the_figure_eval_gives(mnist_run, mnist_root):
    run, summary = mnist_run
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    best = max(rows, key=lambda row: row["val_acc"])  # the first of equals, as best.pt keeps
    said = re.search(r"best\.pt: epoch (\d+) \(best val_acc\), test accuracy ([\d.]+)%", summary)
    assert said, summary
    assert int(said.group(1)) == best["epoch"]
    evaluated = run_cli("eval", str(run / "best.pt"), env={"TRAINLAB_DATA": str(mnist_root)})
    assert evaluated.returncode == 0, evaluated.stderr
    assert float(said.group(2)) == _percent(r"accuracy ([\d.]+)%", evaluated.stdout)
    # the last epoch's figure is still said first, and here it is another one
    last = _percent(r"^test accuracy ([\d.]+)% after 2 epoch\(s\)", summary)
    assert last == round(100 * rows[-1]["test_acc"], 2)
    if best["epoch"] != 2:
        assert last != float(said.group(2))


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory, mnist):
    """A run on a folder of MNIST images in the layout such data comes in: train/<class>/ and
    test/<class>/, the class folders named 0-9."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("mnist-folder")
    for split, x, y in (("train", mnist.train_x[:600], mnist.train_y[:600]),
                        ("test", mnist.test_x[:150], mnist.test_y[:150])):  # fmt: skip
        for i, (image, label) in enumerate(zip(x, y, strict=True)):
            where = folder / split / str(int(label))
            where.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image[0].numpy()).save(where / f"{i:04d}.png")
    runs = tmp_path_factory.mktemp("folder-runs")
    proc = run_here(
        *("train", "--dataset", str(folder), "--epochs", "1", "--device", "cpu", "--quiet"),
        *("--runs-dir", str(runs), "--run-name", "folder"),
    )
    assert proc.returncode == 0, proc.stderr
    return runs / "folder", folder


def test_predict_scores_a_test_tree_as_eval_does(folder_run):
    run, folder = folder_run
    evaluated = run_here("eval", str(run), "--device", "cpu", "--no-save")
    assert evaluated.returncode == 0, evaluated.stderr
    expected = _percent(r"accuracy ([\d.]+)%", evaluated.stdout)
    assert "test split: 150 samples" in evaluated.stdout

    proc = run_here("predict", str(run), str(folder / "test"), "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "no images" not in proc.stderr
    said = _percent(r"accuracy ([\d.]+)% \(\d+ of 150 images in class folders", proc.stdout)
    assert said == expected
    assert proc.stdout.splitlines()[0].split()[:3] == ["file", "class", "true"]

    as_json = run_here("predict", str(run), str(folder / "test"), "--json", "--device", "cpu")
    answers = json.loads(as_json.stdout)
    truths = [p["true_label"] for p in answers["predictions"]]
    assert len(truths) == 150
    assert truths == [p["source"].split("/")[-2] for p in answers["predictions"]]
    assert round(100 * answers["accuracy"], 2) == expected and answers["scored"] == 150


def test_predict_says_why_folders_that_are_not_classes_get_no_accuracy(folder_run):
    run, folder = folder_run
    proc = run_here("predict", str(run), str(folder), "--device", "cpu")  # train/ and test/
    assert proc.returncode == 0, proc.stderr
    assert sum(".png" in line for line in proc.stdout.splitlines()) == 750  # every image
    assert "accuracy" not in proc.stdout
    assert "note: no accuracy: the folder name(s) test, train are not classes" in proc.stderr
