"""predict --reject: "none of these" for inputs unlike the training data (energy score over the
threshold set on the validation split)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import run_cli
from trainlab import Trainer, build_model
from trainlab.data import load_dataset
from trainlab.errors import CheckpointError
from trainlab.inference import Predictor
from trainlab.resolve import resolve_config

FASHION = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    if not FASHION.is_dir():
        pytest.skip("apt-get install dataset-fashion-mnist (.ci/run does)")
    root = tmp_path_factory.mktemp("fashion-root")
    return load_dataset("fashion-mnist", str(root), sources=("local", "system"))


@pytest.fixture(scope="module")
def digit_run(tmp_path_factory, mnist):
    cfg = resolve_config(dict(val_split=0.1, runs_dir=str(tmp_path_factory.mktemp("r")))).config
    torch.manual_seed(0)
    return Trainer(cfg).fit(build_model("cnn", mnist), mnist)


def test_clothes_are_none_of_these_and_digits_are_kept(digit_run, mnist, fashion):
    record = digit_run.extra["calibration"]
    assert record["reject_score"] == "energy" and record["reject_kept_on_val"] == 0.95
    predictor = Predictor(digit_run.run_dir)
    predictor.check_reject()
    predictor.reject = True

    def rejected(images):
        names = [str(i) for i in range(len(images))]
        return np.mean([r.rejected for r in predictor.predict(images, names=names)])

    clothes = rejected([x[0].numpy() for x in fashion.test_x[:2000]])
    # the 10,000 test digits, which the run never saw (other writers than its validation
    # split's): kept as the validation split was, 95%, within a point
    kept = 1 - rejected([x[0].numpy() for x in mnist.test_x])
    print(f"rejected {clothes:.2%} of Fashion-MNIST test images, kept {kept:.2%} of MNIST's")
    assert clothes >= 0.8 and kept >= 0.95 and abs(kept - 0.95) <= 0.01


def test_the_command_answers_none_of_these_with_the_score(digit_run, tmp_path, fashion):
    shoe = tmp_path / "shoe.png"
    Image.fromarray(fashion.test_x[0, 0].numpy()).save(shoe)  # an ankle boot
    done = run_cli("predict", str(digit_run.run_dir), str(shoe), "--reject", "--json")
    assert done.returncode == 0, done.stderr
    (answer,) = json.loads(done.stdout)["predictions"]
    assert answer["rejected"] is True and answer["answer"] == "none of these"
    assert answer["score"] > digit_run.extra["calibration"]["reject_threshold"]
    table = run_cli("predict", str(digit_run.run_dir), str(shoe), "--reject")
    assert "none of these (" in table.stdout and "the run's threshold" in table.stdout


def test_a_run_without_a_validation_split_has_no_threshold(tmp_path, mnist_small):
    cfg = resolve_config(dict(epochs=1, runs_dir=str(tmp_path))).config
    torch.manual_seed(0)
    result = Trainer(cfg).fit(build_model("cnn", mnist_small), mnist_small)
    with pytest.raises(CheckpointError, match="--reject needs the threshold .*--val-split 0.1"):
        Predictor(result.run_dir).check_reject()


def test_serve_answers_none_of_these_when_asked(digit_run, fashion, mnist):
    import asyncio
    import io

    import httpx

    from trainlab.serve.app import create_app

    def png(array):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        return buffer.getvalue()

    async def ask(app, blob, query=""):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:
            return await client.post(
                "/api/predict" + query, content=blob, headers={"Content-Type": "image/png"}
            )

    app = create_app(Predictor(digit_run.run_dir, device="cpu"))
    boot, seven = png(fashion.test_x[0, 0].numpy()), png(mnist.test_x[0, 0].numpy())
    plain = asyncio.run(ask(app, boot)).json()
    assert plain["score"] is None and plain["rejected"] is None  # not asked: as before
    asked = asyncio.run(ask(app, boot, "?reject=1"))
    assert asked.status_code == 200 and asked.json()["rejected"] is True
    kept = asyncio.run(ask(app, seven, "?reject=1")).json()
    assert kept["rejected"] is False and kept["label"] == "7"
    # trainlab serve --reject: every request is answered so, without asking
    from trainlab.serve import _predictor

    always = create_app(_predictor(digit_run.run_dir, "cpu", 10**8, False, None, True))
    assert asyncio.run(ask(always, boot)).json()["rejected"] is True


def test_none_of_these_can_be_the_runs_default(digit_run, tmp_path, fashion):
    """`trainlab calibrate RUN --reject-default on`: predict and serve answer "none of these"
    without being asked; --no-reject still turns it off."""
    from trainlab.serve import _predictor
    from trainlab.workflow import calibrate_checkpoint

    shoe = tmp_path / "shoe.png"
    Image.fromarray(fashion.test_x[0, 0].numpy()).save(shoe)  # an ankle boot
    record = calibrate_checkpoint(digit_run.run_dir, device="cpu", reject_default=True)
    try:
        assert record["reject_default"] is True
        done = run_cli("predict", str(digit_run.run_dir), str(shoe), "--json")
        (answer,) = json.loads(done.stdout)["predictions"]
        assert answer["rejected"] is True and answer["answer"] == "none of these"
        off = run_cli("predict", str(digit_run.run_dir), str(shoe), "--json", "--no-reject")
        (answer,) = json.loads(off.stdout)["predictions"]
        assert answer.get("rejected") is None and answer["label"] != "none of these"
        assert _predictor(digit_run.run_dir, "cpu", 10**8, False, None, None).reject is True
    finally:
        calibrate_checkpoint(digit_run.run_dir, device="cpu", reject_default=False)
    assert _predictor(digit_run.run_dir, "cpu", 10**8, False, None, None).reject is False
