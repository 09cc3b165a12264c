"""EfficientNet-Lite0, Lite1 and Lite2 have the layout of their published weights (module names,
shapes, parameter counts) without fetching them: each state dict's layout is pinned by a digest
of its names and shapes, read once from the pinned weight file; where that file is in torch's
hub cache, the digest is computed from it again."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from trainlab.models import build_model, get_spec, parameter_count
from trainlab.models.pretrained import WHEELS
from trainlab.wheels import sha256_of

# name -> (parameters with ImageNet's 1,000-class head, digest of "name:shape" lines), as read
# from each wheel's .pth (WHEELS pins the file).
LAYOUTS = {
    "efficientnet-lite0": (
        4_652_008,
        "346e6dbde268f1d60f1b48d99a1f9617a006b931d35ca977cc1f3cc86395b1b4",
    ),
    "efficientnet-lite1": (
        5_416_680,
        "d0b6f489e5692ca59c2804db335b69a2fee60fa1ecf27f4d49ff3822b9bcc642",
    ),
    "efficientnet-lite2": (
        6_092_072,
        "c45fc29e8e1842f211c71e8c76a98f2b18fcc24f80dbcdbb7e8bdc45589189db",
    ),
}


def layout_digest(state: dict[str, torch.Tensor]) -> str:
    text = "".join(f"{name}:{tuple(tensor.shape)}\n" for name, tensor in state.items())
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_each_network_has_its_published_weights_layout(name):
    weights, (parameters, digest) = WHEELS[name], LAYOUTS[name]
    with torch.device("meta"):
        model = build_model(name, input_shape=(3, *get_spec(name).size), outputs=1000)
    assert parameter_count(model) == parameters
    assert round(parameters / 1e6, 1) == weights.millions  # the count published with them
    assert layout_digest(model.state_dict()) == digest
    cached = Path(torch.hub.get_dir()) / "checkpoints" / weights.filename
    if cached.is_file() and sha256_of(cached) == weights.file_sha256:
        state = torch.load(cached, map_location="cpu", weights_only=True)
        assert layout_digest(state) == digest


@pytest.mark.parametrize(
    ("name", "side", "dropout"),
    [
        ("efficientnet-lite0", 224, 0.2),
        ("efficientnet-lite1", 240, 0.2),
        ("efficientnet-lite2", 260, 0.3),
    ],
)
def test_each_network_states_its_published_input_and_dropout(name, side, dropout):
    spec = get_spec(name)
    assert spec.size == (side, side) and spec.channels == 3
    assert spec.mean == spec.std == (0.5, 0.5, 0.5)
    assert spec.options["dropout"].default == dropout
    assert spec.size_for({"resolution": 128}) == (128, 128)  # --resolution 128: cheaper inputs
    model = build_model(name, input_shape=(3, 64, 64), outputs=10, resolution=64)
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 10)
