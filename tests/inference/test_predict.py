"""trainlab predict on people's kind of images, with the default 2-epoch model.

The images are made here from real data: scikit-learn's 8×8 digits, upscaled and written as
dark-on-light PNGs away from the centre; and printed digits rendered in Debian's DejaVu fonts.
A naive resize of the same files is scored beside, to show the preprocessing is what matters.
"""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from helpers import run_cli, run_here
from trainlab.data.images import naive_resize, read_image
from trainlab.inference import Predictor, predict

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


def _ensure_fonts() -> list[Path]:
    if not FONT_DIR.is_dir() and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "fonts-dejavu-core"],
            capture_output=True,
            check=False,
        )
    return sorted(FONT_DIR.glob("DejaVu*.ttf")) if FONT_DIR.is_dir() else []


def naive_accuracy(predictor: Predictor, files: list[Path], labels: list[int]) -> float:
    images = np.stack([naive_resize(read_image(f)) for f in files])
    return float((predictor.run(images).argmax(1) == np.array(labels)).mean())


@pytest.fixture(scope="module")
def sklearn_digit_files(tmp_path_factory):
    from sklearn.datasets import load_digits

    folder = tmp_path_factory.mktemp("sklearn-digits")
    digits = load_digits()
    rng = np.random.default_rng(0)
    labels = {}
    for i, (pixels, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        ink = Image.fromarray((pixels / 16 * 255).astype(np.uint8)).resize((64, 64), Image.BILINEAR)
        canvas = Image.new("L", (128, 112), 255)  # white paper, the digit off-centre
        canvas.paste(Image.fromarray(255 - np.asarray(ink)), tuple(rng.integers(0, 48, 2)))
        name = f"{i:04d}.png"
        canvas.save(folder / name)
        labels[name] = int(label)
    return folder, labels


def test_scikit_learn_digits_in_a_folder(default_run, sklearn_digit_files):
    folder, labels = sklearn_digit_files
    proc = run_here("predict", str(default_run), str(folder), "--json")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)["predictions"]
    assert len(results) == 1797
    accuracy = np.mean([r["label"] == str(labels[Path(r["source"]).name]) for r in results])
    naive = naive_accuracy(
        Predictor(default_run),
        [folder / n for n in sorted(labels)],
        [labels[n] for n in sorted(labels)],
    )
    print(f"scikit-learn digits: MNIST-style {accuracy:.1%}, naive resize {naive:.1%}")
    assert accuracy >= 0.83
    assert naive < accuracy - 0.2


@pytest.fixture(scope="module")
def printed_digit_files(tmp_path_factory):
    fonts = _ensure_fonts()
    if not fonts:
        pytest.skip("Debian's fonts-dejavu-core is not installed and could not be installed")
    folder = tmp_path_factory.mktemp("printed")
    rng = np.random.default_rng(1)
    files, labels = [], []
    for i in range(600):
        digit, font = i % 10, fonts[i // 10 % len(fonts)]
        size = int(rng.integers(24, 120))
        face = ImageFont.truetype(str(font), size)
        w, h = int(size * rng.uniform(1.2, 3)), int(size * rng.uniform(1.4, 3))
        transparent = i % 5 == 0
        image = Image.new(
            "RGBA" if transparent else "L", (w, h), (0, 0, 0, 0) if transparent else 250
        )
        left, top, right, bottom = face.getbbox(str(digit))
        x = int(rng.integers(0, max(1, w - (right - left)))) - left
        y = int(rng.integers(0, max(1, h - (bottom - top)))) - top
        ImageDraw.Draw(image).text(
            (x, y), str(digit), font=face, fill=(20, 20, 20, 255) if transparent else 20
        )
        path = folder / f"{i:03d}.png"
        image.save(path)
        files.append(path)
        labels.append(digit)
    return files, labels


def test_printed_digits_in_dejavu_fonts(default_run, printed_digit_files):
    files, labels = printed_digit_files
    results = predict(default_run, [str(f) for f in files])
    accuracy = np.mean([r.index == y for r, y in zip(results, labels, strict=True)])
    naive = naive_accuracy(Predictor(default_run), files, labels)
    print(f"printed digits ({len(files)}): MNIST-style {accuracy:.1%}, naive resize {naive:.1%}")
    assert accuracy >= 0.97
    assert naive < 0.6


def test_one_bad_file_in_a_hundred(default_run, sklearn_digit_files, tmp_path):
    folder, labels = sklearn_digit_files
    for name in sorted(labels)[:99]:
        shutil.copy(folder / name, tmp_path / name)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    proc = run_here("predict", str(default_run), str(tmp_path), "--preview", str(tmp_path / "seen"))
    assert proc.returncode == 1
    assert proc.stdout.count(".png") == 99  # one table row per good file
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.png" in errors[0] and "Traceback" not in proc.stderr
    assert "1 of 100 input(s) failed" in proc.stderr
    previews = sorted((tmp_path / "seen").glob("*.png"))
    assert len(previews) == 99
    assert Image.open(previews[0]).size == (28, 28)


def test_missing_paths_and_empty_folders(default_run, tmp_path):
    (tmp_path / "empty").mkdir()
    proc = run_cli(
        "predict", str(default_run), str(tmp_path / "nope.png"), str(tmp_path / "empty"), "x*.png"
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "nope.png: no such file or folder" in proc.stderr
    assert "empty: no images" in proc.stderr and "x*.png: no file matches" in proc.stderr


def test_python_api_takes_every_kind_of_input(default_run, mnist):
    image = mnist.test_x[0, 0]
    label = str(int(mnist.test_y[0]))
    inputs = [
        image,  # uint8 tensor
        image.numpy(),  # numpy array
        Image.fromarray(image.numpy()),  # PIL image
    ]
    results = predict(default_run, inputs)
    assert [r.label for r in results] == [label] * 3
    assert all(r.preview.shape == (28, 28) and len(r.top) == 3 for r in results)
    single = predict(default_run, image)
    assert len(single) == 1 and single[0].probability == pytest.approx(results[0].probability)


def test_a_regression_checkpoint_is_not_a_classifier(tmp_path):
    from trainlab.config import TrainConfig
    from trainlab.errors import CheckpointError
    from trainlab.workflow import train

    cfg = TrainConfig(
        dataset="linear", model="linreg", epochs=1, runs_dir=str(tmp_path), device="cpu"
    )
    result = train(cfg)
    with pytest.raises(CheckpointError, match="not a classifier"):
        Predictor(result.run_dir)
    proc = run_here("predict", str(result.run_dir), str(tmp_path))
    assert proc.returncode != 0 and "not a classifier" in proc.stderr


def test_the_checkpoints_normalisation_is_used(default_run, mnist, tmp_path):
    from trainlab.engine.checkpoint import load_checkpoint, save_checkpoint

    payload = load_checkpoint(default_run / "best.pt")
    payload["data"]["transform"].update(mean=[0.5], std=[0.5])
    payload.pop("path")
    save_checkpoint(tmp_path / "half.pt", payload)
    images = mnist.test_x[:64, 0].numpy()
    ours = Predictor(default_run / "best.pt", device="cpu")
    half = Predictor(tmp_path / "half.pt", device="cpu", amp="off")  # float32, as computed here
    assert half.transform.mean == [0.5] and half.transform.std == [0.5]
    with torch.inference_mode():
        x = torch.from_numpy(images).float().div(255).unsqueeze(1)
        expected = half.model((x - 0.5) / 0.5).softmax(1).numpy()
    assert np.abs(half.run(images) - expected).max() < 1e-5
    assert np.abs(half.run(images) - ours.run(images)).max() > 1e-3
