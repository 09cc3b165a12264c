import dataclasses

import pytest

from trainlab.cli import build_parser
from trainlab.config import TrainConfig
from trainlab.errors import ConfigError


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
        ({"hidden": [512, 0]}, "hidden sizes"),
    ],
)
def test_bad_values(changes, needle):
    with pytest.raises(ConfigError, match=needle):
        TrainConfig(**changes)


def test_roundtrip_through_dict():
    cfg = TrainConfig(model="mlp", hidden=[64], lr=1)
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_cli_flags_are_in_step_with_the_config():
    parser = build_parser()
    train = next(
        a for a in parser._subparsers._group_actions[0].choices.values() if a.prog.endswith("train")
    )
    dests = {a.dest for a in train._actions}
    for f in dataclasses.fields(TrainConfig):
        assert f.name in dests, f"--{f.name} missing from `trainlab train`"
    help_text = train.format_help()
    assert "(default: cnn)" in help_text and "(default: onecycle)" in help_text
