"""Grad-CAM finds the object: on photos of one small coloured shape on textured noise, where
the shape is the class, the default model's heat map peaks on the shape."""

from __future__ import annotations

import numpy as np
import torch
from shapes import CLASSES, shapes

from trainlab import Trainer, build_model
from trainlab.data import Dataset
from trainlab.data.batches import InputTransform
from trainlab.engine.explain import HeatMaps
from trainlab.engine.loading import load_model
from trainlab.resolve import resolve_config


def _peaks_inside(model_name: str, tmp_path) -> tuple[float, float, str]:
    """Train ``model_name`` on the shapes; the share of test images whose heat-map peak is in
    the shape's box (to the pixel, and within half a cell of the map), and the method."""
    train_x, train_y, _ = shapes(4000, seed=0)
    test_x, test_y, boxes = shapes(300, seed=1)
    data = Dataset("shapes", train_x, train_y, test_x, test_y, CLASSES)
    data.kind = "images"
    cfg = resolve_config(dict(model=model_name, epochs=6, runs_dir=str(tmp_path))).config
    torch.manual_seed(0)
    result = Trainer(cfg).fit(build_model(cfg.model, data), data)
    assert result.final["test_acc"] > 0.95
    model, ckpt = load_model(result.run_dir / "best.pt")
    transform = InputTransform.from_dict(ckpt["data"]["transform"])
    explainer = HeatMaps(model, transform, "cpu", test_x.shape[1:])
    images = [x.numpy() for x in test_x]
    maps = explainer.maps(images, test_y.tolist())  # at the image's size, as the overlay shows
    assert all(m.shape == (48, 48) and 0 <= m.min() <= m.max() <= 1 for m in maps)
    half = test_x.shape[-1] / explainer.raw_maps(images[:1], [0]).shape[-1] / 2
    inside, near = [], []
    for heat, (top, left, bottom, right) in zip(maps, boxes, strict=True):
        row, col = divmod(int(heat.argmax()), heat.shape[1])
        inside.append(top <= row <= bottom and left <= col <= right)
        near.append(top - half <= row <= bottom + half and left - half <= col <= right + half)
    print(
        f"{model_name}: heat-map peak inside the shape's box on {100 * np.mean(inside):.1f}% "
        f"of {len(inside)} test images ({100 * np.mean(near):.1f}% within half a map cell), "
        f"{explainer.method}"
    )
    return float(np.mean(inside)), float(np.mean(near)), explainer.method


def test_the_heat_maps_peak_falls_inside_the_shape(tmp_path):
    """resnet-small, the network for small images: its last block's output (after the
    residual sum) is a 12×12 map whose peak falls inside the shape's box."""
    inside, _, method = _peaks_inside("resnet-small", tmp_path)
    assert method == "grad-cam (layer '5')"  # the last block, not its shortcut's convolution
    assert inside >= 0.90


def test_the_default_cnns_coarser_map_peaks_on_the_shape_within_a_cell(tmp_path):
    """The default cnn's last activation is pooled to 12×12 cells of 4 pixels, and it looks at
    the shapes' edges: its peak is on the shape to within half a cell."""
    _, near, method = _peaks_inside("cnn", tmp_path)
    assert method.startswith("grad-cam (layer ")
    assert near >= 0.90
