import json
import tomllib
from pathlib import Path

import pytest
import torch

from helpers import assert_clean_error, run_here
from trainlab.errors import ConfigError
from trainlab.recipes import RECIPES
from trainlab.resolve import recipe_config


@pytest.fixture
def env(writable_root, tmp_path):
    return {"TRAINLAB_DATA": str(writable_root), "TORCH_HOME": str(tmp_path / "torch")}


def test_recipe_fields_and_overrides():
    cfg = recipe_config("seed-mlp", {"epochs": 2})
    assert (cfg.model, cfg.model_options["log_softmax"], cfg.optimizer, cfg.lr, cfg.batch_size) == (
        "mlp",
        True,
        "adam",
        0.01,
        64,
    )
    assert cfg.norm_mean == [0.5] and cfg.epochs == 2 and cfg.recipe == "seed-mlp"
    with pytest.raises(ConfigError, match="unknown recipe 'seed-cnn'"):
        recipe_config("seed-cnn")


def test_a_recipe_names_its_dataset_whatever_the_data_root_holds(tmp_path, mnist_root):
    only_mnist = tmp_path / "root"
    (only_mnist / "MNIST").mkdir(parents=True)
    (only_mnist / "MNIST" / "raw").symlink_to((mnist_root / "MNIST" / "raw").resolve())
    for root in (only_mnist, tmp_path / "empty"):
        for name in ("d2l-softmax", "d2l-lenet"):
            assert recipe_config(name, {"data_dir": str(root)}).dataset == "fashion-mnist"
        assert recipe_config("seed-mlp", {"data_dir": str(root)}).dataset == "mnist"
    assert recipe_config("d2l-lenet", {"dataset": "mnist"}).dataset == "mnist"  # a flag wins


def test_recipes_are_listed():
    proc = run_here("recipes")
    assert proc.returncode == 0
    for name in RECIPES:
        assert f"trainlab train --recipe {name}" in proc.stdout


@pytest.mark.parametrize(
    "name, extra",
    [
        ("seed-mlp", ["--subset", "2000", "--test-subset", "500", "--epochs", "1"]),
        ("seed-basics", []),
        ("d2l-softmax", ["--subset", "2000", "--test-subset", "500", "--epochs", "2"]),
        ("d2l-lenet", ["--subset", "1000", "--test-subset", "200", "--epochs", "1"]),
        pytest.param(  # alexnet trains in make test through test_seed000 (cached weights)
            "seed-alexnet",
            [
                "--no-pretrained",
                "--subset",
                "64",
                "--test-subset",
                "64",
                "--epochs",
                "1",
                "--batch-size",
                "32",
                "--log-every",
                "1",
            ],
            marks=pytest.mark.slow,
        ),
    ],
)
def test_every_recipe_runs(tmp_path, env, name, extra):
    proc = run_here(
        "train", "--recipe", name, *extra, "--runs-dir", str(tmp_path), "--json", env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["status"] == "completed"
    recipe = RECIPES[name].settings
    config = tomllib.loads((Path(result["run_dir"]) / "config.toml").read_text())["config"]
    for key in ("optimizer", "lr", "schedule", "momentum", "weight_decay"):
        if key in recipe:  # the recipe's own settings are what ran
            assert config[key] == pytest.approx(recipe[key]), key
    n = result["final"]["test_n"]
    correct = result["final"]["test_acc"] * n
    assert correct == pytest.approx(round(correct), abs=1e-6)  # a count of images, not a mean
    if name == "seed-basics":
        assert result["sklearn_test_acc"] == pytest.approx(result["final"]["test_acc"])
    if name == "seed-alexnet":
        assert proc.stderr.count("batch ") == 2  # the recipe's --log-every 16, overridden to 1


def test_linreg_recipe_learns_w_and_b(tmp_path, env):
    proc = run_here("train", "--recipe", "d2l-linreg", "--runs-dir", str(tmp_path), env=env)
    assert proc.returncode == 0, proc.stderr
    rows = [
        json.loads(line)
        for line in next(tmp_path.iterdir()).joinpath("metrics.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 3 and proc.stderr.count("w error") == 3
    assert all(abs(e) < 0.01 for e in rows[-1]["w_error"]) and abs(rows[-1]["b_error"]) < 0.01


def test_alexnet_recipe_offline_error_says_what_to_do(tmp_path, env):
    proc = run_here(
        "train", "--recipe", "seed-alexnet", "--subset", "64", "--runs-dir", str(tmp_path), env=env
    )
    assert_clean_error(
        proc,
        "alexnet-owt-7be5be79.pth",
        str(tmp_path / "torch" / "hub" / "checkpoints"),
        "--no-pretrained",
        "--weights",
    )


def _cache_weights(torch_home, seed=1):
    from torchvision.models import alexnet

    path = torch_home / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    path.parent.mkdir(parents=True)
    torch.manual_seed(seed)
    state = alexnet(weights=None).state_dict()
    torch.save(state, path)
    return state


def test_cached_imagenet_weights_load_and_the_head_is_replaced(tmp_path, monkeypatch, mnist_small):
    from trainlab.config import TrainConfig
    from trainlab.workflow import build_configured_model

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    state = _cache_weights(tmp_path / "torch")
    model = build_configured_model(TrainConfig(model="alexnet", pretrained=True), mnist_small)
    assert torch.equal(model.features[0].weight, state["features.0.weight"])
    assert torch.equal(model.features[10].bias, state["features.10.bias"])
    assert model.classifier[-1].out_features == 10
    assert not torch.equal(model.classifier[1].weight, state["classifier.1.weight"])
    frozen = build_configured_model(
        TrainConfig(model="alexnet", pretrained=True, freeze_features=True),
        mnist_small,
    )
    assert not any(p.requires_grad for p in frozen.features.parameters())
    assert all(p.requires_grad for p in frozen.classifier.parameters())


def test_weights_flag_loads_a_local_file(tmp_path, env, mnist_small):
    from trainlab.config import TrainConfig
    from trainlab.workflow import build_configured_model

    state = _cache_weights(tmp_path / "elsewhere")
    local = tmp_path / "elsewhere" / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    model = build_configured_model(TrainConfig(model="alexnet", weights=str(local)), mnist_small)
    assert torch.equal(model.features[0].weight, state["features.0.weight"])
    torch.save({"something": torch.zeros(3)}, tmp_path / "unrelated.pt")
    proc = run_here(
        "train",
        "--model",
        "alexnet",
        "--weights",
        str(tmp_path / "unrelated.pt"),
        "--subset",
        "64",
        "--runs-dir",
        str(tmp_path / "runs"),
        env=env,
    )
    assert_clean_error(proc, "unrelated.pt", "do not fit")
