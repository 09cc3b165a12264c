import warnings

import pytest
import torch
from torch import nn

from trainlab import d2l


def test_accuracy_and_accumulator():
    y_hat = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert d2l.accuracy(y_hat, torch.tensor([1, 0, 0])) == 2.0
    acc = d2l.Accumulator(2)
    acc.add(1, 2)
    acc.add(3.5, torch.tensor(4))
    assert acc[0] == 4.5 and acc[1] == 6.0
    acc.reset()
    assert acc.data == [0.0, 0.0]


def test_load_array_reshuffles_each_pass_and_is_seeded():
    x, y = torch.arange(20.0).view(20, 1), torch.arange(20)
    torch.manual_seed(0)
    it = d2l.load_array((x, y), 5)
    first, second = [torch.cat([b for _, b in it]) for _ in range(2)]
    assert sorted(first.tolist()) == list(range(20)) and not torch.equal(first, second)
    torch.manual_seed(0)
    assert torch.equal(torch.cat([b for _, b in d2l.load_array((x, y), 5)]), first)
    fixed = d2l.load_array((x, y), 5, is_train=False)
    assert torch.cat([b for _, b in fixed]).tolist() == list(range(20))


def test_scratch_linear_regression_with_custom_updater():
    torch.manual_seed(0)
    features, labels = d2l.synthetic_data(torch.tensor([2, -3.4]), 4.2, 1000)
    w = torch.normal(0, 0.01, size=(2, 1), requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    for _ in range(3):
        for X, y in d2l.load_array((features, labels), 10):
            d2l.squared_loss(d2l.linreg(X, w, b), y).sum().backward()
            d2l.sgd([w, b], 0.03, 10)
    assert w.flatten().tolist() == pytest.approx([2, -3.4], abs=0.01)
    assert b.item() == pytest.approx(4.2, abs=0.01)


def test_train_epoch_ch3_weights_samples_not_batches():
    torch.manual_seed(0)
    x, y = torch.randn(25, 4), torch.randint(0, 3, (25,))
    net = nn.Linear(4, 3)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    mean_loss = nn.CrossEntropyLoss()  # mean-reduced: the book's sums of it were batch means
    updater = torch.optim.SGD(net.parameters(), lr=0.0)  # lr 0: measure, do not move
    loss, acc = d2l.train_epoch_ch3(
        net, d2l.load_array((x, y), 10, is_train=False), mean_loss, updater
    )
    with torch.no_grad():
        assert loss == pytest.approx(nn.functional.cross_entropy(net(x), y).item(), rel=1e-6)
        assert acc == pytest.approx((net(x).argmax(1) == y).float().mean().item())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_train_ch3_warns_instead_of_asserting(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    x, y = torch.randn(40, 4), torch.randint(0, 3, (40,))
    data = d2l.load_array((x, y), 10)
    net = nn.Linear(4, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d2l.train_ch3(
            net,
            data,
            data,
            nn.CrossEntropyLoss(reduction="none"),
            1,
            torch.optim.SGD(net.parameters(), lr=0.01),
        )
    assert any("the book asserts" in str(w.message) for w in caught)
    assert (tmp_path / "animator.png").exists()


def test_animator_terminal_mode_writes_png_and_lines(tmp_path, capsys):
    path = tmp_path / "plot.png"
    animator = d2l.Animator(xlabel="epoch", legend=["loss", "acc"], path=path)
    animator.add(1, (0.5, 0.8))
    animator.add(2, (0.3, None))
    err = capsys.readouterr().err
    assert err.count("live plot:") == 1 and "epoch 1: loss 0.5000  acc 0.8000" in err
    assert "epoch 2: loss 0.3000" in err
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert animator.X == [[1.0, 2.0], [1.0]]


def test_timer_and_devices(monkeypatch):
    clock = iter([10.0, 11.0, 20.0, 23.0])  # start, stop: 1 s; start, stop: 3 s
    monkeypatch.setattr(d2l.time, "time", lambda: next(clock))
    timer = d2l.Timer()
    timer.stop()
    timer.start()
    timer.stop()
    assert timer.times == [1.0, 3.0]
    assert (timer.sum(), timer.avg(), timer.cumsum()) == (4.0, 2.0, [1.0, 4.0])
    assert d2l.try_gpu(99) == torch.device("cpu")
    expected = [torch.device(f"cuda:{i}") for i in range(torch.cuda.device_count())]
    assert d2l.try_all_gpus() == (expected or [torch.device("cpu")])


def test_data_loaders_give_images_in_unit_range(mnist_root, monkeypatch):
    monkeypatch.setenv("TRAINLAB_DATA", str(mnist_root))
    train_iter, test_iter = d2l.load_data_mnist(32, resize=64)
    x, y = next(iter(train_iter))
    assert x.shape == (32, 1, 64, 64) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert test_iter.num_samples == 10000
