"""The dataset registry: a name or a path to a loader, its options checked, a name twice
refused, and the kind of data an old checkpoint's record trained on."""

from __future__ import annotations

import pytest
import torch

from trainlab.data import Dataset, load_dataset
from trainlab.data import registry as reg
from trainlab.errors import ConfigError


@pytest.fixture
def clean_registry():
    """Registrations made by a test are undone after it."""
    before = dict(reg.DATASETS._entries), dict(reg.DATASETS._sources)
    yield
    reg.DATASETS._entries, reg.DATASETS._sources = before


def _register_digits():
    """scikit-learn's 8×8 digits as a registered dataset with one option."""

    @reg.register_dataset("sk-digits", kind="images", summary="scikit-learn's 8x8 digits")
    def sk_digits(ctx, train: int = 1500):
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x = torch.tensor(bunch.images * (255 / 16), dtype=torch.uint8).unsqueeze(1)
        y = torch.tensor(bunch.target)
        ctx.say(f"sk-digits: {len(x)} images")
        return Dataset("sk-digits", x[:train], y[:train], x[train:], y[train:],
                       [str(c) for c in range(10)])  # fmt: skip

    return sk_digits


@pytest.mark.usefixtures("clean_registry")
def test_a_registered_loader_loads_by_name_with_its_options_checked():
    _register_digits()
    data = load_dataset("sk-digits", train=1000)
    assert (len(data.train_x), len(data.test_x)) == (1000, 797)
    assert data.kind == "images" and data.options == {"train": 1000}
    assert "sk-digits" in reg.names()
    with pytest.raises(ConfigError, match="dataset 'sk-digits' has no option 'trian'.*'train'"):
        load_dataset("sk-digits", trian=10)


@pytest.mark.usefixtures("clean_registry")
def test_a_name_twice_is_refused_naming_both():
    _register_digits()
    with pytest.raises(ConfigError, match="dataset 'sk-digits' is registered twice"):
        _register_digits()
    with pytest.raises(ConfigError, match="dataset 'mnist' is registered twice"):
        reg.register_dataset("mnist", kind="digits")(lambda _ctx: None)


def test_an_unknown_name_lists_the_names_and_the_path_form():
    with pytest.raises(ConfigError, match="unknown dataset 'mnsit'") as caught:
        reg.get_dataset_spec("mnsit")
    assert "Did you mean 'mnist'?" in str(caught.value)
    assert "PATH/ (a folder of your own images)" in reg.names()
    assert "folder" not in reg.names()  # a path form is never a --dataset name itself


def test_a_folder_is_claimed_by_its_path(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    spec = reg.by_path(str(tmp_path))
    assert spec is not None and spec.kind == "images" and spec.val_split == 0.1
    assert reg.spec_name(str(tmp_path)) == spec.name and reg.spec_name("mnist") == "mnist"
    assert reg.by_path("mnist") is None  # a name is not a path


def test_old_records_get_their_kind_from_the_dataset_or_the_shape():
    assert reg.kind_of_record({"kind": "tabular", "name": "mnist"}) == "tabular"
    assert reg.kind_of_record({"name": "mnist"}) == "digits"  # a version-1 record
    assert reg.kind_of_record({"name": "gone", "input_shape": [10], "classes": []}) in (
        "regression",
    )
    assert reg.kind_of_record({"name": "gone", "input_shape": [3, 32, 32], "classes": ["a"]})
