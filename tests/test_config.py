import dataclasses

import pytest

from trainlab.cli import subcommand_parser
from trainlab.config import TrainConfig
from trainlab.errors import ConfigError
from trainlab.resolve import describe_changes, resolve_config


def test_unknown_keys_are_refused_by_name():
    with pytest.raises(ConfigError, match="unknown setting.*learning_rate"):
        TrainConfig.from_dict({"learning_rate": 0.1})


@pytest.mark.parametrize(
    "changes, needle",
    [
        ({"optimizer": "adagrad"}, "unknown optimizer 'adagrad'"),
        ({"schedule": "linear"}, "unknown schedule"),
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"val_split": 1.5}, "val_split must be in"),
        ({"lr": -1.0}, "lr must be positive"),
        ({"batch_size": "64"}, "batch_size must be int"),
        ({"early_stop": -1}, "early_stop must be 0 or more"),
        ({"monitor": "val_accuracy"}, "monitor must be a split and a metric"),
        ({"lr": float("nan")}, "lr must be a finite number"),
        ({"norm_std": [float("inf")], "norm_mean": [0.0]}, "norm_std must be a finite"),
    ],
)
def test_bad_values(changes, needle):
    with pytest.raises(ConfigError, match=needle):
        TrainConfig(**changes)


def test_roundtrip_through_dict():
    cfg = resolve_config({"model": "mlp", "hidden": [64], "lr": 1}).config
    assert cfg.model_options == {"hidden": [64]}
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_cli_flags_are_in_step_with_the_config():
    train = subcommand_parser("train")
    dests = {a.dest for a in train._actions}
    for f in dataclasses.fields(TrainConfig):
        if f.metadata.get("cli") is False:  # option tables: --model-arg / --data-arg
            continue
        assert f.name in dests, f"--{f.name} missing from `trainlab train`"
    assert {"model_arg", "data_arg", "hidden", "widths", "dropout", "samples"} <= dests
    help_text = " ".join(train.format_help().split())
    assert "(default: cnn)" in help_text and "(default: onecycle)" in help_text
    # AlexNet's dropout, from the model's own signature (EfficientNet has one too)
    assert (
        "(default: efficientnet-lite0 0.2, efficientnet-lite1 0.2, efficientnet-lite2 0.3, "
        "resnet-small 0.0, alexnet 0.3)"
    ) in help_text
    for action in train._actions:  # one default per flag, said once
        assert (action.help or "").count("(default:") <= 1, action.help
    assert "(default: None)" not in help_text and "(default: )" not in help_text


# --- one resolution: defaults < recipe < saved run < given ---------------------------------


def test_defaults_then_given():
    resolved = resolve_config({"epochs": 3, "lr": 0.05})
    assert resolved.config == TrainConfig(epochs=3, lr=0.05)
    assert resolved.changed == {}


def test_recipe_under_given_flags():
    cfg = resolve_config({"recipe": "seed-mlp", "epochs": 2}).config
    assert (cfg.model, cfg.optimizer, cfg.norm_mean, cfg.epochs) == ("mlp", "adam", [0.5], 2)
    assert cfg.recipe == "seed-mlp"


def test_saved_run_under_given_flags_and_changes_are_listed():
    saved = resolve_config(
        {"model": "mlp", "hidden": [32], "epochs": 2, "lr": 0.05, "log_every": 0}
    ).config.to_dict()
    resolved = resolve_config({"epochs": 4, "log_every": 10, "lr": 0.05}, saved=saved)
    assert resolved.config == TrainConfig.from_dict({**saved, "epochs": 4, "log_every": 10})
    assert resolved.changed == {"epochs": (2, 4), "log_every": (0, 10)}  # lr is unchanged
    assert describe_changes(resolved.changed) == (
        "resume: changed --epochs 2 -> 4, --log-every 0 -> 10"
    )


def test_saved_run_beats_defaults_and_recipe():
    saved = TrainConfig(model="mlp", lr=0.3, recipe="seed-mlp").to_dict()
    assert resolve_config({}, saved=saved).config.lr == 0.3
    assert resolve_config({"recipe": "seed-mlp"}, saved=saved).config.lr == 0.3
    with pytest.raises(ConfigError, match="recipe 'd2l-lenet' differs"):
        resolve_config({"recipe": "d2l-lenet"}, saved=saved)


@pytest.mark.parametrize(
    "given, needle",
    [
        ({"model": "cnn"}, "--model cnn"),
        ({"dataset": "kmnist"}, "--dataset kmnist"),
        ({"hidden": [64]}, "--hidden 64"),
        ({"subset": 100}, "--subset 100"),
    ],
)
def test_a_resume_cannot_change_the_model_or_data(given, needle):
    saved = resolve_config({"model": "mlp", "hidden": [32]}).config.to_dict()
    with pytest.raises(ConfigError, match=f"cannot resume with {needle}"):
        resolve_config(given, saved=saved)


def test_an_option_of_another_model_or_dataset_is_refused_by_name():
    saved = TrainConfig(model="mlp").to_dict()
    with pytest.raises(ConfigError, match="features is an option of dataset random, not of "):
        resolve_config({"features": 3}, saved=saved)
    with pytest.raises(ConfigError, match="hidden is an option of model mlp, mlp-regressor, not"):
        resolve_config({"hidden": [8]})


def test_a_config_file_sits_between_the_recipe_and_the_flags(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text('recipe = "seed-mlp"\nlr = 0.05\nhidden = [32]\n')
    cfg = resolve_config({"epochs": 2}, config_file=path).config
    assert (cfg.optimizer, cfg.lr, cfg.epochs, cfg.model_options["hidden"]) == (
        "adam",
        0.05,
        2,
        [32],
    )
    assert cfg.model_options["log_softmax"] is True  # the recipe's, merged under the file's
    with pytest.raises(ConfigError, match="no such file"):
        resolve_config({}, config_file=tmp_path / "missing.toml")
