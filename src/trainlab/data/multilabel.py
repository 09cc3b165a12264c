"""Several labels per image in a labels CSV: ``trainlab train --dataset labels.csv --multi-label``.

Example:
    >>> spec = MultiLabelSpec(delim=" ")                 # a cell such as "beach sunset"
    >>> spec.cell_labels("sunset  beach")
    ['beach', 'sunset']
    >>> MultiLabelSpec(columns="tag_*").class_name("tag_beach")
    'beach'

The labels of a row are read from one cell, split by ``--label-delim`` (a space by default), or
from one 0/1 column per label: ``--label-columns a,b,c`` names them, a pattern such as
``'tag_*'`` takes every column it matches (the label is the rest of the name: ``tag_beach`` is
``beach``). An empty cell, or a row of zeros, is an image with none of the labels: a negative
example for every label (the load note counts them). A value other than 0 or 1 in a label
column, or a column that is not there, is an error naming the line and the column.

Each row's label set is kept as one canonical text (a JSON list, sorted), so a file named
twice with another set is caught as for single labels, and the sets are the strata of the
stratified cuts (``trainlab.data.dataset.label_combinations``).
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
from dataclasses import dataclass

import numpy as np
import torch

from trainlab.data.dataset import label_combinations
from trainlab.errors import DataError

KIND = "multilabel-images"  # the kind of data a multi-label CSV yields
FLAG_VALUES = {"0": 0.0, "1": 1.0}


def multi_label_spec(multi_label: bool, delim: str, columns: str, label_column: str):
    """How the CSV gives label sets (None: one label per image); flags that need
    --multi-label, or that contradict each other, are refused."""
    if not multi_label:
        if columns or delim != " ":
            flag = "--label-columns" if columns else "--label-delim"
            raise DataError(f"{flag} reads several labels per image; add --multi-label.")
        return None
    if columns and label_column:
        raise DataError(
            "--label-columns reads the labels from 0/1 columns, --label-column from one cell; "
            "give one of them."
        )
    if not delim:
        raise DataError("--label-delim is empty; give the text between labels (e.g. ',').")
    return MultiLabelSpec(delim, columns)


@dataclass
class MultiLabelSpec:
    """How a CSV gives each image its labels: a delimiter in one cell, or 0/1 columns."""

    delim: str = " "
    columns: str = ""  # "a,b,c" or a pattern ("tag_*"); empty: the labels are in one cell
    classes: list[str] | None = None  # the label columns' labels, once read

    def read(self, parse, content: bytes, source: str, file_column: str, label_column: str):
        """A labels CSV's ``LabelTable`` (``parse``: ``csv_labels.parse_labels``) with each
        row's label set, canonical, as its label."""
        if not self.columns:  # labels in one cell; an empty cell: none of them
            table = parse(content, source, file_column, label_column, empty_label=True)
            table.labels = [canonical(self.cell_labels(text)) for text in table.labels]
            return table
        table = parse(content, source, file_column, need_labels=False, empty_label=True)
        taken = {table.file_column.lower(), "split", "is_valid"}
        table.labels, self.classes = column_label_sets(
            content, source, table.lines, table.names, self, taken
        )
        return table

    def cell_labels(self, cell: str) -> list[str]:
        """The labels in one cell, sorted, each once; [] for an empty cell (empty pieces, as
        from a double space, are no labels)."""
        return sorted({piece.strip() for piece in cell.split(self.delim) if piece.strip()})

    def label_columns(self, header: list[str], source: str, taken: set[str]) -> list[int]:
        """Where the label columns are: those named, or those the pattern matches (the file,
        split and is_valid columns excluded)."""
        listed = ", ".join(header)
        if any(ch in self.columns for ch in "*?["):
            found = [
                i
                for i, name in enumerate(header)
                if fnmatch.fnmatchcase(name, self.columns) and name.lower() not in taken
            ]
            if not found:
                raise DataError(
                    f"{source}: --label-columns '{self.columns}' matches no column; its "
                    f"columns: {listed}."
                )
            return found
        asked = [name.strip() for name in self.columns.split(",") if name.strip()]
        missing = [name for name in asked if name not in header]
        if missing or not asked:
            raise DataError(
                f"{source}: --label-columns names column(s) it does not have: "
                f"{', '.join(missing) or '(none given)'}; its columns: {listed}."
            )
        if len(set(asked)) < len(asked):
            raise DataError(f"{source}: --label-columns names a column twice ({self.columns}).")
        return [header.index(name) for name in asked]

    def class_name(self, column: str) -> str:
        """A label column's label: its name, less the pattern's fixed start ("tag_*")."""
        prefix = self.columns.split("*", 1)[0] if self.columns.endswith("*") else ""
        rest = column[len(prefix) :] if prefix and column.startswith(prefix) else column
        return rest or column


def canonical(labels: list[str]) -> str:
    """A label set as one comparable text (sorted, each once)."""
    return json.dumps(sorted(set(labels)), ensure_ascii=False)


def column_label_sets(
    content: bytes, source: str, lines: list[int], names: list[str], spec: MultiLabelSpec,
    taken: set[str],
) -> tuple[list[str], list[str]]:  # fmt: skip
    """Each row's labels (canonical) from the 0/1 columns, and the labels (column order).

    Args:
        lines: the CSV lines of the rows kept (``LabelTable.lines``), names: their files.
        taken: the lowered names of the columns that are not labels (file, split, is_valid).
    """
    reader = csv.reader(io.StringIO(content.decode("utf-8-sig"), newline=""))
    rows = {}
    for row in reader:  # keyed by line, as parse_labels numbers the rows
        if any(cell.strip() for cell in row):
            rows[reader.line_num] = row
    header = [cell.strip() for cell in rows[min(rows)]]
    at = spec.label_columns(header, source, taken)
    classes = [spec.class_name(header[i]) for i in at]
    if len(set(classes)) < len(classes):
        raise DataError(f"{source}: two label columns give the same label ({', '.join(classes)}).")
    sets = []
    for line, name in zip(lines, names, strict=True):
        cells = [cell.strip() for cell in rows[line]]
        present = []
        for i, label in zip(at, classes, strict=True):
            value = cells[i] if i < len(cells) else ""
            if value not in FLAG_VALUES:
                raise DataError(
                    f"{source}, line {line} ({name}): column '{header[i]}' holds "
                    f"'{value}'; a label column holds 1 (the image has the label) or 0."
                )
            if FLAG_VALUES[value]:
                present.append(label)
        sets.append(canonical(present))
    return sets, classes


def multi_hot(
    source, label_sets: list[str], splits: list[str], classes: list[str] | None, say
) -> tuple[list[str], np.ndarray]:
    """The classes and the float32 N×K targets of the rows kept.

    Args:
        label_sets: each row's canonical label set; splits: each row's split.
        classes: the label columns' labels (in their order), or None: every label found, sorted.

    Raises:
        DataError: no label at all, or a label never marked on a training row.
    """
    decoded = [json.loads(text) for text in label_sets]
    if classes is None:
        classes = sorted({label for labels in decoded for label in labels})
    if not classes:
        raise DataError(
            f"{source}: no image has a label; give each row its labels (--label-delim between "
            "them), or name the 0/1 columns with --label-columns."
        )
    index = {c: i for i, c in enumerate(classes)}
    targets = np.zeros((len(decoded), len(classes)), np.float32)
    for row, labels in enumerate(decoded):
        targets[row, [index[label] for label in labels]] = 1.0
    trained = targets[[s == "train" for s in splits]].sum(0) if len(targets) else targets
    unlearnt = [c for c, n in zip(classes, trained, strict=True) if not n]
    if unlearnt:
        raise DataError(
            f"{source}: label(s) {', '.join(unlearnt[:10])} are on no training row, so they "
            "would be scored and never learnt. Add training rows with them, or drop them."
        )
    _note(source, targets, say)
    return classes, targets


def _note(source, targets: np.ndarray, say) -> None:
    """What the labels look like, and how the cuts are stratified."""
    none = int((targets.sum(1) == 0).sum())
    say(
        f"multi-label {source}: {targets.shape[1]} labels, {targets.sum(1).mean():.2f} per "
        f"image on average"
        + (f", {none} image(s) with none of them" if none else "")
        + f"; {how_cut(targets)}"
    )


def how_cut(targets: np.ndarray) -> str:
    """How the test and validation cuts of these targets are drawn, in words (the run records
    it with its data: config.toml's [data] cuts)."""
    strata, count = label_combinations(torch.from_numpy(targets))
    pooled = int((strata == 0).sum())
    return f"cuts stratified on {count - 1} label combination(s)" + (
        f", {pooled} image(s) whose combination is rarer than 2 cut at random (seeded)"
        if pooled
        else ""
    )
