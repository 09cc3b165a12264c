"""--augment: the bare flag is today's meaning; strong is recorded; old runs' yes/no still read."""

import pytest

from trainlab.cli import subcommand_parser
from trainlab.cli.flags import given_settings
from trainlab.config import TrainConfig
from trainlab.errors import ConfigError


def _given(*argv):
    return given_settings(subcommand_parser("train").parse_args(list(argv)))


def test_the_bare_flag_means_basic_and_a_strength_can_be_named():
    assert _given("--augment")["augment"] == "basic"
    assert _given("--augment", "strong", "--epochs", "1")["augment"] == "strong"
    assert _given("--augment", "--epochs", "1")["augment"] == "basic"
    assert "augment" not in _given("--epochs", "1")


def test_a_runs_recorded_yes_or_no_reads_as_basic_or_none():
    assert TrainConfig.from_dict({"augment": True}).augment == "basic"
    assert TrainConfig.from_dict({"augment": False}).augment == "none"
    with pytest.raises(ConfigError, match="augment .wild.. Known: basic, light, none, strong"):
        TrainConfig(augment="wild")
