"""A folder of your own images as a dataset: ``trainlab train --dataset path/to/photos``.

Example:
    >>> from trainlab.data import load_dataset
    >>> data = load_dataset("photos/")          # photos/<class>/*.jpg, or photos/train/<class>/...
    >>> data.classes, data.input_shape
    (['cat', 'dog'], (3, 64, 64))

Layout, as torchvision's ImageFolder reads it: ``PATH/<class>/...``, or ``PATH/train/<class>/``
with ``val/`` and ``test/`` beside it. Without a test folder a stratified, seeded test split is
cut (``--test-split``). Class names are the folder names as written, and every split must hold
the same classes (a misspelt folder name is an error naming both lists). Hidden files,
non-images, unreadable images, empty class folders and a class far smaller than the others are
reported in one note naming the first few files, never a crash (``--strict`` makes them an
error); the dataset's ``info["skipped"]`` lists every file left out, as (path, why).

Every image goes through one ``ResizePolicy`` (the shorter side to the size, then a centre crop;
or ``pad``), recorded with the run, so eval, predict, export and serve see what training saw.
Images are decoded once, in parallel, and cached as uint8 tensors keyed by each file's path,
size and modification time: a second run decodes only what changed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import torch

from trainlab.data.dataset import Dataset, stratified_pick
from trainlab.data.folder_rows import STATS, Rows, chunked_stats
from trainlab.data.images import MAX_PIXELS, ResizePolicy, open_image
from trainlab.data.registry import register_dataset
from trainlab.data.root import IMAGE_SUFFIXES
from trainlab.data.table_read import reads_as_table
from trainlab.errors import DataError
from trainlab.options import Opt

MAX_DEFAULT_SIZE = 64  # the default size: the median shorter side, at most this (CPU-friendly)
SPLITS = ("train", "val", "test")
SHOWN = 5  # files named in the note; the whole list is in the dataset's info["skipped"]


@dataclass
class Layout:
    classes: list[str]
    files: dict[str, list[tuple[Path, int]]]  # split -> (file, class index)
    skipped: list[tuple[str, str]]  # (file, why): hidden, not an image, not in a class folder
    empty: list[str]  # class folders without images in any split (left out)


def scan(root: Path) -> Layout:
    """The folder's splits, classes and files (sorted), and what is not an image.

    Raises:
        DataError: fewer than two classes, or splits (train/, val/, test/) with different
            classes, naming the classes each split lacks.
    """
    split_dirs = {s: root / s for s in SPLITS if (root / s).is_dir()}
    if "train" not in split_dirs:
        split_dirs = {"train": root}
    skipped: list[tuple[str, str]] = []
    found: dict[str, dict[str, list[Path]]] = {split: {} for split in split_dirs}
    for split, folder in split_dirs.items():
        for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            if class_dir.name.startswith("."):
                continue
            images = []
            for f, hidden in _walk(class_dir):
                suffix = os.path.splitext(f)[1].lower()
                if hidden:
                    skipped.append((f, "hidden"))
                elif suffix not in IMAGE_SUFFIXES:
                    skipped.append((f, f"not an image ({suffix or 'no extension'})"))
                else:
                    images.append(f)
            found[split][class_dir.name] = images
        skipped += [
            (str(f), "hidden" if f.name.startswith(".") else "not in a class folder")
            for f in sorted(folder.iterdir())
            if f.is_file()
        ]
    having = {split: {c for c, images in per.items() if images} for split, per in found.items()}
    classes = sorted(set().union(*having.values()))
    empty = sorted({c for per in found.values() for c in per} - set(classes))
    if len(classes) < 2:
        raise DataError(
            f"{root}: a folder dataset needs class folders with images in them (PATH/<class>/ "
            f"or PATH/train/<class>/); found {len(classes)} with images"
            + (f" ({', '.join(classes)})" if classes else "")
            + ". Put each class's images in a folder of its own."
        )
    _check_same_classes(root, having, classes)
    index = {c: i for i, c in enumerate(classes)}
    files = {
        split: [(f, index[c]) for c in classes for f in per.get(c, [])]
        for split, per in found.items()
    }
    return Layout(classes, files, skipped, empty)


def _check_same_classes(root: Path, having: dict[str, set[str]], classes: list[str]) -> None:
    """Every split holds images of every class: a class in test/ but not in train/ (a typo in a
    folder name) would be scored without being learnt, or left out of the test unsaid."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for name in classes:
        where = tuple(split for split in having if name in having[split])
        if len(where) < len(having):
            groups.setdefault(where, []).append(name)
    if not groups:
        return
    parts = []
    for where, names in groups.items():
        lacking = [f"{split}/" for split in having if split not in where]
        more = f" … and {len(names) - 10} more" if len(names) > 10 else ""
        parts.append(
            f"only in {' and '.join(f'{split}/' for split in where)}: {', '.join(names[:10])}"
            + more
            + (f" (none in {' or '.join(lacking)})" if len(having) > 2 else "")
        )
    raise DataError(
        f"{root}: the splits hold different classes: {'; '.join(parts)}. A class missing from "
        "a split is learnt and never tested, or tested and never learnt (a misspelt folder "
        "name does this). Rename the folder so the names match, add images of the class to the "
        "split that lacks them, or remove the class's folder."
    )


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
            STATS[entry.path] = (entry.path, stat.st_size, stat.st_mtime_ns)
            yield entry.path, inside  # a str: 12,000 Path objects cost more than the walk


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


def _is_folder_path(name: str) -> bool:
    """``--dataset PATH``: a value with a path separator, or an existing folder; not a CSV of
    labels, nor a folder holding one as ``metadata.csv`` (``trainlab.data.csv_labels``), nor a
    table (``trainlab.data.table_read``)."""
    if name.lower().endswith(".csv") or os.path.isfile(os.path.join(name, "metadata.csv")):
        return False
    if reads_as_table(name):
        return False
    return "/" in name or os.sep in name or os.path.isdir(name)


# The options of a dataset of people's images (folders, labels CSVs): one declaration, so the
# flags they share say and check the same.
ImageSize = Annotated[
    list[int],
    Opt(
        "folders: image size N (or H W); none: the median side, at most 64",
        low=4,
        high=4096,
        metavar="N",
    ),
]
Channels = Annotated[
    int, Opt("folders: 1 (grey) or 3 (RGB); 0: 3 if any image is in colour", choices=(0, 1, 3))
]
Resize = Annotated[
    str, Opt("folders: crop (shorter side, centre crop) or pad", choices=("crop", "pad"))
]
TestSplit = Annotated[
    float,
    Opt("folders without test/: the stratified fraction held out to test", low=0.01, high=0.9),
]
Strict = Annotated[bool, Opt("folders: stray or unreadable files are an error")]
MemoryBudget = Annotated[
    int,
    Opt(
        "folders: past this many MB of decoded images, a memory-mapped cache file "
        "(0: half the memory available)",
        low=0,
    ),
]


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
    image_size: ImageSize = (),
    channels: Channels = 0,
    resize: Resize = "crop",
    test_split: TestSplit = 0.2,
    strict: Strict = False,
    memory_budget_mb: MemoryBudget = 0,
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
    rows = Rows(folder, policy, ctx.data_dir, all_files, memory_budget_mb, say)
    skipped = _report(layout, rows.problems, strict, say, folder)
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
            "skipped": skipped,  # every file left out, as (path, why): the run lists them
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


def _report(layout: Layout, problems: list, strict: bool, say, folder: Path) -> list:
    """One summary line of what the folder holds besides good images, naming the first few
    files left out (all of them with --strict, which makes it an error). Returns every file
    left out as (path, why)."""
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
    skipped = [*layout.skipped, *problems]
    if not notes:
        return skipped
    shown = 2 * SHOWN if strict else SHOWN
    named = [f"\n  {os.path.relpath(path, folder)}: {why}" for path, why in skipped[:shown]]
    if len(skipped) > shown:
        named.append(f"\n  … and {len(skipped) - shown} more")
    if strict:
        raise DataError(f"{folder}: {'; '.join(notes)} (--strict):" + "".join(named))
    say("note: " + "; ".join(notes) + " (--strict makes this an error)" + "".join(named))
    return skipped
