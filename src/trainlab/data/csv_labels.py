"""Images named in a CSV with their labels: ``trainlab train --dataset train.csv``.

Example:
    >>> from trainlab.data import load_dataset
    >>> data = load_dataset("photos/train.csv")   # id,label rows; photos/<id>.png beside it
    >>> data.classes
    ['cat', 'dog']

The Kaggle layout (one folder of images and a ``train.csv`` of ``id,label``), Hugging Face's
imagefolder (a folder holding ``metadata.csv`` with ``file_name`` and ``label``) and fastai's
``from_csv`` all read this way. The file column and the label column are found by their usual
names (``--file-column`` and ``--label-column`` name them otherwise); files are found relative to
the CSV's folder (``--images DIR`` elsewhere), and a name without an extension is the one image
file with that stem. A ``split`` column (train/val/valid/test) or a boolean ``is_valid`` column
is honoured; otherwise the test split is cut as for a folder (stratified, seeded), or read from
``--test-csv``. Missing and unreadable files are reported in one note naming the first few
(``--strict`` makes them an error), and listed in the run's ``skipped_files.txt``.

Decoding, the decode cache, the resize policy and colour/grey are the folder dataset's
(``trainlab.data.folder_rows``), so eval, predict, export and serve see what training saw.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
import torch

from trainlab.data.dataset import Dataset
from trainlab.data.folder import (
    MAX_DEFAULT_SIZE,
    SHOWN,
    Channels,
    ImageSize,
    MemoryBudget,
    Resize,
    Strict,
    TestSplit,
    _default_size,
    _is_colour,
    _split_indices,
)
from trainlab.data.folder_rows import Rows, chunked_stats
from trainlab.data.images import ResizePolicy
from trainlab.data.multilabel import KIND, how_cut, multi_hot, multi_label_spec
from trainlab.data.registry import register_dataset
from trainlab.data.root import IMAGE_SUFFIXES
from trainlab.data.table_read import csv_rows, reads_as_table
from trainlab.errors import DataError
from trainlab.options import Opt

FILE_COLUMNS = ("file", "file_name", "filename", "path", "image", "id")
LABEL_COLUMNS = ("label", "labels", "class", "target", "category")
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
METADATA = "metadata.csv"  # Hugging Face imagefolder's name for a folder's labels


@dataclass
class LabelTable:
    """The rows of a labels CSV: each row's file name, label, split (or None) and line."""

    source: str
    file_column: str
    label_column: str | None
    names: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    splits: list[str | None] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)


def parse_labels(
    content: bytes, source: str, file_column: str = "", label_column: str = "", *,
    need_labels: bool = True, empty_label: bool = False,
) -> LabelTable:  # fmt: skip
    """The file names, labels and splits of a labels CSV's bytes.

    Raises:
        DataError: text that is not UTF-8 CSV, no header, a column that cannot be found (or is
            ambiguous: the columns are listed), an empty file name or label (naming its line), a
            split value that is not train/val/valid/test, an is_valid value that is not boolean.
    """
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{source}: not UTF-8 text (byte {e.start}); save the CSV as UTF-8."
        ) from None
    rows = csv_rows(text, source, "a labels CSV starts with a header row (e.g. id,label)")
    header = [cell.strip() for cell in rows[0][1]]
    file_at = _column(header, file_column, FILE_COLUMNS, "file", source)
    label_at = (
        _column(header, label_column, LABEL_COLUMNS, "label", source)
        if need_labels or label_column or any(h.lower() in LABEL_COLUMNS for h in header)
        else None
    )
    lowered = [h.lower() for h in header]
    split_at = lowered.index("split") if "split" in lowered else None
    valid_at = lowered.index("is_valid") if "is_valid" in lowered and split_at is None else None
    table = LabelTable(source, header[file_at], None if label_at is None else header[label_at])
    for line, row in rows[1:]:
        cells = [cell.strip() for cell in row]

        def cell(at: int | None, cells=cells) -> str:
            return cells[at] if at is not None and at < len(cells) else ""

        name, label = cell(file_at), cell(label_at)
        if not name:
            raise DataError(f"{source}, line {line}: no file name in column '{header[file_at]}'.")
        if label_at is not None and not label and not empty_label:
            raise DataError(
                f"{source}, line {line} ({name}): the label (column '{header[label_at]}') is "
                "empty. Give every row a label, or remove the row."
            )
        table.names.append(name)
        table.labels.append(label)
        table.lines.append(line)
        table.splits.append(_split_of(cell(split_at), cell(valid_at), split_at, source, line))
    if not table.names:
        raise DataError(f"{source}: a header and no rows; add a row per image.")
    return table


def _column(header: list[str], asked: str, usual: tuple[str, ...], what: str, source: str) -> int:
    """Where the file (or label) column is: the one asked for, else the one usual name there."""
    listed = ", ".join(header)
    flag = f"--{what}-column"
    if asked:
        if asked not in header:
            raise DataError(f"{source}: no column '{asked}' ({flag}); its columns: {listed}.")
        return header.index(asked)
    found = [i for i, name in enumerate(header) if name.lower() in usual]
    if len(found) == 1:
        return found[0]
    if not found:
        raise DataError(
            f"{source}: no {what} column (one of {', '.join(usual)}); its columns: {listed}. "
            f"Name it with {flag} NAME."
        )
    raise DataError(
        f"{source}: several columns could be the {what} column "
        f"({', '.join(header[i] for i in found)}); its columns: {listed}. Choose one with "
        f"{flag} NAME."
    )


def _split_of(split: str, valid: str, split_at, source: str, line: int) -> str | None:
    if split_at is not None:
        if split.lower() not in SPLIT_NAMES:
            raise DataError(
                f"{source}, line {line}: split '{split}' is not one of train, val, valid, test."
            )
        return SPLIT_NAMES[split.lower()]
    if valid:
        if valid.lower() not in BOOLEANS:
            raise DataError(f"{source}, line {line}: is_valid '{valid}' is not true or false.")
        return "val" if BOOLEANS[valid.lower()] else "train"
    return None


class Resolver:
    """File names of a CSV as files under a folder; a name without an image extension is the
    one image file with that stem (each folder is listed once)."""

    def __init__(self, base: Path):
        self.base = base
        self.stems: dict[Path, dict[str, list[str]]] = {}

    def __call__(self, name: str) -> tuple[str | None, str]:
        """(the file, "") or (None, why not)."""
        path = self.base / name
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return (str(path), "") if path.is_file() else (None, "missing")
        found = self._by_stem(path.parent).get(path.name, [])
        if len(found) == 1:
            return str(path.parent / found[0]), ""
        if found:
            return None, f"several files with this stem ({', '.join(sorted(found)[:3])})"
        return (None, "not an image file") if path.is_file() else (None, "missing")

    def _by_stem(self, folder: Path) -> dict[str, list[str]]:
        if folder not in self.stems:
            stems: dict[str, list[str]] = {}
            try:
                with os.scandir(folder) as entries:
                    for entry in entries:
                        stem, suffix = os.path.splitext(entry.name)
                        if suffix.lower() in IMAGE_SUFFIXES and entry.is_file():
                            stems.setdefault(stem, []).append(entry.name)
            except OSError:
                pass
            self.stems[folder] = stems
        return self.stems[folder]


def _claims(name: str) -> bool:
    """``--dataset X.csv`` that is not a table (``trainlab.data.table_read``'s rule), or a
    folder that holds a ``metadata.csv``."""
    if name.lower().endswith(".csv") and not reads_as_table(name):
        return True
    return os.path.isfile(os.path.join(name, METADATA))


@register_dataset(
    "csv-labels",
    kind="images",
    summary="images named in a CSV with their labels (--dataset labels.csv)",
    claims=_claims,
    shown_as="FILE.csv (images and their labels)",
    val_split=0.1,
)
def load_csv_labels(
    ctx,
    file_column: Annotated[
        str, Opt("labels CSV: the column of file names; empty: found by name")
    ] = "",
    label_column: Annotated[
        str, Opt("labels CSV: the column of labels; empty: found by name")
    ] = "",
    images: Annotated[str, Opt("labels CSV: the images' folder; empty: the CSV's folder")] = "",
    test_csv: Annotated[str, Opt("labels CSV: a CSV of labelled test images; empty: a cut")] = "",
    image_size: ImageSize = (),
    channels: Channels = 0,
    resize: Resize = "crop",
    test_split: TestSplit = 0.2,
    strict: Strict = False,
    memory_budget_mb: MemoryBudget = 0,
    multi_label: Annotated[
        bool, Opt("labels CSV: each image has a set of labels (sigmoid outputs, BCE)")
    ] = False,
    label_delim: Annotated[
        str, Opt("labels CSV, --multi-label: the text between labels in one cell (a space)")
    ] = " ",
    label_columns: Annotated[
        str, Opt("labels CSV, --multi-label: one 0/1 column per label: a,b,c or 'tag_*'")
    ] = "",
) -> Dataset:
    """The images a labels CSV names, decoded as a folder's are (see the module's doc)."""
    given = Path(ctx.path).expanduser().resolve()
    csv_path = given / METADATA if given.is_dir() else given
    multi = multi_label_spec(multi_label, label_delim, label_columns, label_column)
    table = _read(csv_path, file_column, label_column, multi)
    columns = (file_column, label_column, multi)
    files, labels, split_of, skipped = _gather(csv_path, table, test_csv, images, columns)
    if multi is not None:  # label sets: multi-hot targets, cuts stratified on combinations
        classes, label_ids = multi_hot(csv_path, labels, split_of, multi.classes, ctx.say)
    else:
        classes = sorted(set(labels))
        _check_classes(csv_path, classes, labels, split_of)
        index = {c: i for i, c in enumerate(classes)}
        label_ids = np.array([index[c] for c in labels], dtype=np.int64)
    policy = _policy(csv_path, classes, files, image_size, channels, resize, ctx.say)
    rows = Rows(csv_path, policy, ctx.data_dir, files, memory_budget_mb, ctx.say)
    skipped += rows.problems
    _report(csv_path, skipped, strict, ctx.say)
    if not any(r and s == "train" for r, s in zip(rows.readable, split_of, strict=True)):
        raise DataError(f"{csv_path}: no readable training images; see the note above.")
    cut = _split_indices(split_of, rows.readable, label_ids, test_split, ctx.seed, classes)
    order = [name for name in ("train", "val", "test") if name in cut]
    parts = dict(zip(order, rows.take([cut[name] for name in order]), strict=True))
    ys = {name: torch.from_numpy(label_ids[cut[name]]) for name in order}
    mean, std = chunked_stats(parts["train"])
    return Dataset(
        str(given),
        parts["train"],
        ys["train"],
        parts["test"],
        ys["test"],
        classes=classes,
        mean=mean,
        std=std,
        val_x=parts.get("val"),
        val_y=ys.get("val"),
        info={
            "preprocess": policy.to_dict(),
            "csv": str(csv_path),
            "columns": {"file": table.file_column, "label": table.label_column},
            "settings": {"data_seed": ctx.seed},
            "skipped": skipped,  # every row left out, as (file, why): the run lists them
            **({"kind": KIND, "cuts": how_cut(label_ids)} if multi is not None else {}),
        },
        kind=KIND if multi is not None else "",
    )


def _gather(csv_path: Path, table: LabelTable, test_csv: str, images: str, columns):
    """Every row's file, label and split, the --test-csv's rows as the test split; the rows
    left out as (name, why)."""
    base = Path(images).expanduser().resolve() if images else csv_path.parent
    if not base.is_dir():
        raise DataError(f"--images {images}: no such folder; give the folder the files are in.")
    files, labels, split_of, skipped = _rows(table, Resolver(base), "train")
    if test_csv:
        test_table = _read(Path(test_csv).expanduser().resolve(), *columns)
        if any(s not in (None, "test") for s in test_table.splits):
            raise DataError(f"{test_csv}: --test-csv rows must be test rows (its split column).")
        if "test" in table.splits:
            raise DataError(
                f"{csv_path}: its split column already names test rows; drop --test-csv, or "
                "the test rows."
            )
        more = _rows(test_table, Resolver(base), "test")
        files, labels, split_of = files + more[0], labels + more[1], split_of + more[2]
        skipped += more[3]
    return files, labels, split_of, skipped


def _read(path: Path, file_column: str, label_column: str, multi=None) -> LabelTable:
    try:
        content = path.read_bytes()
    except OSError as e:
        raise DataError(
            f"--dataset {path}: cannot read it ({e.strerror or e}); give a CSV of image files "
            "and their labels (e.g. id,label)."
        ) from None
    if multi is None:
        return parse_labels(content, str(path), file_column, label_column)
    return multi.read(parse_labels, content, str(path), file_column, label_column)


def _rows(table: LabelTable, resolve: Resolver, default_split: str):
    """Each row's file, label and split; rows whose file is not found, as (name, why).

    Raises:
        DataError: one file named twice with different labels.
    """
    files, labels, splits, skipped = [], [], [], []
    seen: dict[str, tuple[str, int]] = {}
    for name, label, split, line in zip(
        table.names, table.labels, table.splits, table.lines, strict=True
    ):
        if name in seen:
            first_label, first_line = seen[name]
            if first_label != label:
                raise DataError(
                    f"{table.source}: {name} is labelled '{first_label}' on line {first_line} "
                    f"and '{label}' on line {line}. Keep one row per file."
                )
            skipped.append((name, f"named again on line {line}"))
            continue
        seen[name] = (label, line)
        path, why = resolve(name)
        if path is None:
            skipped.append((name, f"{why} (line {line})"))
            continue
        files.append(Path(path))
        labels.append(label)
        splits.append(split or default_split)
    return files, labels, splits, skipped


def _check_classes(source: Path, classes: list[str], labels: list[str], splits: list[str]):
    if len(classes) < 2:
        raise DataError(
            f"{source}: a classifier needs at least two labels among the images found; found "
            f"{len(classes)}" + (f" ({classes[0]})" if classes else "") + "."
        )
    trained = {c for c, s in zip(labels, splits, strict=True) if s == "train"}
    unlearnt = sorted(set(classes) - trained)
    if unlearnt:
        raise DataError(
            f"{source}: label(s) {', '.join(unlearnt[:10])} have no training rows, so they would "
            "be scored and never learnt. Add training rows for them, or remove their rows."
        )


def _policy(source, classes, files, image_size, channels, resize, say) -> ResizePolicy:
    """The resize policy: the size and channels asked for, else chosen from the images."""
    size = list(image_size) or [_default_size(files)]
    policy = ResizePolicy((size[0], size[-1]), channels or (3 if _is_colour(files) else 1), resize)
    say(
        f"labels {source}: {len(classes)} classes, {len(files)} images, "
        f"{policy.channels}×{policy.size[0]}×{policy.size[1]} ({policy.mode}"
        + ("" if image_size else f", the median side, capped at {MAX_DEFAULT_SIZE}")
        + ")"
    )
    return policy


def _report(source: Path, skipped: list, strict: bool, say) -> None:
    """One note naming the first few rows left out and why (an error with --strict)."""
    if not skipped:
        return
    counts: dict[str, int] = {}
    for _, why in skipped:
        what = why.split(" ", 1)[0].removesuffix(":")
        counts[what] = counts.get(what, 0) + 1
    words = {
        "missing": "row(s) whose file is missing",
        "unreadable": "unreadable image(s)",
        "named": "file(s) named again with the same label",
        "not": "row(s) naming a file that is not an image",
        "several": "row(s) whose name fits several image files",
    }
    notes = [
        f"{n} {words.get(what, 'row(s) without one image file')}" for what, n in counts.items()
    ]
    shown = 2 * SHOWN if strict else SHOWN
    base = source.parent
    named = [
        f"\n  {os.path.relpath(path, base) if os.path.isabs(path) else path}: {why}"
        for path, why in skipped[:shown]
    ]
    if len(skipped) > shown:
        named.append(f"\n  … and {len(skipped) - shown} more")
    if strict:
        raise DataError(f"{source}: {'; '.join(notes)} (--strict):" + "".join(named))
    say(
        f"note: {'; '.join(notes)}: {len(skipped)} row(s) left out (--strict makes this an "
        "error)" + "".join(named)
    )
