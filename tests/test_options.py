"""Options read from a builder's signature: types, bounds, choices and help in one place, the
same checks for built-ins, plugins and a user's own factory."""

from __future__ import annotations

from typing import Annotated

import pytest

from trainlab.errors import ConfigError
from trainlab.options import Opt, options_of, parse_assignment, validate


def builder(
    input_shape,
    outputs,
    hidden: Annotated[list[int], Opt("hidden sizes", low=1, high=4096)] = (64,),
    act: Annotated[str, Opt("activation", choices=("relu", "tanh"))] = "relu",
    dropout: float = 0.0,
    width=12,
):
    return input_shape, outputs, hidden, act, dropout, width


def test_the_schema_comes_from_the_signature():
    schema = options_of(builder, skip=2)
    assert list(schema) == ["hidden", "act", "dropout", "width"]
    assert schema["hidden"].default == [64] and schema["hidden"].is_list
    assert schema["hidden"].meta.help == "hidden sizes" and schema["act"].meta.choices
    assert schema["dropout"].kind is float and schema["width"].kind is int  # from the default


def test_values_are_checked_and_defaults_filled():
    schema = options_of(builder, skip=2)
    values = validate(schema, {"hidden": [8, 8], "dropout": 1}, "model 'b'")
    assert values == {"hidden": [8, 8], "act": "relu", "dropout": 1.0, "width": 12}
    assert isinstance(values["dropout"], float)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"hiden": [8]}, "model 'b' has no option 'hiden'. Did you mean 'hidden'?"),
        ({"hidden": 8}, "option 'hidden' takes a list of int, got 8"),
        ({"hidden": [0]}, r"option 'hidden' must be in \[1, 4096\], got 0"),
        ({"act": "gelu"}, "option 'act' must be one of relu, tanh, got 'gelu'"),
        ({"dropout": "high"}, "option 'dropout' must be float, got str 'high'"),
        ({"width": True}, "option 'width' must be int, got bool True"),
        ({"dropout": float("nan")}, "option 'dropout' must be a finite number"),
    ],
)
def test_each_mistake_names_the_option_and_what_it_takes(given, message):
    with pytest.raises(ConfigError, match=message):
        validate(options_of(builder, skip=2), given, "model 'b'")


def test_a_required_option_is_asked_for_by_flag():
    def needs(input_shape, outputs, depth: int):
        return input_shape, outputs, depth

    with pytest.raises(ConfigError, match="needs option.s. depth: give them as --model-arg"):
        validate(options_of(needs, skip=2), {}, "model 'n'")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("width=12", ("width", 12)),
        ("widths=[8,16]", ("widths", [8, 16])),
        ("p=0.1", ("p", 0.1)),
        ("act=relu", ("act", "relu")),
        ('act="relu"', ("act", "relu")),
        ("flag=true", ("flag", True)),
    ],
)
def test_name_value_pairs_are_read_as_toml(text, expected):
    assert parse_assignment(text, "--model-arg") == expected


@pytest.mark.parametrize("text", ["width", "=3", "w=[1,", "2x=1"])
def test_a_malformed_pair_is_refused_with_an_example(text):
    with pytest.raises(ConfigError, match="--model-arg"):
        parse_assignment(text, "--model-arg")
