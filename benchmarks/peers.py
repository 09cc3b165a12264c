"""The peers trainlab is measured against, re-implemented from their descriptions.

Run as scripts (``python benchmarks/peers.py NAME ...``) so each is timed from process start,
with its own data pipeline: torchvision's MNIST dataset (through trainlab.compat, the same class
with an offline download), per-sample ToTensor/Normalize, and a DataLoader. Each prints one JSON
line per epoch: {"epoch", "seconds_since_start", "train_seconds", "test_acc"}.
"""

from __future__ import annotations

import json
import sys
import time

STARTED = time.perf_counter()

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402


def report(**fields) -> None:
    print(
        json.dumps(
            {
                "seconds_since_start": round(time.perf_counter() - STARTED, 3),
                "time": time.time(),
                **fields,
            }
        ),
        flush=True,
    )


def mnist(root: str, transform):
    from trainlab.compat import datasets

    return (
        datasets.MNIST(root, train=True, download=True, transform=transform),
        datasets.MNIST(root, train=False, download=True, transform=transform),
    )


class ExampleNet(nn.Module):
    """pytorch/examples mnist/main.py: 2 conv (32, 64) + dropout + 9216→128→10, log-softmax."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)


def test_accuracy(model, loader) -> float:
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for data, target in loader:
            correct += (model(data).argmax(1) == target).sum().item()
            total += len(target)
    return correct / total


def pytorch_example(root: str, max_epochs: int = 14, goal: float = 0.99) -> None:
    """Adadelta lr 1.0, StepLR(1, 0.7), batch 64 (test 1000), no shuffle on the CPU (the example
    only shuffles with an accelerator); stops once test accuracy reaches ``goal``."""
    from torchvision import transforms

    torch.manual_seed(1)
    transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
    )
    train_set, test_set = mnist(root, transform)
    train_loader = DataLoader(train_set, batch_size=64)
    test_loader = DataLoader(test_set, batch_size=1000)
    model = ExampleNet()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    for epoch in range(1, max_epochs + 1):
        model.train()
        began = time.perf_counter()
        for data, target in train_loader:
            optimizer.zero_grad()
            loss = F.nll_loss(model(data), target)
            loss.backward()
            optimizer.step()
        train_seconds = time.perf_counter() - began
        acc = test_accuracy(model, test_loader)
        scheduler.step()
        report(
            epoch=epoch,
            train_seconds=round(train_seconds, 3),
            test_acc=acc,
            images_per_s=round(60000 / train_seconds, 1),
        )
        if acc >= goal:
            return


def seed_mlp(root: str, epochs: int = 1) -> None:
    """Seed 002: MLP 784-512-256-10, log-softmax, NLL, Adam 0.01, batch 64, ToTensor+Normalize."""
    from torchvision import transforms

    torch.manual_seed(0)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    train_set, test_set = mnist(root, transform)
    train_loader = DataLoader(train_set, batch_size=64, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=1000)
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 512),
        nn.ReLU(),
        nn.Linear(512, 256),
        nn.ReLU(),
        nn.Linear(256, 10),
        nn.LogSoftmax(dim=1),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for epoch in range(1, epochs + 1):
        model.train()
        began = time.perf_counter()
        for inputs, targets in train_loader:
            optimizer.zero_grad()
            loss = F.nll_loss(model(inputs), targets)
            loss.backward()
            optimizer.step()
        train_seconds = time.perf_counter() - began
        report(
            epoch=epoch,
            train_seconds=round(train_seconds, 3),
            test_acc=test_accuracy(model, test_loader),
            images_per_s=round(60000 / train_seconds, 1),
        )


def seed_alexnet(root: str, batches: int = 3) -> None:
    """Seed 000's pipeline: PIL Resize(96) + Grayscale(3) + ToTensor + Normalize(0.2, 0.3) per
    sample, batch 512, AdamW 1e-4, torchvision AlexNet with the seeds' head; a few batches timed."""
    import torchvision
    from torchvision import transforms

    torch.manual_seed(0)
    transform = transforms.Compose(
        [
            transforms.Resize((96, 96)),
            transforms.Grayscale(3),
            transforms.ToTensor(),
            transforms.Normalize((0.2,) * 3, (0.3,) * 3),
        ]
    )
    train_set, _ = mnist(root, transform)
    loader = DataLoader(train_set, batch_size=512, shuffle=True)
    model = torchvision.models.alexnet(weights=None, dropout=0.3)
    model.classifier = nn.Sequential(
        nn.Dropout(0.3),
        nn.Linear(9216, 4096),
        nn.ReLU(inplace=True),
        nn.Dropout(0.3),
        nn.Linear(4096, 4096),
        nn.ReLU(inplace=True),
        nn.Linear(4096, 10),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    seen, began = 0, None
    for i, (img, target) in enumerate(loader):
        if i == 1:  # the first batch warms up allocators; time the rest
            began, seen = time.perf_counter(), 0
        loss = F.cross_entropy(model(img), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += len(target)
        if i == batches:
            break
    seconds = time.perf_counter() - began
    report(epoch=1, train_seconds=round(seconds, 3), images_per_s=round(seen / seconds, 1))


if __name__ == "__main__":
    name, root, *rest = sys.argv[1:]
    {"pytorch-example": pytorch_example, "seed-mlp": seed_mlp, "seed-alexnet": seed_alexnet}[name](
        root, *map(int, rest)
    )
