# ruff: noqa: ARG005 - every check takes (baseline, changed, value), not all use each
"""Every TrainConfig field changes what a run computes or records, and the two agree.

Each field is changed alone against a small baseline run (real MNIST subsets, a small MLP or
CNN, one epoch), through ``workflow.train`` as the CLI calls it. The check looks at what a user
would see: the batches the model received (a forward hook), the weights in last.pt, the rows of
metrics.jsonl, config.toml and the files of the run. A last test makes sure no field is left out.
"""

from __future__ import annotations

import dataclasses
import io
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from trainlab.config import TrainConfig
from trainlab.engine.callbacks import Callback
from trainlab.engine.checkpoint import load_checkpoint
from trainlab.report.console import ConsoleLogger
from trainlab.resolve import resolve_config
from trainlab.workflow import train

MLP = {"model": "mlp", "hidden": [16]}
CNN = {"model": "cnn", "widths": [4, 4]}
LINEAR = {
    "dataset": "linear",
    "model": "linreg",
    "samples": 1000,
    "optimizer": "sgd",
    "lr": 0.03,
    "momentum": 0.0,
    "weight_decay": 0.0,
    "schedule": "constant",
    "batch_size": 10,
    "epochs": 3,
}
RANDOM = {"dataset": "random", "samples": 100, "model": "mlp", "hidden": [8], "batch_size": 10}
STEP = {**MLP, "schedule": "step", "epochs": 2}


class Probe(Callback):
    """Records what the model received: batch sizes, layout, dtype, the first batch's stats."""

    def __init__(self):
        self.train_sizes, self.eval_sizes = [], []
        self.first_train = None
        self.conv_channels_last = None
        self.output_dtype = None
        self.saved_positions = []  # (epoch, batch) of each last.pt seen during the epoch

    def on_batch_end(self, trainer, state, loss_sum, steps):  # noqa: ARG002
        last = self.run_dir / "last.pt"
        if last.exists():
            position = load_checkpoint(last)
            position = (position["epoch"], position["batch"])
            if position not in self.saved_positions:
                self.saved_positions.append(position)

    def on_fit_start(self, trainer, info):
        self.run_dir = info["run_dir"]
        self.initial = {
            k: v.detach().clone()
            for k, v in trainer.model.state_dict().items()
            if v.is_floating_point()
        }

        def before(module, args):
            x = args[0]
            (self.train_sizes if module.training else self.eval_sizes).append(len(x))
            if module.training and self.first_train is None:
                self.first_train = x.detach().float().clone()
                convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
                if len(convs) > 1:  # the first conv has one input channel: either layout
                    weight = convs[1].weight
                    self.conv_channels_last = weight.stride(1) == 1 and not weight.is_contiguous()

        def after(module, args, output):  # noqa: ARG001
            self.output_dtype = output.dtype

        trainer.model.register_forward_pre_hook(before)
        trainer.model.register_forward_hook(after)


@dataclasses.dataclass
class Outcome:
    cfg: TrainConfig
    result: object
    record: dict
    last: dict
    probe: Probe
    console: str

    @property
    def rows(self):
        return self.result.history

    @property
    def weights(self):
        return self.last["state_dict"]


@pytest.fixture(scope="module")
def runner(tmp_path_factory, mnist_root):
    root = tmp_path_factory.mktemp("wiring")
    cache: dict = {}

    def run(base: dict, **changes) -> Outcome:
        key = repr(sorted({**base, **changes}.items()))
        if key in cache:
            return cache[key]
        values = {
            "subset": 300,
            "test_subset": 100,
            "epochs": 1,
            "batch_size": 50,
            "eval_batch_size": 50,
            "device": "cpu",
            "data_dir": str(mnist_root),
            "runs_dir": str(root / "runs"),
            **base,
            **changes,
        }
        if values.get("dataset") in ("linear", "random"):
            values.update(subset=0, test_subset=0)
        given = {k: v for k, v in values.items() if k != "recipe"}
        if "recipe" in values:
            given["recipe"] = values["recipe"]
        cfg = resolve_config(given).config
        stream, probe = io.StringIO(), Probe()
        logger = ConsoleLogger(cfg.log_every, stream=stream, bar=False)
        result = train(cfg, callbacks=[logger, probe])
        record = tomllib.loads((result.run_dir / "config.toml").read_text())
        outcome = Outcome(
            cfg, result, record, load_checkpoint(result.last_path), probe, stream.getvalue()
        )
        cache[key] = outcome
        return outcome

    return run


def moved(outcome: Outcome) -> float:
    """How far training took the weights from where they started (L2 over all of them)."""
    start = outcome.probe.initial
    return (
        sum(float((outcome.weights[k].float() - start[k].float()).norm() ** 2) for k in start)
        ** 0.5
    )


def differ(a: dict, b: dict) -> bool:
    return a.keys() != b.keys() or any(
        a[k].shape != b[k].shape or not torch.equal(a[k], b[k]) for k in a
    )


MODEL_OPTIONS = {"hidden", "widths", "log_softmax"}
DATA_OPTIONS = {"samples", "features", "num_classes", "true_w", "true_b", "noise"}


def recorded(outcome: Outcome, name: str):
    """The value config.toml and the checkpoint both record (they must agree); a built-in
    model's or dataset's option is recorded in its options table."""
    table = {
        **{k: "model_options" for k in MODEL_OPTIONS},
        **{k: "data_options" for k in DATA_OPTIONS},
    }
    if name in table:
        in_toml = outcome.record["config"].get(table[name], {}).get(name)
        in_checkpoint = outcome.last["config"][table[name]][name]
        assert in_toml == in_checkpoint, name
        return in_checkpoint
    in_toml = outcome.record["config"].get(name)
    in_checkpoint = outcome.last["config"][name]
    assert in_toml == in_checkpoint or (in_toml is None and in_checkpoint is None), name
    return in_checkpoint


def _symlinked_root(tmp_path: Path, mnist_root: Path) -> Path:
    raw = tmp_path / "other-root" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (mnist_root / "MNIST" / "raw").iterdir():
        (raw / f.name).symlink_to(f.resolve())
    return raw.parents[1]


def _weights_file(tmp_path: Path, mnist_root: Path) -> Path:
    from trainlab.data import load_dataset
    from trainlab.models import build_model

    data = load_dataset("mnist", mnist_root, sources=("local",))
    model = build_model("mlp", data, hidden=[16])
    for p in model.parameters():
        torch.nn.init.constant_(p, 0.01)
    path = tmp_path / "start.pt"
    torch.save(model.state_dict(), path)
    return path


# field -> (baseline settings, changed value, check(baseline, changed, recorded value))
CASES = {
    "dataset": (
        MLP,
        "digits",
        lambda a, b, v: (
            v == "digits"
            and b.last["data"]["name"] == "digits"
            and b.weights["1.weight"].shape[1] == 64
            and a.weights["1.weight"].shape[1] == 784
        ),
    ),
    "subset": (
        MLP,
        200,
        lambda a, b, v: (
            v == 200 and sum(b.probe.train_sizes) == 200 and b.record["data"]["train"] == 200
        ),
    ),
    "test_subset": (
        MLP,
        60,
        lambda a, b, v: (
            v == 60
            and b.record["data"]["test"] == 60
            and len(np.load(b.result.run_dir / "predictions.npz")["labels"]) == 60
        ),
    ),
    "val_split": (
        MLP,
        0.2,
        lambda a, b, v: (
            v == 0.2
            and "val_acc" in b.rows[0]
            and "val_acc" not in a.rows[0]
            and b.record["data"]["val"] == 60
            and b.record["run"]["monitor"] == "val_acc"
        ),
    ),
    "samples": (RANDOM, 150, lambda a, b, v: v == 150 and b.record["data"]["train"] == 120),
    "features": (
        RANDOM,
        5,
        lambda a, b, v: v == 5 and b.weights["1.weight"].shape[1] == 5,
    ),
    "num_classes": (
        RANDOM,
        3,
        lambda a, b, v: v == 3 and len(b.last["data"]["classes"]) == 3,
    ),
    "true_w": (
        LINEAR,
        [1.0, 1.0],
        lambda a, b, v: (
            v == [1.0, 1.0]
            and max(abs(e) for e in b.rows[-1]["w_error"]) < 0.05
            and max(abs(e) for e in a.rows[-1]["w_error"]) < 0.05
            and differ(a.weights, b.weights)
        ),
    ),
    "true_b": (
        LINEAR,
        1.0,
        lambda a, b, v: (
            v == 1.0
            and abs(b.rows[-1]["b_error"]) < 0.05
            and abs(float(b.weights["1.bias"]) - 1.0) < 0.05
        ),
    ),
    "noise": (
        LINEAR,
        1.0,
        lambda a, b, v: v == 1.0 and b.rows[-1]["test_loss"] > 100 * a.rows[-1]["test_loss"],
    ),
    "data_seed": (
        MLP,
        7,
        lambda a, b, v: v == 7 and differ(a.weights, b.weights) and b.cfg.seed == a.cfg.seed,
    ),
    "norm_mean": (
        {**MLP, "norm_mean": [0.1307], "norm_std": [0.3081]},
        [0.5],
        lambda a, b, v: (
            v == [0.5]
            and b.last["data"]["transform"]["mean"] == [0.5]
            and abs(float(b.probe.first_train.mean() - a.probe.first_train.mean())) > 0.5
        ),
    ),
    "norm_std": (
        {**MLP, "norm_mean": [0.1307], "norm_std": [0.3081]},
        [1.0],
        lambda a, b, v: (
            v == [1.0]
            and b.last["data"]["transform"]["std"] == [1.0]
            and float(b.probe.first_train.std()) < 0.5 < float(a.probe.first_train.std())
        ),
    ),
    "model": (
        {"model": "mlp"},
        "softmax",
        lambda a, b, v: v == "softmax" and b.weights.keys() != a.weights.keys(),
    ),
    "hidden": (MLP, [8], lambda a, b, v: v == [8] and b.weights["1.weight"].shape[0] == 8),
    "widths": (CNN, [4, 6], lambda a, b, v: v == [4, 6] and differ(a.weights, b.weights)),
    "init": (MLP, "xavier", lambda a, b, v: v == "xavier" and differ(a.weights, b.weights)),
    "log_softmax": (
        MLP,
        True,
        lambda a, b, v: (
            v is True
            and b.last["model"]["output"] == "log_probs"
            and a.last["model"]["output"] == "logits"
        ),
    ),
    "epochs": (MLP, 2, lambda a, b, v: v == 2 and len(b.rows) == 2 and len(a.rows) == 1),
    "batch_size": (
        MLP,
        30,
        lambda a, b, v: (
            v == 30 and max(b.probe.train_sizes) == 30 and len(b.probe.train_sizes) == 10
        ),
    ),
    "eval_batch_size": (
        MLP,
        40,
        lambda a, b, v: v == 40 and max(b.probe.eval_sizes) == 40 and max(a.probe.eval_sizes) == 50,
    ),
    "drop_last": (
        {**MLP, "batch_size": 70},
        True,
        lambda a, b, v: (
            v is True and b.probe.train_sizes == [70] * 4 and a.probe.train_sizes[-1] == 20
        ),
    ),
    "optimizer": (
        MLP,
        "adam",
        lambda a, b, v: (
            v == "adam"
            and "exp_avg" in next(iter(b.last["optimizer"]["state"].values()))
            and differ(a.weights, b.weights)
        ),
    ),
    "lr": (
        MLP,
        0.02,
        lambda a, b, v: (
            v == 0.02
            and math.isclose(b.rows[0]["lr"], a.rows[0]["lr"] / 5)
            and differ(a.weights, b.weights)
        ),
    ),
    "momentum": (
        MLP,
        0.5,
        lambda a, b, v: (
            v == 0.5
            and b.last["optimizer"]["param_groups"][0]["momentum"] == 0.5
            and differ(a.weights, b.weights)
        ),
    ),
    "nesterov": (
        MLP,
        False,
        lambda a, b, v: (
            v is False
            and b.last["optimizer"]["param_groups"][0]["nesterov"] is False
            and differ(a.weights, b.weights)
        ),
    ),
    "weight_decay": (
        MLP,
        0.1,
        lambda a, b, v: (
            v == 0.1
            and b.last["optimizer"]["param_groups"][0]["weight_decay"] == 0.1
            and differ(a.weights, b.weights)
        ),
    ),
    "schedule": (
        MLP,
        "constant",
        lambda a, b, v: v == "constant" and b.rows[0]["lr"] == 0.1 and a.rows[0]["lr"] < 0.05,
    ),
    "warmup": (MLP, 0.5, lambda a, b, v: v == 0.5 and differ(a.weights, b.weights)),
    "step_size": (
        STEP,
        2,
        lambda a, b, v: v == 2 and b.rows[1]["lr"] == 0.1 and math.isclose(a.rows[1]["lr"], 0.07),
    ),
    "gamma": (STEP, 0.5, lambda a, b, v: v == 0.5 and math.isclose(b.rows[1]["lr"], 0.05)),
    "loss": (MLP, "nll", lambda a, b, v: v == "nll" and differ(a.weights, b.weights)),
    "label_smoothing": (  # the default for cross-entropy is 0.1 (recorded as such)
        MLP,
        0.0,
        lambda a, b, v: (
            v == 0.0
            and a.last["config"]["label_smoothing"] == 0.1
            and b.rows[0]["train_loss"] < a.rows[0]["train_loss"]
            and differ(a.weights, b.weights)
        ),
    ),
    "augment": (MLP, "strong", lambda a, b, v: v == "strong" and differ(a.weights, b.weights)),
    "mixup": (MLP, 0.2, lambda a, b, v: v == 0.2 and differ(a.weights, b.weights)),
    "cutmix": (MLP, 1.0, lambda a, b, v: v == 1.0 and differ(a.weights, b.weights)),
    "seed": (MLP, 3, lambda a, b, v: v == 3 and differ(a.weights, b.weights)),
    "device": (
        MLP,
        "auto",
        lambda a, b, v: (
            v == "auto"
            and b.record["environment"]["device"]
            == str(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
            and a.record["environment"]["device"] == "cpu"
        ),
    ),
    "amp": (
        CNN,
        "bf16",
        lambda a, b, v: (
            v == "bf16"
            and b.probe.output_dtype == torch.bfloat16
            and a.probe.output_dtype in (torch.float32, torch.bfloat16)
        ),
    ),
    # (the input's layout is shown on three-channel batches in tests/engine/test_setup.py:
    # with one channel, both layouts have the same strides)
    "channels_last": (
        CNN,
        False,
        lambda a, b, v: (
            v is False
            and a.last["data"]["transform"]["channels_last"] is True
            and b.last["data"]["transform"]["channels_last"] is False
            and a.probe.conv_channels_last is True
            and b.probe.conv_channels_last is False
        ),
    ),
    "run_name": (
        MLP,
        "named",
        lambda a, b, v: v == "named" and b.result.run_dir.name == "named",
    ),
    "log_every": (
        MLP,
        2,
        lambda a, b, v: v == 2 and "batch 2/6" in b.console and "batch 2/6" not in a.console,
    ),
    "sklearn_check": (
        MLP,
        True,
        lambda a, b, v: (
            v is True
            and b.result.extra["sklearn_test_acc"] == pytest.approx(b.rows[-1]["test_acc"])
            and "sklearn_test_acc" not in a.result.extra
        ),
    ),
    "tensorboard": (
        MLP,
        True,
        lambda a, b, v: (
            v is True
            and any((b.result.run_dir / "tb").glob("events.*"))
            and not (a.result.run_dir / "tb").exists()
        ),
    ),
    "checkpoint_every": (
        MLP,
        2,
        lambda a, b, v: (
            v == 2
            and b.probe.saved_positions == [(0, 2), (0, 4)]  # 6 batches: saved after 2 and 4
            and a.probe.saved_positions == []
            and not differ(a.weights, b.weights)  # saving mid-epoch changes nothing
        ),
    ),
    "model_options": (
        {"model": "mlp"},
        {"hidden": [8]},
        lambda a, b, v: (
            v == {"hidden": [8], "log_softmax": False}
            and b.weights["1.weight"].shape[0] == 8
            and a.weights["1.weight"].shape[0] == 512
        ),
    ),
    "data_options": (
        {"dataset": "random", "model": "mlp", "hidden": [8], "batch_size": 10},
        {"samples": 150},
        lambda a, b, v: (
            v["samples"] == 150
            and b.record["data"]["train"] == 120
            and a.record["data"]["train"] == 800
        ),
    ),
    # the effect on a minority class's recall: tests/test_new_user.py
    "class_weights": (
        MLP,
        "balanced",
        lambda a, b, v: v == "balanced" and differ(a.weights, b.weights),
    ),
    # the effect on a rare class's recall, and the exact resume: tests/engine/test_imbalance.py
    "sampler": (
        MLP,
        "balanced",
        lambda a, b, v: v == "balanced" and differ(a.weights, b.weights),
    ),
    "backbone_lr_mult": (
        MLP,
        0.0,
        lambda a, b, v: (
            v == 0.0
            and torch.equal(b.weights["1.weight"], b.probe.initial["1.weight"])  # backbone
            and not torch.equal(b.weights["3.weight"], b.probe.initial["3.weight"])  # head
            and not torch.equal(a.weights["1.weight"], a.probe.initial["1.weight"])
        ),
    ),
    "clip_grad": (
        MLP,
        1e-4,
        # each step moves the weights by at most lr × the clipped norm (times momentum's sum)
        lambda a, b, v: v == 1e-4 and moved(b) < 0.01 * moved(a),
    ),
    "early_stop": (
        {**MLP, "val_split": 0.2, "epochs": 4, "min_delta": 1.0},
        1,
        lambda a, b, v: (
            v == 1
            and len(a.rows) == 4
            and len(b.rows) == 2  # no epoch can raise val_acc by 1.0
            and b.record["stopped"]["epoch"] == 2
            and "val_acc did not improve" in b.rows[-1]["stop"]["reason"]
            and b.result.status == "stopped early"
            and "stopped after epoch 2" in b.console
        ),
    ),
    "min_delta": (
        {**MLP, "val_split": 0.2, "epochs": 3, "early_stop": 1},
        1.0,
        lambda a, b, v: (
            v == 1.0 and len(b.rows) == 2 and "by more than 1 " in b.rows[-1]["stop"]["reason"]
        ),
    ),
    "monitor": (
        {**MLP, "val_split": 0.2},
        "val_loss",
        lambda a, b, v: (
            v == "val_loss"
            and b.record["run"]["monitor"] == "val_loss"
            and b.last["best"]["monitor"] == "val_loss"
            and a.last["best"]["monitor"] == "val_acc"
        ),
    ),
    "recipe": (
        {},
        "seed-mlp",
        lambda a, b, v: (
            v == "seed-mlp"
            and b.last["data"]["transform"]["mean"] == [0.5]
            and "exp_avg" in next(iter(b.last["optimizer"]["state"].values()))
            and b.last["model"]["output"] == "log_probs"
        ),
    ),
}

# Fields whose effect needs more than a one-epoch MLP; each named test shows it.
ELSEWHERE = {
    "focal_gamma": (
        "tests/engine/test_imbalance.py::test_focal_loss_trains_differently_and_gamma_is_recorded"
    ),
    "pretrained": (
        "tests/test_recipes.py::test_cached_imagenet_weights_load_and_the_head_is_replaced"
    ),
    "data_dir": "test_data_dir_is_where_the_data_is_read",
    "weights": "test_weights_and_freeze_features_start_and_hold_the_weights",
    "freeze_features": "test_weights_and_freeze_features_start_and_hold_the_weights",
    "runs_dir": "test_runs_dir_is_where_the_run_is_written",
    "dropout": "tests/models/test_models.py::test_alexnets_dropout_is_an_option_with_an_effect",
    "image_size": "tests/data/test_folder.py::test_a_folders_size_channels_resize_and_split",
    "channels": "tests/data/test_folder.py::test_a_folders_size_channels_resize_and_split",
    "resize": "tests/data/test_folder.py::test_a_folders_size_channels_resize_and_split",
    "test_split": "tests/data/test_folder.py::test_a_folders_size_channels_resize_and_split",
    "strict": "tests/data/test_folder.py::test_it_trains_and_reports_the_strays",
    "memory_budget_mb": (
        "tests/data/test_folder.py::"
        "test_past_the_memory_budget_it_trains_from_a_mapped_file_to_the_same_weights"
    ),
    "file_column": "tests/data/test_csv_labels.py::test_file_and_label_columns_name_them",
    **dict.fromkeys(  # a table's
        ("target", "categorical", "task", "max_categories"),
        "tests/data/test_tables.py::test_the_flags_reach_the_table_from_the_command_line",
    ),
    "label_column": "tests/data/test_csv_labels.py::test_file_and_label_columns_name_them",
    "images": (
        "tests/data/test_csv_labels.py::"
        "test_a_folder_with_metadata_csv_honours_its_split_column_and_images"
    ),
    "test_csv": (
        "tests/data/test_csv_labels.py::"
        "test_it_trains_within_one_and_a_half_points_of_class_folders"
    ),
    "unverified_data": (
        "tests/data/test_cifar.py::test_it_trains_evaluates_and_predicts_with_unverified_data"
    ),
    "tta": "tests/models/test_tta.py::test_the_runs_test_figure_is_the_flip_averaged_one",
    "multi_label": (
        "tests/data/test_multilabel.py::test_canvases_reach_micro_f1_090_on_held_out_canvases"
    ),
    "label_delim": "tests/data/test_multilabel.py::test_label_delim_and_label_columns_read_sets",
    "label_columns": "tests/data/test_multilabel.py::test_label_delim_and_label_columns_read_sets",
    "threshold": "tests/data/test_multilabel.py::test_threshold_and_monitor_on_a_short_run",
    "resolution": (
        "tests/models/test_pretrained.py::"
        "test_a_fine_tuned_backbone_goes_through_eval_predict_export_report_and_serve"
    ),
    "feature_cache": (
        "tests/engine/test_features.py::"
        "test_the_head_from_cached_features_equals_the_head_through_the_frozen_network"
    ),
    "folds": (
        "tests/tune/test_cv.py::test_cv_reports_each_fold_and_a_rerun_fold_gives_the_same_figure"
    ),
    "fold": (
        "tests/tune/test_cv.py::test_cv_reports_each_fold_and_a_rerun_fold_gives_the_same_figure"
    ),
    "budget": (
        "tests/engine/test_budget.py::"
        "test_the_command_plans_says_records_and_ends_within_its_budget"
    ),
    "ema": "tests/engine/test_ema.py::test_best_pt_holds_the_average_and_eval_scores_it",
    "blocks": (
        "tests/models/test_resnet.py::"
        "test_blocks_and_widths_shape_the_network_and_any_size_from_8_px_fits"
    ),
    "stem_pool": (
        "tests/models/test_resnet.py::"
        "test_stem_pool_and_pooled_downsampling_keep_the_weights_and_quarter_the_pixels"
    ),
    "downsample": (
        "tests/models/test_resnet.py::"
        "test_stem_pool_and_pooled_downsampling_keep_the_weights_and_quarter_the_pixels"
    ),
    "sync_bn": (
        "tests/distributed/test_torchrun.py::"
        "test_sync_bn_computes_batch_statistics_over_all_processes"
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_setting_changes_the_run(runner, name):
    base, value, check = CASES[name]
    baseline = runner(base)
    changed = runner(base, **{name: value})
    assert check(baseline, changed, recorded(changed, name)), name


def test_no_setting_is_left_out():
    from trainlab.models.shorthand import shorthand_options

    # every field, and every option of a built-in model or dataset (their flags)
    fields = {f.name for f in dataclasses.fields(TrainConfig)} | set(shorthand_options())
    elsewhere = {"dropout", "image_size", "channels", "resize", "test_split", "strict"}
    elsewhere |= {"memory_budget_mb", "resolution", "blocks", "stem_pool", "downsample"}
    elsewhere |= {"file_column", "label_column", "images", "test_csv"}  # a labels CSV's
    elsewhere |= {"multi_label", "label_delim", "label_columns"}
    elsewhere |= {"target", "categorical", "task", "max_categories"}  # a table's
    assert MODEL_OPTIONS | DATA_OPTIONS | elsewhere | {"unverified_data"} == set(
        shorthand_options()
    )
    assert set(CASES) | set(ELSEWHERE) == fields
    assert not set(CASES) & set(ELSEWHERE)
    tests = Path(__file__).parent
    for where in ELSEWHERE.values():
        path, _, name = where.rpartition("::")
        source = (tests.parent / path if path else Path(__file__)).read_text()
        assert f"def {name}(" in source, where


def test_data_dir_is_where_the_data_is_read(runner, tmp_path, mnist_root):
    other = _symlinked_root(tmp_path, mnist_root)
    outcome = runner(MLP, data_dir=str(other))
    assert recorded(outcome, "data_dir") == str(other)
    assert outcome.record["data"]["root"] == str(other)
    assert not differ(runner(MLP).weights, outcome.weights)  # the same files, the same run


def test_runs_dir_is_where_the_run_is_written(runner, tmp_path):
    outcome = runner(MLP, runs_dir=str(tmp_path / "elsewhere"))
    assert outcome.result.run_dir.parent == tmp_path / "elsewhere"
    assert recorded(outcome, "runs_dir") == str(tmp_path / "elsewhere")


def test_weights_and_freeze_features_start_and_hold_the_weights(runner, tmp_path, mnist_root):
    path = _weights_file(tmp_path, mnist_root)
    started = runner(MLP, weights=str(path), epochs=1)
    assert recorded(started, "weights") == str(path)
    assert differ(runner(MLP).weights, started.weights)
    frozen = runner(MLP, weights=str(path), freeze_features=True)
    assert recorded(frozen, "freeze_features") is True
    # only the head (the last linear layer) moved away from the file's 0.01s
    weights = frozen.weights
    assert torch.all(weights["1.weight"] == 0.01) and torch.all(weights["1.bias"] == 0.01)
    assert not torch.all(weights["3.weight"] == 0.01)
    assert frozen.last["model"]["freeze_features"] is True
