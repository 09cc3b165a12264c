"""A search space from TOML: what each entry searches, the error for each mistake (its file,
line and setting), the values a real Optuna trial draws, and how parameters print."""

from __future__ import annotations

import pytest

from trainlab.errors import ConfigError
from trainlab.tune.space import Param, decode, read_space, shown

SPACE = """\
# a sweep of the MLP
[space]
lr = { low = 0.01, high = 0.5, log = true }
weight-decay = { low = 0.0, high = 0.01, step = 0.001 }
batch_size = { low = 32, high = 256, step = 32 }
hidden = { choices = [[64], [128], [256, 128]] }
optimizer = { choices = ["sgd", "adamw"] }
"model_options.dropout" = { low = 0.0, high = 0.5 }
epochs = 2
seed = { value = 7 }
"""


def _write(tmp_path, text: str):
    path = tmp_path / "space.toml"
    path.write_text(text)
    return path


def test_each_entry_becomes_the_search_it_describes(tmp_path):
    space = read_space(_write(tmp_path, SPACE))
    assert space == {
        "lr": Param("lr", "float", 0.01, 0.5, log=True),
        "weight_decay": Param("weight_decay", "float", 0.0, 0.01, step=0.001),  # dash or not
        "batch_size": Param("batch_size", "int", 32, 256, step=32),  # integer ends: integers
        "hidden": Param("hidden", "choice", choices=([64], [128], [256, 128])),
        "optimizer": Param("optimizer", "choice", choices=("sgd", "adamw")),
        "model_options.dropout": Param("model_options.dropout", "float", 0.0, 0.5),
        "epochs": Param("epochs", "fixed", value=2),
        "seed": Param("seed", "fixed", value=7),
    }
    # settings at the top level, without a [space] header, read the same
    assert read_space(_write(tmp_path, "lr = { low = 0.01, high = 0.5 }\n"))["lr"].kind == "float"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("lrr = { low = 0.1, high = 1.0 }", "unknown setting at {path}:3 'lrr'"),
        ("lr = { low = 1.0, high = 0.1 }", "{path}:3: lr: low (1.0) must be below high (0.1)"),
        ("lr = { low = 0, high = 1.0, log = true }", "{path}:3: lr: a log scale needs low > 0"),
        ("lr = { low = 0.1, high = 1.0, log = true, step = 0.1 }", "{path}:3: lr: step and log"),
        ("lr = { low = '0.1', high = 1.0 }", "{path}:3: lr: low and high must be numbers"),
        ("lr = { choices = [] }", "{path}:3: lr: choices = [...] takes a non-empty list"),
        ("lr = { low = 0.1 }", "{path}:3: lr: a range is { low = ..., high = ... }"),
        ("'lr' = { low = 0.1, top = 1 }", "{path}:3: lr: a range is"),
        ("run_name = 'x'", "{path}:3: run_name is set by the sweep"),
    ],
)
def test_a_mistake_is_named_by_file_line_and_setting(tmp_path, entry, message):
    path = _write(tmp_path, f"# tried on Monday\n[space]\n{entry}\nepochs = 2\n")
    with pytest.raises(ConfigError) as caught:
        read_space(path)
    assert message.replace("{path}", str(path)) in str(caught.value)


def test_an_unreadable_or_empty_space_is_refused_by_file(tmp_path):
    with pytest.raises(ConfigError, match="not a readable TOML file .*line 2"):
        read_space(_write(tmp_path, "[space]\nlr = {\n"))
    with pytest.raises(ConfigError, match=r"expected a \[space\] table"):
        read_space(_write(tmp_path, "[space]\n"))
    with pytest.raises(ConfigError, match="no such search-space file"):
        read_space(tmp_path / "missing.toml")


def test_a_real_trial_draws_values_inside_each_search(tmp_path):
    optuna = pytest.importorskip("optuna")
    space = read_space(_write(tmp_path, SPACE))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        values = {name: p.suggest(trial) for name, p in space.items()}
        assert 0.01 <= values["lr"] <= 0.5
        assert round(values["weight_decay"] * 1000, 9) in range(11)  # on its steps of 0.001
        assert values["batch_size"] in range(32, 257, 32) and type(values["batch_size"]) is int
        assert values["hidden"] in ([64], [128], [256, 128])  # a list again, for the run
        assert values["optimizer"] in ("sgd", "adamw")
        assert (values["epochs"], values["seed"]) == (2, 7)
        # Optuna records what it searched; a list choice is kept as its JSON text there
        assert set(trial.params) == set(space) - {"epochs", "seed"}
        assert decode(trial.params)["hidden"] == values["hidden"]
        study.tell(trial, 0.0)
    assert len({t.params["hidden"] for t in study.trials}) == 3  # every choice came up


def test_parameters_print_with_four_significant_digits():
    params = {"lr": 0.041652066074075685, "wd": 1.23456e-05, "hidden": [64, 32], "opt": "sgd"}
    assert shown(params) == "lr=0.04165 wd=1.235e-05 hidden=[64, 32] opt=sgd"
    assert shown({"lr": 0.1, "epochs": 3}) == "lr=0.1 epochs=3"
