"""The MNIST family's files in a data root: a root that holds people's own images instead is
refused with the way to train on them."""

from __future__ import annotations

import pytest
from PIL import Image

from trainlab.data import load_dataset
from trainlab.errors import DataError


def test_a_root_of_photos_says_how_to_train_on_them(tmp_path):
    for label in ("cat", "dog"):
        (tmp_path / "train" / label).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "train" / label / "a.png")
    with pytest.raises(DataError, match=f"train on it with --dataset {tmp_path}"):
        load_dataset("mnist", str(tmp_path))
    assert not (tmp_path / "MNIST").exists()  # nothing fetched into it
