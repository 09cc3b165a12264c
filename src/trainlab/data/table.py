"""A table of numbers and categories: ``trainlab train --dataset table.csv --target COLUMN``.

Example:
    >>> from trainlab.data import load_dataset
    >>> data = load_dataset("patients.csv", target="outcome", categorical=["zip"])
    >>> data.kind, data.classes, data.info["preprocess"]["task"]
    ('table', ['no', 'yes'], 'classification')

Which CSV files are tables, and how a cell is read, is ``trainlab.data.table_read``'s rule;
``table:FILE.csv`` reads any CSV as a table. Parquet files are read with pyarrow when it is
installed (``pip install trainlab[tables]``).

- **Task.** Classification when the target's cells are text, or whole numbers with at most
  ``MAX_INTEGER_CLASSES`` values; otherwise regression. ``--task`` chooses. The run says which
  (a log line, and ``task`` in config.toml's data record).
- **Split.** A seeded share (``--test-split``) of the rows is the test split, stratified by
  class for classification; the validation split is cut from the rest as for any dataset.
- **Encoding.** Fitted on the training rows (all but the test split), by
  ``trainlab.data.table_encode``'s rules, and recorded with the run (``data.preprocess``).
  A regression target is standardised too (its mean and std recorded); predictions are given
  back in the target's own units.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import torch

from trainlab.data.dataset import Dataset, stratified_pick
from trainlab.data.folder import TestSplit
from trainlab.data.registry import register_dataset
from trainlab.data.table_encode import fit_encoding, parse_number
from trainlab.data.table_read import PREFIX, Table, path_of, read_table, reads_as_table
from trainlab.errors import DataError
from trainlab.options import Opt

MAX_INTEGER_CLASSES = 20  # whole-number targets with more values than this are regression


@register_dataset(
    "table",
    kind="table",
    summary="a table of numbers and categories",
    claims=reads_as_table,
    shown_as="FILE.csv|FILE.parquet|table:FILE --target COLUMN (a table)",
    val_split=0.1,
)
def load_table(
    ctx,
    target: Annotated[str, Opt("tables: the column to predict")] = "",
    categorical: Annotated[
        list[str], Opt("tables: columns to one-hot encode even if they hold numbers")
    ] = (),
    task: Annotated[  # the choices: auto and TARGETS' keys
        str,
        Opt(
            "tables: auto (from the target's cells), classification or regression",
            choices=("auto", "classification", "regression"),
        ),
    ] = "auto",
    max_categories: Annotated[
        int,
        Opt(
            "tables: one-hot slots per categorical column; the rarer values share one",
            low=1,
            high=1024,
        ),
    ] = 32,
    test_split: TestSplit = 0.2,
) -> Dataset:
    """The rows of a table, encoded (see the module's doc)."""
    path = path_of(ctx.path)
    table = read_table(path)
    source = table.source
    target = _target_column(table, target)
    categorical = _categorical(table, categorical, target)
    inputs = [c for c in table.columns if c != target]
    if not inputs:
        raise DataError(f"{source}: no column besides the target '{target}' to learn from.")
    task, why = _task(table, target, task)
    y, classes, target_record = TARGETS[task](table, target)
    test = _test_rows(y, classes, test_split, ctx.seed)
    train_rows = np.flatnonzero(~test)
    encoding = fit_encoding(
        table.cells, inputs, train_rows, source, table.lines, categorical, max_categories
    )
    x = torch.from_numpy(encoding.apply(table.cells, source, table.lines))
    if not classes:  # standardised with the training rows' statistics, as the inputs
        target_record.update(mean=float(y[train_rows].mean()), std=_spread(y[train_rows]))
        y = ((y - target_record["mean"]) / target_record["std"]).astype(np.float32)
    targets = torch.from_numpy(y)
    ctx.say(
        f"table {source}: {len(table)} rows, {len(inputs)} input columns -> "
        f"{encoding.width} features; target '{target}': {task} ({why})"
        + (f", {len(classes)} classes" if classes else "")
    )
    many = [c.name for c in encoding.columns if c.type == "categorical"
            and len(set(table.cells[c.name]) - {None}) > max_categories]  # fmt: skip
    if many:
        ctx.say(
            f"note: {', '.join(many[:5])}: more than {max_categories} values; the rarer ones "
            "share one 'other' slot (--max-categories changes the cap)"
        )
    train = torch.from_numpy(~test)
    name = f"{PREFIX}{path}" if ctx.path.startswith(PREFIX) else str(path)
    return Dataset(
        name,
        x[train],
        targets[train],
        x[~train],
        targets[~train],
        classes=classes,
        kind="table" if classes else "table-regression",
        info={
            "preprocess": {
                "encoding": encoding.to_dict(),
                "target": target_record,
                "task": task,
                "task_rule": why,
                "feature_names": encoding.feature_names(),
            },
            "csv": str(path),
            "settings": {"data_seed": ctx.seed},
            # which rows (numbered from 1 after the header) are the test split, in order
            "test_rows": (np.flatnonzero(test) + 1).tolist(),
        },
    )


def _target_column(table: Table, target: str) -> str:
    listed = ", ".join(table.columns)
    if not target:
        raise DataError(
            f"{table.source}: which column is the target? Name it with --target COLUMN; its "
            f"columns: {listed}."
        )
    if target not in table.columns:
        raise DataError(f"{table.source}: no column '{target}' (--target); its columns: {listed}.")
    return target


def _categorical(table: Table, categorical: list[str], target: str) -> list[str]:
    names = [n.strip() for item in categorical for n in str(item).split(",") if n.strip()]
    unknown = [n for n in names if n not in table.columns]
    if unknown:
        raise DataError(
            f"{table.source}: --categorical names {', '.join(unknown)}, which "
            f"{'is not a column' if len(unknown) == 1 else 'are not columns'}; its columns: "
            f"{', '.join(table.columns)}."
        )
    if target in names:
        raise DataError(
            f"{table.source}: --categorical names the target '{target}'; --task classification "
            "makes the target a class."
        )
    return names


def _task(table: Table, target: str, asked: str) -> tuple[str, str]:
    """The task and why: asked, or classification for text or few whole numbers."""
    cells = table.cells[target]
    missing = [i for i, v in enumerate(cells) if v is None]
    if missing:
        raise DataError(
            f"{table.where(missing[0])}: the target '{target}' is empty ({len(missing)} row(s) "
            "in all). Give every row a target, or remove those rows."
        )
    if asked != "auto":
        return asked, "--task"
    numbers = [parse_number(v) for v in cells]
    if any(n is None for n in numbers):
        return "classification", "its cells are text"
    distinct = set(numbers)
    if all(float(n).is_integer() for n in distinct) and len(distinct) <= MAX_INTEGER_CLASSES:
        return "classification", f"{len(distinct)} whole-number values"
    return "regression", (
        "its cells are numbers with fractions"
        if not all(float(n).is_integer() for n in distinct)
        else f"more than {MAX_INTEGER_CLASSES} whole-number values"
    )


def _class_targets(table: Table, target: str) -> tuple[np.ndarray, list[str], dict]:
    """Class indices, and the classes (numbers in numeric order, text in sorted order)."""
    cells = [str(v) for v in table.cells[target]]
    numbers = [parse_number(v) for v in cells]
    if all(n is not None for n in numbers):  # numeric classes in numeric order, as written
        by_value = dict(sorted(zip(numbers, cells, strict=True)))
        order = {v: i for i, v in enumerate(by_value)}
        classes = [by_value[v] for v in by_value]
        y = np.array([order[n] for n in numbers], np.int64)
    else:
        classes = sorted(set(cells))
        index = {c: i for i, c in enumerate(classes)}
        y = np.array([index[c] for c in cells], np.int64)
    if len(classes) < 2:
        raise DataError(
            f"{table.source}: the target '{target}' has one value ({classes[0]}); a "
            "classifier needs two or more. Choose another --target."
        )
    return y, classes, {"name": target, "classes": classes}


def _numeric_targets(table: Table, target: str) -> tuple[np.ndarray, list[str], dict]:
    """Float targets (standardised by the loader with the training rows' mean and std)."""
    cells = [str(v) for v in table.cells[target]]
    numbers = []
    for row, cell in enumerate(cells):
        number = parse_number(cell)
        if number is None:
            raise DataError(
                f"{table.where(row)}: the target '{target}' is '{cell[:40]}', not a number, so "
                "it cannot be a regression target. Fix the cell, or give --task classification."
            )
        numbers.append(number)
    y = np.array(numbers, np.float64)
    if float(y.std()) < 1e-12:
        raise DataError(
            f"{table.source}: the target '{target}' has one value ({cells[0]}); there is "
            "nothing to learn. Choose another --target."
        )
    record: dict[str, Any] = {"name": target}
    return y, [], record


def _spread(y: np.ndarray) -> float:
    std = float(y.std())
    return std if std > 1e-12 else 1.0


def _test_rows(y: np.ndarray, classes: list[str], test_split: float, seed: int) -> np.ndarray:
    """Which rows are the test split: a seeded share, stratified by class."""
    count = max(1, round(len(y) * test_split))
    if count >= len(y):
        raise DataError(
            f"the table has {len(y)} row(s): too few to hold out a test split and train. Add rows."
        )
    labels = torch.from_numpy(y if classes else np.zeros(len(y), np.int64))
    pick = stratified_pick(labels, count, seed + 3, classes, "test_split")
    test = np.zeros(len(y), bool)
    test[pick.numpy()] = True
    return test


# How a task reads the target column (--task, or what _task chose).
TARGETS = {"classification": _class_targets, "regression": _numeric_targets}
