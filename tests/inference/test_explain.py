"""predict --explain: where the model looked, drawn over the image, without touching the model."""

import json

import numpy as np
import torch
from PIL import Image
from tests.helpers import run_cli

from trainlab import Trainer, build_model
from trainlab.inference import Predictor
from trainlab.inference.explain import Explainer
from trainlab.resolve import resolve_config


def _digits(folder, mnist, n):
    folder.mkdir()
    for i in range(n):
        Image.fromarray(mnist.test_x[i, 0].numpy()).save(folder / f"{i:02d}.png")
    return sorted(folder.iterdir())


def test_explain_writes_an_overlay_per_image_and_leaves_the_answers_alone(
    tmp_path, default_run, mnist, mnist_root
):
    files = _digits(tmp_path / "digits", mnist, 6)
    env = {"TRAINLAB_DATA": str(mnist_root)}
    plain = run_cli("predict", str(default_run), *map(str, files), "--json", env=env)
    shown = run_cli(
        "predict", str(default_run), *map(str, files), "--json", "--explain",
        str(tmp_path / "maps"), env=env,
    )  # fmt: skip
    assert plain.returncode == 0 and shown.returncode == 0, shown.stderr
    assert "wrote 6 explanation(s) (grad-cam (layer " in shown.stderr
    before, after = json.loads(plain.stdout), json.loads(shown.stdout)
    for a, b in zip(before["predictions"], after["predictions"], strict=True):
        assert a["probabilities"] == b["probabilities"]  # the same model, the same answers
        heat = np.array(b["heat_map"])
        assert heat.ndim == 2 and heat.max() == 1.0 and heat.min() >= 0
    for f in files:
        overlay = Image.open(tmp_path / "maps" / f.name)
        assert overlay.mode == "RGB" and overlay.width >= 112  # coloured, big enough to see
        assert overlay.width % 28 == 0


def _cornered(images, seed):
    """Digits with a bright 6×6 patch in one of the four corners; the corner is the class."""
    g = torch.Generator().manual_seed(seed)
    corner = torch.randint(0, 4, (len(images),), generator=g)
    x = images.clone()
    for i, c in enumerate(corner.tolist()):
        top, left = (1 if c < 2 else 21), (1 if c % 2 == 0 else 21)
        x[i, 0, top : top + 6, left : left + 6] = 255
    return x, corner


def test_the_heat_finds_what_the_model_learned(tmp_path, mnist_small):
    """A model that learned a cue beside the digit (the background, in people's photos) is
    shown as such: its heat map peaks in the corner the cue is in, not on the digit."""
    from trainlab.data import Dataset

    train_x, train_y = _cornered(mnist_small.train_x, 0)
    test_x, test_y = _cornered(mnist_small.test_x[:100], 1)
    data = Dataset("corners", train_x, train_y, test_x, test_y, ["tl", "tr", "bl", "br"])
    data.kind = "images"
    cfg = resolve_config(dict(model="cnn", epochs=1, runs_dir=str(tmp_path))).config
    torch.manual_seed(0)
    result = Trainer(cfg).fit(build_model("cnn", data), data)
    assert result.final["test_acc"] > 0.95
    explainer = Explainer(Predictor(result.run_dir))
    maps = explainer.raw_maps([x.numpy() for x in test_x], test_y.tolist())
    found = 0
    for heat, corner in zip(maps, test_y.tolist(), strict=True):
        h, w = heat.shape
        row, col = divmod(int(heat.argmax()), w)
        found += (row < h // 2) == (corner < 2) and (col < w // 2) == (corner % 2 == 0)
    assert found >= 75  # of 100 (chance: 25): the hottest point is in the cue's quarter


def test_a_model_without_convolutions_is_explained_by_occlusion(tmp_path, mnist_small):
    cfg = resolve_config(dict(model="mlp", hidden=[64], epochs=1, runs_dir=str(tmp_path))).config
    torch.manual_seed(0)
    result = Trainer(cfg).fit(build_model("mlp", mnist_small, hidden=[64]), mnist_small)
    predictor = Predictor(result.run_dir)
    images = [mnist_small.test_x[i, 0].numpy() for i in range(4)]
    results = predictor.predict(images, names=["a", "b", "c", "d"])
    explainer = Explainer(predictor)
    assert explainer.method == "occlusion"
    maps = explainer.heat_maps(results)
    assert all(m.shape == (28, 28) and m.max() == 1.0 for m in maps)
    assert [r.label for r in results] == [r.label for r in predictor.predict(images)]
