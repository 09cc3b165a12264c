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


def test_the_heat_maps_peak_falls_on_the_shape(tmp_path):
    train_x, train_y, _ = shapes(4000, seed=0)
    test_x, test_y, boxes = shapes(300, seed=1)
    data = Dataset("shapes", train_x, train_y, test_x, test_y, CLASSES)
    data.kind = "images"
    cfg = resolve_config(dict(epochs=6, runs_dir=str(tmp_path))).config
    torch.manual_seed(0)
    result = Trainer(cfg).fit(build_model(cfg.model, data), data)
    assert result.final["test_acc"] > 0.95
    model, ckpt = load_model(result.run_dir / "best.pt")
    transform = InputTransform.from_dict(ckpt["data"]["transform"])
    explainer = HeatMaps(model, transform, "cpu", test_x.shape[1:])
    assert explainer.method.startswith("grad-cam (layer ")
    images = [x.numpy() for x in test_x]
    maps = explainer.maps(images, test_y.tolist())  # at the image's size, as the overlay shows
    # the map is coarser than the image (12×12 for 48×48: a cell is 4×4 pixels), so its peak
    # is placed to half a cell: it falls on the shape within that of the shape's box
    half = test_x.shape[-1] / explainer.raw_maps(images[:1], [0]).shape[-1] / 2
    inside, strictly = [], []
    for heat, (top, left, bottom, right) in zip(maps, boxes, strict=True):
        row, col = divmod(int(heat.argmax()), heat.shape[1])
        strictly.append(top <= row <= bottom and left <= col <= right)
        inside.append(top - half <= row <= bottom + half and left - half <= col <= right + half)
    share = float(np.mean(inside))
    print(
        f"heat-map peak on the shape: {100 * share:.1f}% of {len(inside)} test images "
        f"({100 * np.mean(strictly):.1f}% inside the box to the pixel)"
    )
    assert share >= 0.90
    assert all(m.shape == (48, 48) and 0 <= m.min() <= m.max() <= 1 for m in maps)
