"""A ``torch.export`` program (.pt2): the same graph for PyTorch users, loaded with
``torch.export.load`` without trainlab or the model's code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainlab.inference.export import _write_pt2
from trainlab.inference.targets.registry import Runner, Target


def build(context, path: Path) -> dict[str, Any]:
    _write_pt2(context.model, context.example, context.batch, path)
    return {}


def load(path: Path) -> Runner:
    module = torch.export.load(str(path)).module()

    def run(images: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            got = module(torch.from_numpy(images))
        return [t.numpy() for t in (got if isinstance(got, tuple | list) else [got])]

    return run


TARGET = Target(
    "pt2",
    ".pt2",
    build=build,
    load=load,
    needs="torch (the same major version; torch.export.load)",
    exact=True,
)
