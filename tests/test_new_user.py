"""What a new user tripped on, as they meet it: through the real CLI or the public Python API."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import assert_clean_error, run_cli
from trainlab import Dataset, Trainer, build_model
from trainlab.cli import main
from trainlab.errors import ConfigError


def test_a_data_root_of_photos_is_not_filled_with_mnist(tmp_path):
    photos = tmp_path / "my_photos"
    for name in ("cats", "dogs"):
        (photos / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (40, 30), (i * 40, 90, 200)).save(photos / name / f"{i}.jpg")
    before = sorted(p.relative_to(photos) for p in photos.rglob("*"))
    proc = run_cli("train", "--data-dir", str(photos), env={"TRAINLAB_DATA": ""})
    assert_clean_error(proc, "holds 2 folder(s) of images: cats/ (3), dogs/ (3)", "Nothing was")
    assert sorted(p.relative_to(photos) for p in photos.rglob("*")) == before  # nothing fetched


def _images(n: int, classes: int, float_images: bool = False):
    generator = torch.Generator().manual_seed(0)
    y = torch.arange(n) % classes
    x = torch.rand(n, 1, 12, 12, generator=generator) * 0.2
    for c in range(classes):  # class c: a bright band in rows 4c..4c+3
        x[y == c, :, 4 * c : 4 * c + 4, :] += 0.7
    return (x if float_images else (x * 255).round().to(torch.uint8)), y


def test_a_dataset_whose_counts_or_labels_disagree_is_refused():
    x, y = _images(72, 3)
    with pytest.raises(ConfigError, match="train_x= holds 72 samples but train_y= holds 10"):
        Dataset("mine", x, y[:10], x, y, classes=["a", "b", "c"])
    with pytest.raises(ConfigError, match=r"test_y= has labels from 0 to 2, but classes= names 2"):
        Dataset("mine", x, y % 2, x, y, classes=["a", "b"])
    with pytest.raises(ConfigError, match="mean= has 2 value"):
        Dataset("mine", x, y, x, y, classes=["a", "b", "c"], mean=[0.5, 0.5], std=[0.2, 0.2])
    floats, _ = _images(72, 3, float_images=True)
    with pytest.raises(ConfigError, match="float images with values from"):
        Dataset("mine", floats * 4 - 2, y, floats, y, classes=["a", "b", "c"])


def test_float_images_as_totensor_gives_them_train_as_images(tmp_path):
    x, y = _images(300, 3, float_images=True)
    data = Dataset("bands", x[:240], y[:240], x[240:], y[240:], classes=["a", "b", "c"])
    assert data.train_x.dtype == torch.uint8 and data.kind == "images"
    result = Trainer(epochs=3, runs_dir=str(tmp_path), device="cpu", quiet=True).fit(
        build_model("cnn", data, widths=[4, 4]), data
    )
    assert result.final["test_acc"] > 0.9  # as tabular features these sat near chance


PROGRESS = """
import sys
from trainlab import Trainer, build_model, load_dataset
data = load_dataset("mnist", sys.argv[1], sources=("local",)).subset(300, 100)
Trainer(epochs=1, runs_dir=sys.argv[2], device="cpu", quiet=sys.argv[3] == "quiet").fit(
    build_model("mlp", data, hidden=[8]), data
)
"""


@pytest.mark.parametrize("quiet", [False, True])
def test_trainer_fit_shows_progress_unless_quiet(tmp_path, mnist_root, quiet):
    proc = subprocess.run(
        [sys.executable, "-c", PROGRESS, str(mnist_root), str(tmp_path), "quiet" * quiet],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    if quiet:
        assert proc.stderr == ""
    else:  # piped: plain lines, as the CLI prints them
        assert re.search(r"epoch 1/1  train loss [\d.]+  acc", proc.stderr), proc.stderr
        assert "\r" not in proc.stderr


def test_an_unknown_flag_gets_the_commands_usage_and_a_did_you_mean(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--early-stopping", "2"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("usage: trainlab train ")
    assert "did you mean --early-stop?" in err


def test_the_d2l_tutorials_train_ch6_line_is_the_books_setup():
    from trainlab.cli import build_parser, given_settings
    from trainlab.resolve import resolve_config

    tutorial = (Path(__file__).parents[1] / "docs" / "tutorials" / "d2l.md").read_text()
    line = next(x for x in tutorial.splitlines() if "train_ch6" in x and "trainlab train" in x)
    argv = line.split("#")[0].split()[1:]
    cfg = resolve_config(given_settings(build_parser().parse_args(argv))).config
    assert (cfg.model, cfg.init, cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs) == (
        "lenet",
        "xavier",
        "sgd",
        0.9,
        256,
        10,
    )
    # the book's plain SGD on images in [0, 1]: none of trainlab's own defaults
    assert (cfg.momentum, cfg.weight_decay, cfg.nesterov, cfg.label_smoothing) == (0, 0, False, 0)
    assert (cfg.schedule, cfg.norm_mean, cfg.norm_std) == ("constant", [0.0], [1.0])


def test_bf16_on_a_cpu_that_only_emulates_it_is_warned(tmp_path, mnist_small, monkeypatch, capsys):
    import trainlab.engine.device as device

    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)
    Trainer(epochs=1, runs_dir=str(tmp_path), device="cpu", amp="bf16", quiet=True).fit(
        build_model("cnn", mnist_small, widths=[4, 4]), mnist_small.subset(200, 100)
    )
    assert "warning: --amp bf16 on a CPU without native bf16" in capsys.readouterr().err


def test_predict_runs_a_file_once_when_it_is_also_in_a_folder_given(default_run, tmp_path, capsys):
    Image.new("L", (28, 28)).save(tmp_path / "a.png")
    Image.new("L", (28, 28), 255).save(tmp_path / "b.png")
    (tmp_path / "notes.tif").write_bytes(b"not a tiff")
    code = main(["predict", str(default_run), str(tmp_path / "a.png"), str(tmp_path), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1  # notes.tif cannot be read
    assert [Path(p["source"]).name for p in out["predictions"]] == ["a.png", "b.png", "notes.tif"]
    assert "WebP or TIFF file" in out["predictions"][2]["error"]


def test_serve_answers_errors_in_one_shape_and_logs_requests(default_run):
    import httpx

    from serve.serving import Server

    server = Server(default_run)
    try:
        missing = httpx.get(server.url + "/nowhere")
        wrong = httpx.get(server.url + "/api/predict")
        assert (missing.status_code, wrong.status_code) == (404, 405)
        assert set(missing.json()) == {"error"} and set(wrong.json()) == {"error"}
    finally:
        err = server.stop()
    assert re.search(r"GET /nowhere 404 [\d.]+ ms", err) and "GET /api/predict 405" in err


def test_serve_on_a_port_in_use_says_so_before_announcing(default_run):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_cli("serve", str(default_run), "--port", str(port), "--device", "cpu")
    assert_clean_error(proc, f"cannot serve on 127.0.0.1:{port}", "--port")
    assert "serving" not in proc.stderr and "Errno 98" not in proc.stderr.split("error:")[0]


def test_listing_the_models_initialises_no_weights(monkeypatch):
    from trainlab.models import describe_models

    seen = []
    real = torch.nn.init.kaiming_uniform_

    def recording(tensor, *args, **kwargs):
        seen.append(tensor.is_meta)
        return real(tensor, *args, **kwargs)

    monkeypatch.setattr(torch.nn.init, "kaiming_uniform_", recording)
    rows = describe_models()
    alexnet = next(r for r in rows if r["name"] == "alexnet")
    assert alexnet["parameters"] == 57_044_810
    assert seen and all(seen)  # every layer was made on the meta device: nothing allocated


def test_linear_regression_progress_counts_samples_not_images(capsys, tmp_path):
    argv = ["train", "--recipe", "d2l-linreg", "--epochs", "1", "--device", "cpu"]
    assert main([*argv, "--runs-dir", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "samples/s)" in err and "img/s" not in err


def test_make_test_runs_the_whole_suite():
    makefile = (Path(__file__).parents[1] / "Makefile").read_text()
    test_rule = makefile.split("\ntest: setup\n", 1)[1].split("\n\n", 1)[0]
    assert "pytest" in test_rule and " -x" not in test_rule


def test_balanced_class_weights_raise_a_small_classs_recall(tmp_path):
    generator = torch.Generator().manual_seed(0)

    def blobs(n_big: int, n_small: int):  # two overlapping Gaussian classes, one far smaller
        x = torch.cat(
            [
                torch.randn(n_big, 2, generator=generator),
                torch.randn(n_small, 2, generator=generator) + 1.5,
            ]
        )
        return x, torch.cat([torch.zeros(n_big), torch.ones(n_small)]).long()

    train_x, train_y = blobs(950, 50)
    test_x, test_y = blobs(500, 500)
    data = Dataset("blobs", train_x, train_y, test_x, test_y, classes=["big", "small"])
    recall = {}
    for weights in ("none", "balanced"):
        Trainer(
            epochs=5,
            runs_dir=str(tmp_path),
            device="cpu",
            quiet=True,
            lr=0.05,
            class_weights=weights,
            run_name=weights,
        ).fit(build_model("mlp", data, hidden=[16]), data)
        from trainlab.report import make_report

        make_report(tmp_path / weights)  # the per-class table a user reads
        html = (tmp_path / weights / "report.html").read_text()
        predictions = np.load(tmp_path / weights / "predictions.npz")
        small = predictions["labels"] == 1
        recall[weights] = float((predictions["pred"][small] == 1).mean())
        assert f"{recall[weights]:.4f}" in html
    assert recall["balanced"] > recall["none"] + 0.2, recall
