"""Predictions as a CSV: ``trainlab predict RUN INPUTS --csv out.csv``.

Example:
    >>> results = Predictor("runs/<id>").predict(["a.png", "b.png"])
    >>> write_predictions_csv("out.csv", results, classes, columns=["id", "label"])  # Kaggle

One row per input, in the order given: the input's path, the predicted label and its
probability (``probabilities=True`` adds one column per class). An input that could not be read
keeps its row, with an empty label and the reason in an ``error`` column. The file is written
atomically: a reader never sees half of it.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from trainlab.errors import ConfigError
from trainlab.fsutil import atomic_write_text

DEFAULT_COLUMNS = ("path", "label", "probability")
NAMED_COLUMNS = ("path", "id", "label", "probability", "error")  # id: the file's stem
ROW_COLUMNS = ("row", "label", "probability")  # a table's rows: numbered from 1
VALUE_COLUMNS = ("row", "value")  # a table's rows with a numeric target


def csv_columns(text: str | None, classes: list[str], probabilities: bool) -> list[str]:
    """The columns ``--csv-columns`` asks for (checked), or the default ones.

    Raises:
        ConfigError: a column that is not one of path, id, label, probability, error (or a
            class, with --csv-probabilities), or one named twice.
    """
    extra = list(classes) if probabilities else []
    if not text:
        return [*DEFAULT_COLUMNS, *extra]
    asked = [name.strip() for name in text.split(",") if name.strip()]
    known = [*NAMED_COLUMNS, "row", "value", *extra]
    unknown = [name for name in asked if name not in known]
    if unknown or not asked or len(set(asked)) < len(asked):
        problem = (
            f"unknown column(s) {', '.join(unknown)}"
            if unknown
            else ("no columns" if not asked else "a column named twice")
        )
        per_class = "one per class" if probabilities else "one per class with --csv-probabilities"
        raise ConfigError(
            f"--csv-columns {text}: {problem}; the columns are {', '.join(NAMED_COLUMNS)}, "
            f"and {per_class}."
        )
    if probabilities and not set(extra) & set(asked):  # the classes' columns after the rest
        asked += extra
    return asked


def prediction_rows(results, classes: list[str], columns: list[str]) -> list[list[str]]:
    """One row per prediction in ``columns``; a failed input's reason in an ``error`` column
    (added at the end when any input failed and the columns lack it)."""
    if any(not r.ok for r in results) and "error" not in columns:
        columns = [*columns, "error"]
    rows = [list(columns)]
    for r in results:
        values = {
            "path": r.source,
            "row": r.source,
            "id": Path(r.source).stem,
            "label": r.label if r.ok else "",
            "probability": _probability(r) if r.ok and r.probability is not None else "",
            "error": r.error or "",
            "value": f"{r.value:.6g}" if r.ok and r.value is not None else "",
        }
        if r.ok and r.value is None:
            values.update({c: f"{p:.6f}" for c, p in zip(classes, r.probabilities, strict=True)})
        rows.append([values.get(name, "") for name in columns])
    return rows


def _probability(r) -> str:
    """The label's probability; for a label set, each label's, in the same order."""
    if r.labels is not None:
        return " ".join(f"{p:.6f}" for _, p in r.labels)
    return f"{r.probability:.6f}"


def write_predictions_csv(
    path: str | Path,
    results,
    classes: list[str],
    *,
    probabilities: bool = False,
    columns: str | list[str] | None = None,
) -> Path:
    """Write ``results`` (``Prediction`` objects, in input order) as a CSV, atomically.

    Args:
        path: the file to write.
        results: the predictions, failed ones included.
        classes: the model's classes (the probability columns' names).
        probabilities: add one column per class.
        columns: the columns to write, as a list or "id,label" (see ``csv_columns``).
    """
    if not isinstance(columns, list):
        columns = csv_columns(columns, classes, probabilities)
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\n").writerows(prediction_rows(results, classes, columns))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, buffer.getvalue())
