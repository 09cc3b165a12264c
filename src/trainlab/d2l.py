"""The d2l book's training API — the names the seeds use — as thin wrappers over trainlab's engine.

Example (tutorial code runs with only its import line changed):
    >>> from trainlab import d2l                     # was: from d2l import torch as d2l
    >>> train_iter, test_iter = d2l.load_data_fashion_mnist(256)
    >>> d2l.train_ch6(net, train_iter, test_iter, num_epochs=10, lr=0.9, device=d2l.try_gpu())

Same signatures and semantics as the book, with its defects fixed:

- Loss and accuracy are counted over samples: a mean-reduced loss is weighted by its batch size,
  so averages are never a mean of batch means, and a short last batch counts for what it holds.
- ``train_ch6`` does not ``print(y_hat)`` for every batch; metrics are summed on the device and
  read once per epoch (and at the five plot points), not with ``float()`` per batch.
- ``train_ch3``'s asserts (``train_loss < 0.5``…) are warnings, not crashes.
- ``Animator`` needs no display and never blocks: in Jupyter it updates one figure in place;
  elsewhere it rewrites a PNG (path printed once) and prints one line per point.
- The seeds' ``Animator`` calls ``display.display`` without importing IPython's ``display``:
  ``from trainlab.d2l import display`` supplies one that works in and out of notebooks.
- ``try_gpu`` also finds Apple's MPS; data loaders keep MNIST in memory instead of decoding PIL
  images one by one; no numpy==1.23.5 pin (the d2l package no longer installs on current Python).
- A custom ``updater`` with a mean-reduced loss gets the summed gradient it expects (the book's
  ``l.sum()`` of a scalar silently divided the step by the batch size).
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from trainlab.data import Batches, InputTransform, load_dataset
from trainlab.data.synthetic import synthetic_data as _synthetic_data
from trainlab.engine.device import accelerator, all_accelerators, module_device
from trainlab.engine.loop import EpochState, evaluate, train_one_epoch
from trainlab.engine.metrics import Counts
from trainlab.errors import ConfigError
from trainlab.models import init_weights
from trainlab.report.live import LivePlot, in_notebook

__all__ = [
    "Accumulator",
    "Animator",
    "Residual",
    "Timer",
    "accuracy",
    "corr2d",
    "display",
    "evaluate_accuracy",
    "evaluate_accuracy_gpu",
    "evaluate_loss",
    "get_dataloader_workers",
    "get_fashion_mnist_labels",
    "linreg",
    "load_array",
    "load_data_fashion_mnist",
    "load_data_mnist",
    "plot",
    "predict_ch3",
    "set_axes",
    "set_figsize",
    "sgd",
    "show_images",
    "squared_loss",
    "synthetic_data",
    "train_ch3",
    "train_ch6",
    "train_epoch_ch3",
    "try_all_gpus",
    "try_gpu",
    "use_svg_display",
]


# --- data ------------------------------------------------------------------------------------
def synthetic_data(w, b, num_examples):
    """y = Xw + b + N(0, 0.01²); returns (X, y) with y as a column."""
    return _synthetic_data(torch.as_tensor(w, dtype=torch.float32), b, num_examples)


def load_array(data_arrays, batch_size, is_train=True):
    """Batches over in-memory tensors; shuffled (newly each pass) when ``is_train``."""
    features, labels = data_arrays
    seed = int(
        torch.randint(0, 2**31 - 1, ()).item()
    )  # follows torch.manual_seed, like a DataLoader
    return Batches(features, labels, batch_size, shuffle=is_train, seed=seed)


def _load_images(name: str, batch_size: int, resize=None):
    data = load_dataset(name)
    subset = os.environ.get("TRAINLAB_D2L_SUBSET")  # "TRAIN[,TEST]": quick runs of a chapter
    if subset:
        try:
            sizes = [int(v) for v in subset.split(",")]
        except ValueError:
            raise ConfigError(
                f"TRAINLAB_D2L_SUBSET={subset!r}: expected TRAIN or TRAIN,TEST image counts, "
                "e.g. 2000 or 2000,500"
            ) from None
        train_n = sizes[0]
        test_n = sizes[1] if len(sizes) > 1 else max(train_n // 6, 1)
        data = data.subset(train_n, test_n, seed=0)
    size = (resize, resize) if isinstance(resize, int) else resize
    transform = InputTransform(size=tuple(size) if size else None)  # ToTensor: [0, 1], no normalise
    seed = int(torch.randint(0, 2**31 - 1, ()).item())
    return (
        Batches(
            data.train_x, data.train_y, batch_size, shuffle=True, seed=seed, transform=transform
        ),
        Batches(data.test_x, data.test_y, batch_size, transform=transform),
    )


def load_data_fashion_mnist(batch_size, resize=None):
    """(train_iter, test_iter) over Fashion-MNIST, images in [0, 1], optionally resized."""
    return _load_images("fashion-mnist", batch_size, resize)


def load_data_mnist(batch_size, resize=None):
    """(train_iter, test_iter) over MNIST, images in [0, 1], optionally resized."""
    return _load_images("mnist", batch_size, resize)


def get_dataloader_workers():
    """The book's worker count; trainlab's batches come from memory, so no workers are used."""
    return 4


FASHION_MNIST_LABELS = [
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
]


def get_fashion_mnist_labels(labels):
    """The text labels of Fashion-MNIST class indices (the book's names)."""
    return [FASHION_MNIST_LABELS[int(i)] for i in labels]


# --- scratch models --------------------------------------------------------------------------
def linreg(X, w, b):
    return torch.matmul(X, w) + b


def squared_loss(y_hat, y):
    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2


def sgd(params, lr, batch_size):
    """Minibatch SGD on summed gradients: p -= lr * grad / batch_size, then clear the grads."""
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()


# --- metrics ---------------------------------------------------------------------------------
def accuracy(y_hat, y):
    """Number of correct predictions (a float, as in the book)."""
    if len(y_hat.shape) > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(axis=1)
    cmp = y_hat.type(y.dtype) == y
    return float(cmp.type(y.dtype).sum())


class Accumulator:
    """Sums of n variables."""

    def __init__(self, n):
        self.data = [0.0] * n

    def add(self, *args):
        self.data = [a + float(b) for a, b in zip(self.data, args, strict=False)]

    def reset(self):
        self.data = [0.0] * len(self.data)

    def __getitem__(self, idx):
        return self.data[idx]


def evaluate_accuracy(net, data_iter):
    """Accuracy of ``net`` over ``data_iter`` (counted over samples)."""
    return evaluate(net, data_iter, None, None).accuracy or 0.0


def evaluate_accuracy_gpu(net, data_iter, device=None):
    """``evaluate_accuracy`` with the data moved to ``device`` (default: the net's)."""
    if device is not None and isinstance(net, nn.Module):
        net.to(device)
    return evaluate_accuracy(net, data_iter)


def _summed(loss):
    """A loss as the engine wants it: summed over the batch, whatever its reduction."""

    def loss_sum(y_hat, y):
        value = loss(y_hat, y)
        return value.sum() if value.dim() else value * len(y)

    return loss_sum


def train_epoch_ch3(net, train_iter, loss, updater):
    """One epoch; ``updater``: a torch optimizer or ``updater(batch_size)``. -> (loss, acc)."""
    state = EpochState(epoch=0, batch=0, counts=Counts(None, module_device(net)))
    train_one_epoch(net, train_iter, updater, _summed(loss), state)
    metrics = state.counts.read()
    return metrics.loss, metrics.accuracy or 0.0


def evaluate_loss(net, data_iter, loss):
    """The loss of ``net`` over ``data_iter``, averaged over samples (a mean-reduced loss is
    weighted by its batch size, so a short last batch counts for what it holds)."""
    return evaluate(net, data_iter, _summed(loss), None).loss


def predict_ch3(net, test_iter, n=6):
    """Show the first ``n`` test images with their true and predicted labels."""
    X, y = next(iter(test_iter))
    X, y = X.cpu(), y.cpu()
    with torch.no_grad():
        preds = net(X.to(module_device(net))).argmax(axis=1).cpu()
    titles = [
        true + "\n" + pred
        for true, pred in zip(
            get_fashion_mnist_labels(y), get_fashion_mnist_labels(preds), strict=True
        )
    ]
    return show_images(X[0:n].reshape((n, X.shape[-2], X.shape[-1])), 1, n, titles=titles[0:n])


def corr2d(X, K):
    """Two-dimensional cross-correlation (what conv layers compute)."""
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
    return Y


class Residual(nn.Module):
    """ResNet's residual block (two 3x3 convs with batch norm, optional 1x1 shortcut)."""

    def __init__(self, input_channels, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(
            input_channels, num_channels, kernel_size=3, padding=1, stride=strides
        )
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        self.conv3 = (
            nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides)
            if use_1x1conv
            else None
        )
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.bn2 = nn.BatchNorm2d(num_channels)

    def forward(self, X):
        Y = torch.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3 is not None:
            X = self.conv3(X)
        return torch.relu(Y + X)


# --- plotting --------------------------------------------------------------------------------
class Animator(LivePlot):
    """d2l's Animator: same arguments; works in Jupyter, in a terminal and headless."""


def use_svg_display():
    """Vector figures in Jupyter; nothing to do elsewhere."""
    if in_notebook():
        from matplotlib_inline import backend_inline

        backend_inline.set_matplotlib_formats("svg")


def set_figsize(figsize=(3.5, 2.5)):
    use_svg_display()
    __getattr__("plt").rcParams["figure.figsize"] = figsize


def set_axes(axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend):
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_xscale(xscale)
    axes.set_yscale(yscale)
    axes.set_xlim(xlim)
    axes.set_ylim(ylim)
    if legend:
        axes.legend(legend)
    axes.grid()


def _has_one_axis(X):
    return (hasattr(X, "ndim") and X.ndim == 1) or (
        isinstance(X, list) and not hasattr(X[0], "__len__")
    )


def _plain(values):
    """Tensors (also ones needing grad) as arrays matplotlib can draw."""
    if torch.is_tensor(values):
        return values.detach().cpu().numpy()
    if isinstance(values, list | tuple):
        return [_plain(v) for v in values]
    return values


def plot(
    X,
    Y=None,
    xlabel=None,
    ylabel=None,
    legend=None,
    xlim=None,
    ylim=None,
    xscale="linear",
    yscale="linear",
    fmts=("-", "m--", "g-.", "r:"),
    figsize=(3.5, 2.5),
    axes=None,
):
    """Plot data points (the book's signature). Outside Jupyter the figure is written to
    plot.png instead of opening a window, so scripts run without a display."""
    plt = __getattr__("plt")
    X, Y = _plain(X), _plain(Y)
    if legend is None:
        legend = []
    set_figsize(figsize)
    axes = axes if axes else plt.gca()
    if _has_one_axis(X):
        X = [X]
    if Y is None:
        X, Y = [[]] * len(X), X
    elif _has_one_axis(Y):
        Y = [Y]
    if len(X) != len(Y):
        X = X * len(Y)
    axes.cla()
    for x, y, fmt in zip(X, Y, fmts, strict=False):
        if len(x):
            axes.plot(x, y, fmt)
        else:
            axes.plot(y, fmt)
    set_axes(axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend)
    _show(plt.gcf(), "plot.png")
    return axes


def show_images(imgs, num_rows, num_cols, titles=None, scale=1.5):
    """A grid of images with optional titles (the book's signature); returns the axes."""
    plt = __getattr__("plt")
    figsize = (num_cols * scale, num_rows * scale)
    _, axes = plt.subplots(num_rows, num_cols, figsize=figsize)
    axes = np.array(axes).flatten()
    for i, (ax, img) in enumerate(zip(axes, imgs, strict=False)):
        ax.imshow(_plain(img) if torch.is_tensor(img) else img)
        ax.axes.get_xaxis().set_visible(False)
        ax.axes.get_yaxis().set_visible(False)
        if titles:
            ax.set_title(titles[i])
    _show(plt.gcf(), "images.png")
    return axes


def _show(figure, name: str) -> None:
    """In Jupyter the inline backend shows the figure; elsewhere it is written to ``name``."""
    if in_notebook():
        return
    figure.savefig(name, dpi=100, bbox_inches="tight")
    if name not in _ANNOUNCED:
        print(f"figure written to {name} (no display here)", flush=True)
        _ANNOUNCED.add(name)


_ANNOUNCED: set[str] = set()


class _Display:
    """IPython's ``display`` in a notebook; elsewhere figures go to animator.png, never a window."""

    def __init__(self) -> None:
        self._announced = False

    def display(self, *objs: Any, **kwargs: Any) -> None:
        if in_notebook():
            from IPython import display as ipython_display

            ipython_display.display(*objs, **kwargs)
            return
        for obj in objs:
            if hasattr(obj, "savefig"):
                obj.savefig("animator.png", dpi=100, bbox_inches="tight")
                if not self._announced:
                    print("figure written to animator.png (no display here)", flush=True)
                    self._announced = True

    def clear_output(self, wait: bool = False) -> None:
        if in_notebook():
            from IPython import display as ipython_display

            ipython_display.clear_output(wait=wait)


display = _Display()


class Timer:
    """Record running times."""

    def __init__(self):
        self.times = []
        self.start()

    def start(self):
        self.tik = time.time()

    def stop(self):
        self.times.append(time.time() - self.tik)
        return self.times[-1]

    def avg(self):
        return sum(self.times) / len(self.times)

    def sum(self):
        return sum(self.times)

    def cumsum(self):
        return np.array(self.times).cumsum().tolist()


# --- devices ---------------------------------------------------------------------------------
def try_gpu(i=0):
    """cuda:i if it exists, else Apple's MPS (for i = 0) if available, else the CPU."""
    return accelerator(i)


def try_all_gpus():
    return all_accelerators()


# --- training loops --------------------------------------------------------------------------
def train_ch3(net, train_iter, test_iter, loss, num_epochs, updater):
    """Train and plot train loss/acc and test acc per epoch. Returns the last epoch's figures."""
    animator = Animator(
        xlabel="epoch",
        xlim=[1, num_epochs],
        ylim=[0.3, 0.9],
        legend=["train loss", "train acc", "test acc"],
    )
    train_loss, train_acc, test_acc = float("nan"), 0.0, 0.0
    for epoch in range(num_epochs):
        train_loss, train_acc = train_epoch_ch3(net, train_iter, loss, updater)
        test_acc = evaluate_accuracy(net, test_iter)
        animator.add(epoch + 1, (train_loss, train_acc, test_acc))
    # the book's train_ch3 only plots; the figures are printed too, as train_ch6 does
    print(f"loss {train_loss:.3f}, train acc {train_acc:.3f}, test acc {test_acc:.3f}")
    for ok, what in (
        (train_loss < 0.5, f"train loss {train_loss:.3f} is not below 0.5"),
        (0.7 < train_acc <= 1, f"train acc {train_acc:.3f} is not above 0.7"),
        (0.7 < test_acc <= 1, f"test acc {test_acc:.3f} is not above 0.7"),
    ):
        if not ok:
            warnings.warn(f"train_ch3: {what} (the book asserts this)", stacklevel=2)
    return train_loss, train_acc, test_acc


def train_ch6(net, train_iter, test_iter, num_epochs, lr, device):
    """Train with xavier init, SGD and cross-entropy on ``device``, plotting as the book does."""

    init_weights(net, "xavier")
    print("training on", device)
    net.to(device)
    if isinstance(train_iter, Batches):
        train_iter, test_iter = train_iter.to(device), test_iter.to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loss = nn.CrossEntropyLoss()
    animator = Animator(
        xlabel="epoch", xlim=[1, num_epochs], legend=["train loss", "train acc", "test acc"]
    )
    timer, num_batches = Timer(), len(train_iter)
    plot_every = max(num_batches // 5, 1)
    train_l = train_acc = test_acc = float("nan")
    samples = 0
    for epoch in range(num_epochs):
        state = EpochState(epoch=epoch, batch=0, counts=Counts(None, torch.device(device)))

        def on_batch(s: EpochState, _loss_sum: torch.Tensor) -> None:
            if s.batch % plot_every == 0 or s.batch == num_batches:
                m = s.counts.read()  # five syncs an epoch, for the plot
                animator.add(s.epoch + s.batch / num_batches, (m.loss, m.accuracy, None))

        timer.start()
        train_one_epoch(net, train_iter, optimizer, _summed(loss), state, on_batch=on_batch)
        timer.stop()
        metrics = state.counts.read()
        train_l, train_acc, samples = metrics.loss, metrics.accuracy or 0.0, metrics.n
        test_acc = evaluate_accuracy_gpu(net, test_iter)
        animator.add(epoch + 1, (None, None, test_acc))
    print(f"loss {train_l:.3f}, train acc {train_acc:.3f}, test acc {test_acc:.3f}")
    print(f"{samples * num_epochs / timer.sum():.1f} examples/sec on {str(device)}")
    return train_l, train_acc, test_acc


# The book's tensor aliases (``d2l.reshape(x, ...)``, ``d2l.float32``...), as d2l's torch.py has.
ones, zeros, tensor, arange = torch.ones, torch.zeros, torch.tensor, torch.arange
meshgrid, sin, sinh, cos, cosh, tanh = (
    torch.meshgrid,
    torch.sin,
    torch.sinh,
    torch.cos,
    torch.cosh,
    torch.tanh,
)
linspace, exp, log, normal, rand, randn = (
    torch.linspace,
    torch.exp,
    torch.log,
    torch.normal,
    torch.rand,
    torch.randn,
)
matmul, int32, float32, concat, stack, abs, eye = (  # noqa: A001 - the book's names
    torch.matmul,
    torch.int32,
    torch.float32,
    torch.cat,
    torch.stack,
    torch.abs,
    torch.eye,
)


def numpy(x, *args, **kwargs):
    return x.detach().numpy(*args, **kwargs)


def size(x, *args, **kwargs):
    return x.numel(*args, **kwargs)


def reshape(x, *args, **kwargs):
    return x.reshape(*args, **kwargs)


def to(x, *args, **kwargs):
    return x.to(*args, **kwargs)


def reduce_sum(x, *args, **kwargs):
    return x.sum(*args, **kwargs)


def argmax(x, *args, **kwargs):
    return x.argmax(*args, **kwargs)


def astype(x, *args, **kwargs):
    return x.type(*args, **kwargs)


def transpose(x, *args, **kwargs):
    return x.t(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "plt":
        from trainlab.report.live import pyplot

        return pyplot()
    raise AttributeError(
        f"module 'trainlab.d2l' has no attribute '{name}'. trainlab.d2l covers the book's "
        "chapters from linear networks through modern CNNs; see docs/tutorials/d2l.md."
    )
