import pytest
import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.models import build_model, describe_models, parameter_count, record_of, registered

MODELS = list(registered())


@pytest.mark.parametrize(
    "name", [n for n, spec in registered().items() if spec.output_for({}) != "regression"]
)
def test_every_classifier_builds_and_runs_on_mnist_shaped_data(name, mnist_small):
    from trainlab.config import TrainConfig
    from trainlab.engine.setup import input_transform

    model = build_model(name, mnist_small).eval()
    x = input_transform(model, mnist_small, TrainConfig())(mnist_small.test_x[:4])
    assert model(x).shape == (4, 10)
    assert record_of(model)["name"] == name


def test_alexnet_gets_resized_three_channel_input(mnist_small):
    from trainlab.config import TrainConfig
    from trainlab.engine.setup import input_transform

    model = build_model("alexnet", mnist_small)
    x = input_transform(model, mnist_small, TrainConfig())(mnist_small.test_x[:2])
    assert x.shape == (2, 3, 96, 96)
    head = model.classifier
    assert [type(m) for m in head] == [
        nn.Dropout,
        nn.Linear,
        nn.ReLU,
        nn.Dropout,
        nn.Linear,
        nn.ReLU,
        nn.Linear,
    ]
    assert head[0].p == 0.3 and head[1].in_features == 9216 and head[-1].out_features == 10


def test_mlp_sizes_and_seed_parameter_count():
    model = build_model("mlp", input_shape=(1, 28, 28), outputs=10)
    assert parameter_count(model) == 784 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10
    small = build_model("mlp", input_shape=(1, 28, 28), outputs=10, hidden=[32])
    assert parameter_count(small) == 784 * 32 + 32 + 32 * 10 + 10


def test_lenet_is_d2ls():
    model = build_model("lenet", input_shape=(1, 28, 28), outputs=10)
    assert sum(isinstance(m, nn.Sigmoid) for m in model) == 4
    assert sum(isinstance(m, nn.AvgPool2d) for m in model) == 2


def test_xavier_init_applies_to_linear_and_conv():
    torch.manual_seed(0)
    model = build_model("lenet", input_shape=(1, 28, 28), outputs=10, init="xavier")
    conv = model[0]
    bound = (6 / (conv.in_channels * 25 + conv.out_channels * 25)) ** 0.5
    assert conv.weight.abs().max() <= bound
    assert conv.weight.abs().max() > 0.9 * bound


def test_unknown_model_and_task_mismatch(mnist_small):
    from trainlab.data import load_dataset

    with pytest.raises(ConfigError, match="unknown model 'resnet'"):
        build_model("resnet", mnist_small)
    with pytest.raises(ConfigError, match="is for regression"):
        build_model("linreg", mnist_small)
    with pytest.raises(ConfigError, match="needs images"):
        build_model("lenet", load_dataset("random"))


def test_describe_lists_every_model():
    rows = describe_models()
    assert [r["name"] for r in rows] == list(MODELS)
    assert all(r["parameters"] > 0 for r in rows)
    alexnet = next(r for r in rows if r["name"] == "alexnet")
    assert alexnet["parameters"] == parameter_count(
        build_model("alexnet", input_shape=(1, 28, 28), outputs=10)
    )


def test_alexnets_dropout_is_an_option_with_an_effect():
    model = build_model("alexnet", input_shape=(1, 28, 28), outputs=10, dropout=0.55)
    assert [m.p for m in model.classifier if isinstance(m, nn.Dropout)] == [0.55, 0.55]
    assert record_of(model)["options"] == {"dropout": 0.55}


@pytest.mark.parametrize(
    "options, needle",
    [
        ({"hiden": [8]}, "has no option 'hiden'. Did you mean 'hidden'"),
        ({"hidden": [8, 0]}, "option 'hidden' must be in \\[1, "),
        ({"hidden": 8}, "takes a list of int"),
        ({"log_softmax": "yes"}, "option 'log_softmax' must be bool"),
    ],
)
def test_options_are_checked_against_the_builder(options, needle):
    with pytest.raises(ConfigError, match=needle):
        build_model("mlp", input_shape=(1, 28, 28), outputs=10, **options)


def test_frozen_features_keep_their_batch_norm_statistics_and_only_the_head_learns(
    tmp_path, mnist_small
):
    from trainlab import Trainer
    from trainlab.config import TrainConfig
    from trainlab.engine.optim import build_optimizer
    from trainlab.models.pretrained import freeze_features

    model = build_model("cnn", mnist_small, widths=[4, 4])
    freeze_features(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = build_optimizer(model, TrainConfig())
    assert sum(len(g["params"]) for g in optimizer.param_groups) == 2  # the head's W and b
    Trainer(epochs=1, runs_dir=str(tmp_path), device="cpu", quiet=True).fit(
        model, mnist_small.subset(300, 100)
    )
    after = model.state_dict()
    for name in ("2.running_mean", "2.running_var", "6.running_mean", "0.weight"):
        assert torch.equal(after[name].cpu(), before[name]), name
    assert not torch.equal(after["9.weight"].cpu(), before["9.weight"])
