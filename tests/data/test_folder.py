"""A folder of your own images, made from real Fashion-MNIST (Debian's package): RGB with a tint,
random sizes, JPEG/PNG/WebP in both cases of extension, class names with spaces, and the
strays people's folders hold. It trains, eval and predict agree image by image, and the decoded
images are cached."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trainlab.cli import main

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
pytestmark = pytest.mark.skipif(
    not DEBIAN.is_dir(), reason="apt-get install dataset-fashion-mnist (.ci/run does)"
)
EXTENSIONS = (".jpg", ".PNG", ".webp", ".JPEG", ".png")


def make_folder(root: Path, data_root: Path, train: int, test: int) -> Path:
    from trainlab.data import load_dataset

    data = load_dataset("fashion-mnist", data_root, sources=("local", "system"))
    data = data.subset(train, test)
    rng = np.random.default_rng(0)
    names = [c.replace("/", " or ") for c in data.classes]  # "T-shirt/top": a folder name
    for split, xs, ys in (
        ("train", data.train_x, data.train_y),
        ("test", data.test_x, data.test_y),
    ):
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            ink = x[0].numpy().astype(np.float32)[..., None] / 255
            tint = np.array([1.0, 0.7, 0.4]) if int(y) % 2 else np.array([0.5, 0.8, 1.0])
            rgb = (255 - 255 * ink * tint).astype(np.uint8)  # coloured clothes on white
            side = int(rng.integers(28, 97))
            picture = Image.fromarray(rgb).resize((side, side), Image.BILINEAR)
            folder = root / split / names[int(y)]
            folder.mkdir(parents=True, exist_ok=True)
            picture.save(folder / f"img{i:05d}{EXTENSIONS[i % 5]}", quality=95)
    first = root / "train" / names[0]
    (first / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (first / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (root / "train" / names[1] / "notes.txt").write_text("labels checked by hand\n")
    (root / "train" / names[2] / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    data_root = tmp_path_factory.mktemp("fm-root")
    return make_folder(tmp_path_factory.mktemp("photos") / "clothes", data_root, 1000, 250)


@pytest.fixture(scope="module")
def folder_run(folder, tmp_path_factory):
    runs = tmp_path_factory.mktemp("folder-runs")
    args = ["train", "--dataset", str(folder), "--image-size", "28", "--epochs", "3"]
    args += ["--device", "cpu", "--runs-dir", str(runs), "--run-name", "f", "--json"]
    assert main(args) == 0
    return runs / "f"


def test_it_trains_and_reports_the_strays(folder, tmp_path, capsys):
    cache = tmp_path / "cache"
    cache.mkdir()
    args = ["train", "--dataset", str(folder), "--image-size", "28", "--epochs", "1"]
    args += ["--device", "cpu", "--runs-dir", str(tmp_path), "--data-dir", str(cache)]
    assert main([*args, "--json"]) == 0
    captured = capsys.readouterr()
    assert "10 classes, 1251 images, 3×28×28" in captured.err
    assert "3 non-image or hidden file(s) skipped; 1 unreadable image(s) left out" in captured.err
    assert (  # the files are named, each with why it was left out
        " (--strict makes this an error)\n"
        "  train/T-shirt or top/.DS_Store: hidden\n"
        "  train/T-shirt or top/Thumbs.db: not an image (.db)\n"
        "  train/Trouser/notes.txt: not an image (.txt)\n"
        "  train/Pullover/cut.jpg: unreadable: "
    ) in captured.err
    assert "decoded 1251 of 1251 images" in captured.err
    summary = json.loads(captured.out)
    assert summary["final"]["test_n"] == 250 and summary["final"]["test_acc"] > 0.5
    # the whole list stays with the run, one file per line with why
    listed = (Path(summary["run_dir"]) / "skipped_files.txt").read_text().splitlines()
    assert len(listed) == 4 and listed[0].endswith("/train/T-shirt or top/.DS_Store\thidden")
    # the second run decodes nothing but the unreadable file again; a touched file is noticed
    assert main(args) == 0  # (--quiet would keep this line back: it prints only the summary)
    assert "decoded 1 of 1251 images (1250 from the cache)" in capsys.readouterr().err
    picture = next((folder / "train" / "Bag").iterdir())
    os.utime(picture, ns=(picture.stat().st_atime_ns, picture.stat().st_mtime_ns + 10**9))
    assert main(args) == 0  # (--quiet would keep this line back: it prints only the summary)
    assert "decoded 2 of 1251 images (1249 from the cache)" in capsys.readouterr().err
    assert main([*args, "--strict"]) == 2
    assert "unreadable" in capsys.readouterr().err


def _copy_classes(folder: Path, root: Path, **splits: list[str]) -> Path:
    import shutil

    for split, classes in splits.items():
        for name in classes:
            shutil.copytree(folder / ("train" if split == "val" else split) / name,
                            root / split / name)  # fmt: skip
    return root


def test_splits_with_different_classes_are_an_error_naming_both_lists(folder, tmp_path, capsys):
    """The newcomer's typo: Sandal only in test/, Dress only in train/. It used to say "empty
    class folder(s) left out: Sandal" (test/Sandal holds 25 images) and nothing of Dress."""
    mixed = _copy_classes(
        folder, tmp_path / "m", train=["Bag", "Coat", "Dress"], test=["Bag", "Coat", "Sandal"]
    )
    args = ["train", "--dataset", str(mixed), "--epochs", "1", "--device", "cpu"]
    assert main([*args, "--runs-dir", str(tmp_path / "runs")]) == 2  # no --strict needed
    err = capsys.readouterr().err
    assert (
        f"{mixed}: the splits hold different classes: only in train/: Dress; only in test/: "
        "Sandal. A class missing from a split is learnt and never tested, or tested and never "
        "learnt (a misspelt folder name does this). Rename the folder so the names match, add "
        "images of the class to the split that lacks them, or remove the class's folder."
    ) in err
    assert "empty" not in err and not (tmp_path / "runs").exists()


def test_with_a_val_folder_each_list_says_where_its_classes_are_missing(folder, tmp_path):
    from trainlab.data import load_dataset
    from trainlab.errors import DataError

    three = _copy_classes(
        folder,
        tmp_path / "v",
        train=["Bag", "Coat", "Dress"],
        val=["Bag", "Coat"],
        test=["Bag", "Coat", "Dress", "Sandal"],
    )
    with pytest.raises(DataError) as refused:
        load_dataset(str(three))
    assert (
        "the splits hold different classes: only in train/ and test/: Dress (none in val/); "
        "only in test/: Sandal (none in train/ or val/)."
    ) in str(refused.value)


def test_an_empty_class_folder_stays_a_note_and_every_stray_is_listed(folder, tmp_path, caplog):
    from trainlab.data import load_dataset

    root = _copy_classes(folder, tmp_path / "e", train=["Bag", "Coat"], test=["Bag", "Coat"])
    (root / "train" / "Sandal").mkdir()  # no images in any split: left out, as before
    (root / "test" / "Sandal").mkdir()
    strays = [f"notes{i}.txt" for i in range(7)]
    for name in strays:
        (root / "train" / "Bag" / name).write_text("x")
    (root / "test" / "README.md").write_text("x")
    caplog.set_level(logging.INFO, logger="trainlab")
    data = load_dataset(str(root), image_size=[16])
    said = [record.getMessage() for record in caplog.records]
    assert data.classes == ["Bag", "Coat"]
    note = next(line for line in said if line.startswith("note: "))
    assert note.splitlines() == [
        "note: 8 non-image or hidden file(s) skipped; empty class folder(s) left out: Sandal "
        "(--strict makes this an error)",
        *[f"  train/Bag/{name}: not an image (.txt)" for name in strays[:5]],
        "  … and 3 more",
    ]
    assert data.info["skipped"] == [
        *[(str(root / "train" / "Bag" / name), "not an image (.txt)") for name in strays],
        (str(root / "test" / "README.md"), "not in a class folder"),
    ]


def test_the_class_names_are_the_folder_names(folder_run):
    from trainlab.engine.checkpoint import load_checkpoint

    classes = load_checkpoint(folder_run)["data"]["classes"]
    assert "T-shirt or top" in classes and "Ankle boot" in classes and len(classes) == 10


def test_predict_on_the_test_files_agrees_with_eval_on_every_image(folder_run, folder, capsys):
    from trainlab.workflow import evaluate_checkpoint

    # both in the run's recorded precision (bf16 where --amp auto chose it, float32 elsewhere)
    _, (outputs, _) = evaluate_checkpoint(folder_run, device="cpu", return_predictions=True)
    from trainlab.data.folder import scan

    layout = scan(folder)
    files = [str(f) for f, _ in layout.files["test"]]
    assert main(["predict", str(folder_run), *files, "--json", "--min-confidence", "0"]) == 0
    predicted = json.loads(capsys.readouterr().out)["predictions"]
    # the bound tests/inference/test_agreement.py states: the same label except where eval's
    # own top two are within 1e-2 (a bf16 batch may be summed in another order)
    top2 = outputs.softmax(1).topk(2, dim=1).values
    near_tie = ((top2[:, 0] - top2[:, 1]) < 1e-2).tolist()
    labels = outputs.argmax(1).tolist()
    differ = [i for i, p in enumerate(predicted) if p["index"] != labels[i] and not near_tie[i]]
    assert differ == [], differ


def test_predicting_a_10000_pixel_square_png_says_only_trainlabs_refusal(folder_run, tmp_path):
    """Pillow warns (DecompressionBombWarning) from 89 M pixels on; predict shows only its own
    refusal (a real process: its whole stderr is what a person sees)."""
    from test_images import png_header_only

    from helpers import run_cli

    big = tmp_path / "big.png"
    big.write_bytes(png_header_only(10_000, 10_000))
    proc = run_cli("predict", str(folder_run), str(big))
    assert proc.returncode == 1, proc.stderr
    assert "Warning" not in proc.stderr and "Image size" not in proc.stderr, proc.stderr
    assert (
        f"{big}: 10000×10000 pixels is more than the limit of 16,000,000 (refused before "
        "decoding" in proc.stderr
    )


def test_the_exported_model_agrees(folder_run, capsys):
    assert main(["export", str(folder_run), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    parity = info["parity"]
    assert parity["inputs"] == "test images" and parity["same_argmax"]
    meta = info["metadata"]
    assert json.loads(meta["classes"])[-1] == "Trouser" and "3×28×28" in meta["input"]
    assert json.loads(meta["resize_policy"]) == {
        "size": [28, 28],
        "channels": 3,
        "mode": "crop",
        "crop": 1.0,
    }
    assert parity["max_abs_logit_diff"] <= 1e-4


def test_the_server_names_the_class_of_a_posted_jpeg(folder_run, folder):
    import io

    import httpx

    from serve.serving import Server
    from trainlab.inference import Predictor

    source = next((folder / "test" / "Trouser").iterdir())
    buffer = io.BytesIO()
    Image.open(source).convert("RGB").save(buffer, format="JPEG", quality=95)
    expected = Predictor(folder_run, device="cpu").predict([buffer.getvalue()])[0].label
    server = Server(folder_run)
    try:
        answer = httpx.post(
            server.url + "/api/predict", files={"file": ("photo.jpg", buffer.getvalue())}
        ).json()
    finally:
        server.stop()
    assert answer["label"] == expected and expected in Predictor(folder_run).classes


@pytest.mark.slow
def test_it_trains_as_well_as_fashion_mnist_itself(folder, tmp_path, capsys):
    """Within 2 points of `--dataset fashion-mnist` on the same images and settings (the mean
    of three seeds: one run's spread on 250 test images is about as large)."""
    accuracies = {"folder": [], "fashion-mnist": []}
    for seed in ("1", "2", "3"):
        common = ["--epochs", "3", "--device", "cpu", "--runs-dir", str(tmp_path), "--json"]
        common += ["--seed", seed, "--data-seed", "0"]
        # the same 1,000 training images: no validation split held out of the folder's
        folder_args = ["--dataset", str(folder), "--image-size", "28", "--val-split", "0"]
        assert main(["train", *folder_args, *common]) == 0
        accuracies["folder"].append(json.loads(capsys.readouterr().out)["final"]["test_acc"])
        argv = ["train", "--dataset", "fashion-mnist", "--subset", "1000", "--test-subset", "250"]
        (tmp_path / "fm").mkdir(exist_ok=True)
        assert main([*argv, "--data-dir", str(tmp_path / "fm"), *common]) == 0
        accuracies["fashion-mnist"].append(json.loads(capsys.readouterr().out)["final"]["test_acc"])
    gap = np.mean(accuracies["fashion-mnist"]) - np.mean(accuracies["folder"])
    assert gap <= 0.02, accuracies


def test_a_browser_uploads_a_photo_on_the_page(folder_run, folder, tmp_path):
    from helpers import ensure_chromium, launch_chromium
    from serve.serving import Server

    chromium = ensure_chromium()
    if not chromium:
        pytest.skip("Debian's chromium is not installed and could not be installed here")
    from playwright.sync_api import sync_playwright

    photo = tmp_path / "coat.jpg"
    Image.open(next((folder / "test" / "Coat").iterdir())).convert("RGB").save(photo)
    server = Server(folder_run)
    problems: list[str] = []
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p, chromium)
            page = browser.new_page(viewport={"width": 420, "height": 800})  # a phone's width
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(server.url + "/")
            assert page.title() == "trainlab: Classify a photo"  # the images kind's Page title
            assert page.get_attribute("#camera", "capture") == "environment"
            assert "upload a photo" in page.inner_text("#prob")
            page.set_input_files("#upload", str(photo))
            page.wait_for_function("document.getElementById('label').textContent !== '–'")
            classes = json.loads(httpx_get(server.url + "/api/model"))["classes"]
            assert page.inner_text("#label") in classes
            assert page.evaluate("document.getElementById('preview').naturalWidth") == 28
            browser.close()
    finally:
        server.stop()
    assert problems == []


def httpx_get(url: str) -> str:
    import httpx

    return httpx.get(url).text


def test_a_folders_size_channels_resize_and_split(folder):
    from trainlab.data import load_dataset

    train_only = folder / "train"  # class folders straight under the path, no test/
    data = load_dataset(
        str(train_only), image_size=[20, 24], channels=1, resize="pad", test_split=0.3, seed=5
    )
    assert data.input_shape == (1, 20, 24) and data.info["preprocess"]["mode"] == "pad"
    assert len(data.test_y) == 300 and len(data.train_y) == 700  # the 1,000 readable images
    again = load_dataset(
        str(train_only), image_size=[20, 24], channels=1, resize="pad", test_split=0.3, seed=5
    )
    assert torch.equal(again.test_x, data.test_x)  # the same seed cuts the same test split
    # padding keeps the whole picture: its border rows are the black padding
    wide = load_dataset(str(train_only), image_size=[20, 40], resize="pad", channels=1)
    assert int(wide.train_x[:, :, :, :5].max()) == 0
    crop = load_dataset(str(train_only), image_size=[20, 40], channels=1)
    assert int(crop.train_x[:, :, :, :5].max()) > 0


def test_past_the_memory_budget_it_trains_from_a_mapped_file_to_the_same_weights(
    folder, tmp_path, capsys
):
    import torch

    from trainlab.engine.checkpoint import load_checkpoint

    weights = {}
    for budget in ("0", "1"):  # 0: the default (half the memory); 1 MB: far too small
        args = ["train", "--dataset", str(folder), "--image-size", "28", "--epochs", "1"]
        args += ["--device", "cpu", "--amp", "off", "--runs-dir", str(tmp_path)]
        args += ["--run-name", budget, "--memory-budget-mb", budget, "--data-dir", str(tmp_path)]
        assert main(args) == 0
        err = capsys.readouterr().err
        assert ("kept in a memory-mapped cache file" in err) == (budget == "1")
        weights[budget] = load_checkpoint(tmp_path / budget / "last.pt")["state_dict"]
    assert all(torch.equal(weights["0"][k], weights["1"][k]) for k in weights["0"])
    assert list((tmp_path / "folder-cache").glob("*.ordered.u8"))  # the rows it trained from


def test_a_folder_model_exports_to_int8_within_half_a_point(folder_run, tmp_path):
    code = main(["export", str(folder_run), "--format", "onnx,onnx-int8", "-o", str(tmp_path)])
    table = json.loads((folder_run / "exports.json").read_text())
    int8 = table["targets"]["onnx-int8"]
    assert table["reference"]["test_inputs"] == 250
    assert code == 0 and int8["status"] == "kept" and int8["drop_points"] <= 0.5, int8
    assert (tmp_path / "model.int8.onnx").is_file()
