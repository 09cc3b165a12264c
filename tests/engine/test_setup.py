"""setup_run: the batches, layout, precision, loss and optimizer a config asks for."""

import pytest
import torch
from PIL import Image
from torchvision import transforms

from trainlab.config import TrainConfig
from trainlab.data.batches import epoch_generator
from trainlab.data.kinds import CLASSIFICATION
from trainlab.engine.setup import amp_policy, input_transform, loss_kind, setup_run
from trainlab.errors import ConfigError
from trainlab.models import build_model


def _first_batch(setup):
    return next(iter(setup.train.epoch(0)))


def test_norm_flags_give_torchvisions_normalize(mnist_small):
    cfg = TrainConfig(model="mlp", norm_mean=[0.5], norm_std=[0.5], batch_size=64, seed=3)
    model = build_model("mlp", mnist_small)
    x, _ = _first_batch(setup_run(cfg, model, mnist_small))
    reference = transforms.Compose([transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])
    order = torch.randperm(len(mnist_small.train_y), generator=epoch_generator(3, 0))[:64]
    expected = torch.stack(
        [
            reference(Image.fromarray(mnist_small.train_x[i, 0].numpy(), mode="L"))
            for i in order.tolist()
        ]
    )
    assert (x - expected).abs().max().item() < 1e-6
    # the data's own statistics are used without the flags, and then the batch is ~N(0, 1)
    plain, _ = _first_batch(setup_run(cfg.replace(norm_mean=[], norm_std=[]), model, mnist_small))
    assert abs(plain.mean().item()) < 0.1 and abs(x.mean().item() + 0.74) < 0.05


def test_channels_last_is_the_layout_of_the_input(mnist_small):
    # alexnet's input has three channels, where the two layouts have different strides
    model = build_model("alexnet", mnist_small)
    x, _ = _first_batch(setup_run(TrainConfig(model="alexnet", batch_size=4), model, mnist_small))
    assert x.shape == (4, 3, 96, 96)
    assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    off = TrainConfig(model="alexnet", batch_size=4, channels_last=False)
    x, _ = _first_batch(setup_run(off, build_model("alexnet", mnist_small), mnist_small))
    assert x.is_contiguous() and not x.is_contiguous(memory_format=torch.channels_last)


def test_flat_models_never_get_channels_last(mnist_small):
    transform = input_transform(build_model("mlp", mnist_small), mnist_small, TrainConfig())
    assert transform.channels_last is False


def test_norm_values_must_fit_the_channels(mnist_small):
    model = build_model("mlp", mnist_small)
    with pytest.raises(ConfigError, match="3 values; the model's input has 1 channel"):
        input_transform(model, mnist_small, TrainConfig(norm_mean=[0.1] * 3, norm_std=[1.0] * 3))


def test_norm_and_augment_are_refused_for_tabular_data():
    from trainlab.data import load_dataset

    data = load_dataset("linear", samples=100)
    model = build_model("linreg", data)
    with pytest.raises(ConfigError, match="apply to images"):
        setup_run(TrainConfig(model="linreg", norm_mean=[0.0], norm_std=[1.0]), model, data)
    with pytest.raises(ConfigError, match="--augment"):
        setup_run(TrainConfig(model="linreg", augment=True), model, data)


def test_loss_and_precision_follow_the_model(mnist_small):
    cnn, mlp = build_model("cnn", mnist_small), build_model("mlp", mnist_small, log_softmax=True)
    assert loss_kind(TrainConfig(), cnn, CLASSIFICATION) == "cross-entropy"
    assert loss_kind(TrainConfig(), mlp, CLASSIFICATION) == "nll"
    assert loss_kind(TrainConfig(loss="nll"), cnn, CLASSIFICATION) == "nll"
    cpu = torch.device("cpu")
    assert amp_policy("off", cnn, CLASSIFICATION, cpu) is None
    assert amp_policy("bf16", cnn, CLASSIFICATION, cpu) is torch.bfloat16
    assert amp_policy("auto", mlp, CLASSIFICATION, cpu) is None  # no convs: float32


def test_label_smoothing_reaches_the_nll_loss():
    from trainlab.engine.loop import loss_function

    logp = torch.log_softmax(torch.randn(8, 10), 1)
    y = torch.randint(0, 10, (8,))
    plain, smooth = loss_function("nll")(logp, y), loss_function("nll", 0.1)(logp, y)
    expected = 0.9 * -logp.gather(1, y[:, None]).sum() + 0.1 * -logp.mean(1).sum()
    assert smooth.item() == pytest.approx(expected.item(), rel=1e-5) and smooth != plain
