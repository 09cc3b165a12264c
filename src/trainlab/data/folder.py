"""A folder of your own images as a dataset: ``trainlab train --dataset path/to/photos``.

Example:
    >>> from trainlab.data import load_dataset
    >>> data = load_dataset("photos/")          # photos/<class>/*.jpg, or photos/train/<class>/...
    >>> data.classes, data.input_shape
    (['cat', 'dog'], (3, 64, 64))

Layout, as torchvision's ImageFolder reads it: ``PATH/<class>/...``, or ``PATH/train/<class>/``
with ``val/`` and ``test/`` beside it. Without a test folder a stratified, seeded test split is
cut (``--test-split``). Class names are the folder names as written. Hidden files, non-images,
unreadable images, empty class folders and a class far smaller than the others are reported in
one summary line, never a crash (``--strict`` makes them an error).

Every image goes through one ``ResizePolicy`` (the shorter side to the size, then a centre crop;
or ``pad``), recorded with the run, so eval, predict, export and serve see what training saw.
Images are decoded once, in parallel, and cached as uint8 tensors keyed by each file's path,
size and modification time: a second run decodes only what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import torch

from trainlab.data.dataset import Dataset, stratified_pick
from trainlab.data.images import MAX_PIXELS, ResizePolicy, open_image, read_for
from trainlab.data.registry import register_dataset
from trainlab.data.root import IMAGE_SUFFIXES
from trainlab.errors import DataError
from trainlab.options import Opt

MAX_DEFAULT_SIZE = 64  # the default size: the median shorter side, at most this (CPU-friendly)
SPLITS = ("train", "val", "test")


@dataclass
class Layout:
    classes: list[str]
    files: dict[str, list[tuple[Path, int]]]  # split -> (file, class index)
    skipped: list[Path]  # hidden and non-image files
    empty: list[str]  # class folders without images (left out)


def scan(root: Path) -> Layout:
    """The folder's splits, classes and files (sorted), and what is not an image."""
    split_dirs = {s: root / s for s in SPLITS if (root / s).is_dir()}
    if "train" not in split_dirs:
        split_dirs = {"train": root}
    skipped: list[Path] = []
    found: dict[str, dict[str, list[Path]]] = {}
    for split, folder in split_dirs.items():
        for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            if class_dir.name.startswith("."):
                continue
            images = []
            for f, hidden in _walk(class_dir):
                if hidden or os.path.splitext(f)[1].lower() not in IMAGE_SUFFIXES:
                    skipped.append(f)
                else:
                    images.append(f)
            found.setdefault(split, {})[class_dir.name] = images
        skipped += [f for f in folder.iterdir() if f.is_file()]
    names = sorted({c for per in found.values() for c, images in per.items()})
    train = found.get("train", {})
    empty = [c for c in names if not train.get(c)]
    classes = [c for c in names if c not in empty]
    if len(classes) < 2:
        raise DataError(
            f"{root}: a folder dataset needs class folders with images in them (PATH/<class>/ "
            f"or PATH/train/<class>/); found {len(classes)} with images"
            + (f" ({', '.join(classes)})" if classes else "")
            + ". Put each class's images in a folder of its own."
        )
    index = {c: i for i, c in enumerate(classes)}
    files = {
        split: [(f, index[c]) for c in classes for f in per.get(c, [])]
        for split, per in found.items()
    }
    return Layout(classes, files, skipped, empty)


_STATS: dict[str, tuple[str, int, int]] = {}  # what the last scan saw of each file


def _walk(folder: str | Path, hidden: bool = False):
    """(file, hidden) below ``folder``, sorted, each file's stat kept from the directory scan."""
    with os.scandir(folder) as entries:
        entries = sorted(entries, key=lambda e: e.name)
    for entry in entries:
        inside = hidden or entry.name.startswith(".")
        if entry.is_dir(follow_symlinks=True):
            yield from _walk(entry.path, inside)
        elif entry.is_file(follow_symlinks=True):
            stat = entry.stat()
            _STATS[entry.path] = (entry.path, stat.st_size, stat.st_mtime_ns)
            yield entry.path, inside  # a str: 12,000 Path objects cost more than the walk


def _key(path: Path) -> tuple[str, int, int]:
    known = _STATS.get(str(path))
    if known is not None:
        return known
    stat = path.stat()
    return (str(path), stat.st_size, stat.st_mtime_ns)


def _default_size(paths: list[Path]) -> int:
    sides = []
    for path in paths[:: max(1, len(paths) // 200)]:  # headers only, up to ~200 of them
        try:
            with open_image(path) as image:
                sides.append(min(image.size))
        except Exception:  # noqa: BLE001 - unreadable files are reported when decoded
            continue
    return int(min(MAX_DEFAULT_SIZE, max(8, np.median(sides)))) if sides else 32


def _is_colour(paths: list[Path]) -> bool:
    for path in paths[:: max(1, len(paths) // 200)]:
        try:
            with open_image(path) as image:
                if image.size[0] * image.size[1] > MAX_PIXELS:
                    continue  # refused when it is decoded: not decoded here either
                if image.mode not in ("L", "1", "I;16", "I", "F", "LA"):
                    rgb = np.asarray(image.convert("RGB").resize((16, 16)), dtype=np.int16)
                    if np.abs(rgb - rgb.mean(-1, keepdims=True)).max() > 2:
                        return True
        except Exception:  # noqa: BLE001
            continue
    return False


class _Cache:
    """Decoded images of one folder and policy, kept under the data root, row per file."""

    @staticmethod
    def where(folder: Path, policy: ResizePolicy, data_dir) -> Path:
        """The cache's path (without suffix) for this folder and policy, under the data root."""
        from trainlab.data.root import default_root, resolve_root

        root = resolve_root(data_dir) if data_dir or os.environ.get("TRAINLAB_DATA") else None
        if root is None or not os.access(root, os.W_OK):
            root = default_root()
        digest = hashlib.sha256(json.dumps([str(folder), policy.to_dict()]).encode()).hexdigest()
        return root / "folder-cache" / digest[:24]

    def __init__(self, folder: Path, policy: ResizePolicy, data_dir):
        self.path = self.where(folder, policy, data_dir).with_suffix(".pt")
        self.rows: dict[tuple, np.ndarray] = {}
        if self.path.is_file():
            try:
                saved = torch.load(self.path, weights_only=True)
                images = saved["images"].numpy()
                keys = json.loads(saved["keys"])
                self.rows = {tuple(key): images[i] for i, key in enumerate(keys)}
            except Exception:  # noqa: BLE001 - a damaged cache is only a cache: decode again
                self.rows = {}

    def save(self, keys: list[tuple], images: list[np.ndarray]) -> None:
        from trainlab.fsutil import atomic_write

        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"keys": json.dumps(keys), "images": torch.from_numpy(np.stack(images))}
        atomic_write(self.path, lambda tmp: torch.save(payload, tmp))


def _decode_all(paths, policy, cache: _Cache, say) -> tuple[list, list[str], int]:
    """Every file through ``policy`` (from the cache where unchanged), in parallel."""
    from tqdm import tqdm

    keys = [_key(p) for p in paths]
    todo = [i for i, k in enumerate(keys) if k not in cache.rows]
    images: list[np.ndarray | None] = [cache.rows.get(k) for k in keys]
    problems: list[str] = []

    def decode(i: int):
        try:
            return i, read_for(policy, paths[i]), None
        except Exception as e:  # noqa: BLE001 - an unreadable file is reported, not fatal
            return i, None, f"{paths[i]}: {str(e).split(': ', 1)[-1]}"

    if todo:
        bar = tqdm(
            total=len(todo),
            desc="decoding",
            unit="img",
            file=sys.stderr,
            disable=not sys.stderr.isatty(),
            leave=False,
        )
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            for i, image, problem in pool.map(decode, todo):
                images[i] = image
                if problem:
                    problems.append(problem)
                bar.update()
        bar.close()
    good = [i for i, im in enumerate(images) if im is not None]
    if todo:
        cache.save([keys[i] for i in good], [images[i] for i in good])
    say(f"decoded {len(todo)} of {len(paths)} images ({len(paths) - len(todo)} from the cache)")
    return images, problems, len(todo)


def _is_folder_path(name: str) -> bool:
    """``--dataset PATH``: a value with a path separator, or an existing folder."""
    return "/" in name or os.sep in name or os.path.isdir(name)


@register_dataset(
    "folder",
    kind="images",
    summary="a folder of your own images (--dataset PATH)",
    claims=_is_folder_path,
    shown_as="PATH/ (a folder of your own images)",
    val_split=0.1,
)
def load_folder(
    ctx,
    image_size: Annotated[
        list[int],
        Opt(
            "folders: image size N (or H W); none: the median side, at most 64",
            low=4,
            high=4096,
            metavar="N",
        ),
    ] = (),
    channels: Annotated[
        int,
        Opt("folders: 1 (grey) or 3 (RGB); 0: 3 if any image is in colour", choices=(0, 1, 3)),
    ] = 0,
    resize: Annotated[
        str, Opt("folders: crop (shorter side, centre crop) or pad", choices=("crop", "pad"))
    ] = "crop",
    test_split: Annotated[
        float,
        Opt("folders without test/: the stratified fraction held out to test", low=0.01, high=0.9),
    ] = 0.2,
    strict: Annotated[bool, Opt("folders: stray or unreadable files are an error")] = False,
    memory_budget_mb: Annotated[
        int,
        Opt(
            "folders: past this many MB of decoded images, a memory-mapped cache file "
            "(0: half the memory available)",
            low=0,
        ),
    ] = 0,
) -> Dataset:
    import time

    began = time.perf_counter()
    folder = Path(ctx.path).expanduser().resolve()
    if not ctx.path or not folder.is_dir():
        raise DataError(
            f"--dataset {ctx.path or 'folder'}: no such folder; give the path of a folder of "
            "class folders (PATH/<class>/...)."
        )
    layout = scan(folder)
    all_files = [f for split in layout.files.values() for f, _ in split]
    say = ctx.say
    policy = _policy(folder, layout, all_files, image_size, channels, resize, say)
    labels = np.array([label for split in layout.files.values() for _, label in split])
    split_of = [split for split, pairs in layout.files.items() for _ in pairs]
    rows = _Rows(folder, policy, ctx.data_dir, all_files, memory_budget_mb, say)
    _report(layout, rows.problems, strict, say, folder)
    index = _split_indices(split_of, rows.readable, labels, test_split, ctx.seed, layout.classes)
    order = [name for name in ("train", "val", "test") if name in index]
    parts = rows.take([index[name] for name in order])
    tensors = {
        name: (x, torch.from_numpy(labels[index[name]]).long())
        for name, x in zip(order, parts, strict=True)
    }
    train_x, train_y = tensors["train"]
    test_x, test_y = tensors["test"]
    mean, std = chunked_stats(train_x)
    val = tensors.get("val")
    say(f"folder loaded in {time.perf_counter() - began:.2f} s")
    return Dataset(
        str(folder),
        train_x,
        train_y,
        test_x,
        test_y,
        classes=layout.classes,
        mean=mean,
        std=std,
        val_x=val[0] if val else None,
        val_y=val[1] if val else None,
        info={
            "preprocess": policy.to_dict(),
            "folder": str(folder),
            "settings": {"data_seed": ctx.seed},
        },
    )


def _policy(folder, layout, files, image_size, channels, resize, say) -> ResizePolicy:
    """The resize policy: the sizes and channels asked for, else chosen from the folder."""
    size = list(image_size) or [_default_size(files)]
    policy = ResizePolicy((size[0], size[-1]), channels or (3 if _is_colour(files) else 1), resize)
    say(
        f"folder {folder}: {len(layout.classes)} classes, {len(files)} images, "
        f"{policy.channels}×{policy.size[0]}×{policy.size[1]} ({policy.mode}"
        + ("" if image_size else f", the median side, capped at {MAX_DEFAULT_SIZE}")
        + ")"
    )
    return policy


class _Rows:
    """Every file's decoded row: in memory (with the per-file cache), or past the memory
    budget in a memory-mapped file (estimated first, and said)."""

    def __init__(self, folder, policy, data_dir, files, budget_mb: int, say):
        estimate = len(files) * policy.channels * policy.size[0] * policy.size[1]
        budget = budget_mb * 1_000_000 if budget_mb else _default_budget()
        self.mapped, self.policy = estimate > budget, policy
        say(
            f"decoded size {estimate / 1e6:,.0f} MB: "
            + (
                f"over the memory budget ({budget / 1e6:,.0f} MB): kept in a memory-mapped "
                "cache file"
                if self.mapped
                else f"in memory (budget {budget / 1e6:,.0f} MB)"
            )
        )
        if self.mapped:
            self.store = _Mapped(folder, policy, data_dir, files)
            self.readable, self.problems = self.store.fill(policy, say)
        else:
            cache = _Cache(folder, policy, data_dir)
            self.images, self.problems, _ = _decode_all(files, policy, cache, say)
            self.readable = [im is not None for im in self.images]

    def take(self, parts: list[np.ndarray]) -> list[torch.Tensor]:
        """The rows of each part, as tensors (views of one file when memory-mapped)."""
        if self.mapped:
            return self.store.ordered(parts)
        return [_stack([self.images[i] for i in part], self.policy) for part in parts]


def _split_indices(split_of, readable, labels, test_split, seed, classes) -> dict:
    """The readable files' rows of each split; without a test folder, a stratified, seeded
    share of the training rows becomes the test split."""
    index = {
        split: np.array([i for i, s in enumerate(split_of) if s == split and readable[i]], int)
        for split in dict.fromkeys(split_of)
    }
    if "test" not in index:
        train = index["train"]
        count = max(1, round(len(train) * test_split))
        pick = stratified_pick(
            torch.from_numpy(labels[train]), count, seed + 3, classes, "test_split"
        )
        is_test = np.zeros(len(train), bool)
        is_test[pick.numpy()] = True
        index["train"], index["test"] = train[~is_test], train[is_test]
    return index


def _stack(images: list[np.ndarray], policy: ResizePolicy) -> torch.Tensor:
    if not images:
        return torch.zeros(0, policy.channels, *policy.size, dtype=torch.uint8)
    return torch.from_numpy(np.stack(images))


def _default_budget() -> int:
    """Half the memory available now (Linux), else 4 GB."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 2
    except OSError:
        pass
    return 4_000_000_000


def chunked_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Exact per-channel mean and std on the [0, 1] scale, as ``channel_stats``, a chunk of
    images at a time (a memory-mapped folder is never read into memory whole)."""
    channels = images.shape[1]
    hist = torch.zeros(channels, 256, dtype=torch.float64)
    for start in range(0, len(images), chunk):
        part = images[start : start + chunk]
        for c in range(channels):
            values = part[:, c].reshape(-1).to(torch.int32)
            hist[c] += torch.bincount(values, minlength=256).double()
    levels = torch.arange(256, dtype=torch.float64) / 255
    means, stds = [], []
    for c in range(channels):
        total = hist[c].sum().clamp(min=1)
        mean = (hist[c] * levels).sum() / total
        var = (hist[c] * (levels - mean) ** 2).sum() / total
        means.append(round(float(mean), 6))
        stds.append(round(float(var.sqrt()), 6))
    return means, stds


class _Mapped:
    """Decoded images in a file, memory-mapped: the rows are read as batches ask for them.

    ``FOLDER-KEY.u8`` holds every file's row in the folder's order, ``.json`` the files' keys
    (a second run with the same files decodes nothing); ``.ordered.u8`` the rows of the splits,
    one after the other, so each split is a view into the file."""

    def __init__(self, folder: Path, policy: ResizePolicy, data_dir, files: list[Path]):
        base = _Cache.where(folder, policy, data_dir)
        self.path, self.keys_path = base.with_suffix(".u8"), base.with_suffix(".json")
        self.files, self.shape = files, (len(files), policy.channels, *policy.size)

    def fill(self, policy: ResizePolicy, say) -> tuple[list[bool], list[str]]:
        keys = [list(_key(f)) for f in self.files]
        if self.keys_path.is_file() and self.path.is_file():
            saved = json.loads(self.keys_path.read_text())
            if saved["keys"] == keys and saved["shape"] == list(self.shape):
                say(f"decoded 0 of {len(keys)} images (all from the memory-mapped cache)")
                return saved["readable"], saved["problems"]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = np.lib.format.open_memmap(self.path, mode="w+", dtype=np.uint8, shape=self.shape)
        readable, problems = [False] * len(keys), []

        def decode(i: int):
            try:
                return i, read_for(policy, self.files[i]), None
            except Exception as e:  # noqa: BLE001 - an unreadable file is reported, not fatal
                return i, None, f"{self.files[i]}: {str(e).split(': ', 1)[-1]}"

        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            for i, image, problem in pool.map(decode, range(len(keys))):
                if image is None:
                    problems.append(problem)
                else:
                    rows[i], readable[i] = image, True
        rows.flush()
        del rows
        state = {
            "keys": keys,
            "shape": list(self.shape),
            "readable": readable,
            "problems": problems,
        }
        self.keys_path.write_text(json.dumps(state))
        say(f"decoded {len(keys)} of {len(keys)} images into {self.path}")
        return readable, problems

    def ordered(self, parts: list[np.ndarray]) -> list[torch.Tensor]:
        """The splits' rows copied, a chunk at a time, into one file; a view of it per split."""
        rows = np.load(self.path, mmap_mode="r")
        total = sum(len(p) for p in parts)
        out_path = self.path.with_suffix(".ordered.u8")
        out = np.lib.format.open_memmap(
            out_path, mode="w+", dtype=np.uint8, shape=(total, *self.shape[1:])
        )
        at = 0
        for part in parts:
            for start in range(0, len(part), 4096):
                chunk = part[start : start + 4096]
                out[at : at + len(chunk)] = rows[chunk]
                at += len(chunk)
        out.flush()
        del out, rows
        mapped = torch.from_numpy(np.load(out_path, mmap_mode="r+"))
        views, at = [], 0
        for part in parts:
            views.append(mapped[at : at + len(part)])
            at += len(part)
        return views


def _report(layout: Layout, problems: list[str], strict: bool, say, folder: Path) -> None:
    """One summary line of what the folder holds besides good images (all with --strict)."""
    counts = [
        sum(1 for _, c in layout.files["train"] if c == i) for i in range(len(layout.classes))
    ]
    notes = []
    if layout.skipped:
        notes.append(f"{len(layout.skipped)} non-image or hidden file(s) skipped")
    if problems:
        notes.append(f"{len(problems)} unreadable image(s) left out")
    if layout.empty:
        notes.append(f"empty class folder(s) left out: {', '.join(layout.empty)}")
    small = min(counts)
    if small * 10 < max(counts):
        notes.append(
            f"class '{layout.classes[counts.index(small)]}' has {small} image(s), the largest "
            f"{max(counts)}"
        )
    if not notes:
        return
    details = [str(p) for p in layout.skipped] + problems
    if strict:
        raise DataError(
            f"{folder}: {'; '.join(notes)} (--strict). "
            + "; ".join(details[:10])
            + (" …" if len(details) > 10 else "")
        )
    say("note: " + "; ".join(notes) + " (--strict makes this an error)")
