"""A folder of images, trainlab against the pipeline people write instead.

The folder: Fashion-MNIST (Debian's dataset-fashion-mnist) written as RGB PNGs with a tint, in
ImageFolder's layout, trained at 32×32. The peer: torchvision's ``ImageFolder`` with
``Resize(32)``, ``CenterCrop(32)``, ``ToTensor()`` and ``Normalize``, a
``DataLoader(num_workers=2, shuffle=True)``, the same model (trainlab's default ``cnn``), batch
(64), optimizer (SGD 0.1, Nesterov momentum 0.9, weight decay 5e-4) and loss (cross-entropy,
label smoothing 0.1). Both are timed per epoch; trainlab's first run also reports its decode.

The peer runs in a process of its own, as a user's script would: with glibc's malloc as it comes
(``tuned=False``), and again with the thresholds trainlab sets for itself (engine/allocator.py)
given through glibc's environment variables (``tuned=True``), which shows how much of the gap is
the allocator and how much the pipeline.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np


def make_folder(root: Path, data_root: str, train: int, test: int) -> Path:
    from PIL import Image

    from trainlab.data import load_dataset

    data = load_dataset("fashion-mnist", data_root, sources=("local", "system"))
    data = data.subset(train, test)
    names = [c.replace("/", " or ") for c in data.classes]
    for split, xs, ys in (
        ("train", data.train_x, data.train_y),
        ("test", data.test_x, data.test_y),
    ):
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            ink = x[0].numpy().astype(np.float32)[..., None] / 255
            rgb = (255 - 255 * ink * np.array([1.0, 0.75, 0.5])).astype(np.uint8)
            folder = root / split / names[int(y)]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rgb).save(folder / f"{i:05d}.png")
    return root


def trainlab_epochs(
    folder: Path, runs: Path, cache: Path, epochs: int = 3, fused: bool = True
) -> dict:
    """One `trainlab train` process; its decode (or cache) time and each epoch's seconds.
    ``fused=False`` runs it with TRAINLAB_FUSED=0 (PyTorch's pool, batch-norm and ReLU kernels
    instead of models/stage.c), to show what the fused kernel adds."""
    import os

    cache.mkdir(exist_ok=True)
    began = time.perf_counter()
    command = [
        sys.executable,
        "-m",
        "trainlab",
        "train",
        "--dataset",
        str(folder),
        "--image-size",
        "32",
        "--epochs",
        str(epochs),
        "--device",
        "cpu",
        "--runs-dir",
        str(runs),
        "--data-dir",
        str(cache),
        "--json",
        "--quiet",
    ]
    env = {**os.environ, "TRAINLAB_FUSED": "1" if fused else "0"}
    proc = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=3600, env=env
    )
    total = time.perf_counter() - began
    result = json.loads(proc.stdout)
    loaded = re.search(r"folder loaded in ([\d.]+) s", proc.stderr)
    rows = [json.loads(line) for line in (Path(result["run_dir"]) / "metrics.jsonl").open()]
    config = tomllib.loads((Path(result["run_dir"]) / "config.toml").read_text())
    environment = config["environment"]
    training = sum(r["seconds"] for r in rows)
    return {
        "process_seconds": round(total, 2),
        "loading_seconds": round(total - training, 2),  # start-up, decode or cache, split
        "folder_load_seconds": float(loaded.group(1)),  # scan, decode or cache, split
        # training only, as the peer's loop (which evaluates nothing) is timed
        "epoch_seconds": [r["train_seconds"] for r in rows],
        "test_acc": rows[-1]["test_acc"],
        "allocator": environment["allocator"],
        "stage_kernel": environment["stage_kernel"],
    }


PEER_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(64 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def imagefolder_epochs(folder: Path, epochs: int = 3, tuned: bool = False) -> dict:
    """The peer in a fresh process: its per-epoch seconds."""

    from trainlab.engine.threads import environment_as_given  # the user's, not trainlab's

    env = {**environment_as_given(), "TRAINLAB_MALLOC": "system", **(PEER_MALLOC if tuned else {})}
    if not tuned:
        for name in PEER_MALLOC:
            env.pop(name, None)
    command = [sys.executable, __file__, "--peer", str(folder), str(epochs)]
    proc = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=3600, env=env
    )
    return json.loads(proc.stdout)


def _imagefolder_loop(folder: Path, epochs: int) -> dict:
    import torch
    import torch.nn.functional as F
    from torchvision import datasets, transforms

    from trainlab import build_model

    torch.manual_seed(0)
    prepare = transforms.Compose(
        [
            transforms.Resize(32),
            transforms.CenterCrop(32),
            transforms.ToTensor(),
            transforms.Normalize([0.5, 0.5, 0.5], [0.25, 0.25, 0.25]),
        ]
    )
    train = datasets.ImageFolder(str(folder / "train"), transform=prepare)
    loader = torch.utils.data.DataLoader(train, batch_size=64, shuffle=True, num_workers=2)
    model = build_model("cnn", input_shape=(3, 32, 32), outputs=len(train.classes))
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    seconds = []
    for _ in range(epochs):
        began = time.perf_counter()
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y, label_smoothing=0.1).backward()
            optimizer.step()
        seconds.append(round(time.perf_counter() - began, 3))
    return {"epoch_seconds": seconds}


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--peer":
        print(json.dumps(_imagefolder_loop(Path(sys.argv[2]), int(sys.argv[3]))))
    else:
        sys.exit(f"usage: {sys.argv[0]} --peer FOLDER EPOCHS (bench.py's folder measure runs it)")
