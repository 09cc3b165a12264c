"""A table's columns as float features, by rules fitted on the training rows and recorded.

Example:
    >>> encoding = fit_encoding(table, target="outcome", train_rows=train, categorical=["zip"])
    >>> x = encoding.apply(table.cells, table.source)        # N×D float32
    >>> encoding.feature_names()[:3]
    ['age', 'age (missing)', 'city=Lyon']

The rules, each fitted on the training rows only:

- **numeric** columns (every present cell a number): a missing cell becomes the column's median;
  then ``(value - mean) / std`` with the training mean and standard deviation (a constant
  column: std 1);
- **categorical** columns (text, or named by ``--categorical``): one slot per value seen in
  training, most frequent first, at most ``max_categories`` of them; the other values, and
  values never seen in training, share one "other" slot. A missing cell becomes the most
  frequent value;
- a column with missing cells in training gets an **indicator** feature (1 where the cell was
  missing), after its value features.

``to_dict`` is what a run records (its checkpoint's ``data.preprocess``); ``from_dict`` rebuilds
the same encoding for eval, predict, serve and export.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainlab.data.table_read import MISSING
from trainlab.errors import DataError

OTHER = "(other)"
# A column that is numbers apart from at most this share of its present cells is a numeric
# column with junk in it (an error naming the cell), not a text column.
JUNK_SHARE = 0.05


@dataclass
class Column:
    """One input column's encoding."""

    name: str
    type: str  # "numeric" or "categorical"
    mean: float = 0.0
    std: float = 1.0
    fill: float | str = 0.0  # what a missing cell becomes (median, or most frequent value)
    values: list[str] = field(default_factory=list)  # categorical: one slot each, then OTHER
    indicator: bool = False  # a feature saying the cell was missing

    @property
    def width(self) -> int:
        value = 1 if self.type == "numeric" else len(self.values) + 1
        return value + int(self.indicator)

    def names(self) -> list[str]:
        out = [self.name] if self.type == "numeric" else [f"{self.name}={v}" for v in self.values]
        if self.type == "categorical":
            out.append(f"{self.name}={OTHER}")
        return out + ([f"{self.name} (missing)"] if self.indicator else [])

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "fill": self.fill}
        if self.type == "numeric":
            out.update(mean=self.mean, std=self.std)
        else:
            out["values"] = list(self.values)
        out["indicator"] = self.indicator
        return out


@dataclass
class Encoding:
    """How a table's input columns become features, in order."""

    columns: list[Column]
    max_categories: int = 32

    @property
    def width(self) -> int:
        return sum(c.width for c in self.columns)

    def feature_names(self) -> list[str]:
        return [name for c in self.columns for name in c.names()]

    def apply(self, cells: dict[str, list[str | None]], source: str, lines=None) -> np.ndarray:
        """Features (N×D float32) for columns of cells; extra columns are ignored.

        Raises:
            DataError: a column the model takes is missing (named, with the columns given and
                those it takes), or a numeric cell is not a number (named by row and column).
        """
        missing = [c.name for c in self.columns if c.name not in cells]
        if missing:
            raise DataError(
                f"{source}: no column {', '.join(repr(m) for m in missing[:10])}"
                f"{f' (and {len(missing) - 10} more)' if len(missing) > 10 else ''}; this model "
                f"takes the columns {', '.join(c.name for c in self.columns)}. Add the missing "
                "column(s) (empty cells are imputed)."
            )
        count = len(cells[self.columns[0].name]) if self.columns else 0
        out = np.zeros((count, self.width), np.float32)
        at = 0
        for column in self.columns:
            values = cells[column.name]
            if len(values) != count:
                raise DataError(f"{source}: column '{column.name}' has {len(values)} cells, "
                                f"the others {count}.")  # fmt: skip
            absent = np.array([v is None for v in values], bool)
            if column.type == "numeric":
                numbers = _numbers(values, column.name, source, lines)
                numbers[absent] = float(column.fill)
                out[:, at] = (numbers - column.mean) / column.std
                at += 1
            else:
                slot = {v: i for i, v in enumerate(column.values)}
                other = len(column.values)
                for row, value in enumerate(values):
                    text = str(column.fill) if value is None else value
                    out[row, at + slot.get(text, other)] = 1.0
                at += other + 1
            if column.indicator:
                out[:, at] = absent
                at += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": [c.to_dict() for c in self.columns],
            "max_categories": self.max_categories,
            "features": self.width,
            "rules": (
                "numeric: missing -> training median, then (x - mean) / std; categorical: "
                "one-hot over the training values (most frequent first), unseen values -> "
                f"'{OTHER}', missing -> most frequent; an indicator feature after a column that "
                "had missing cells in training"
            ),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Encoding:
        columns = [
            Column(
                c["name"],
                c["type"],
                float(c.get("mean", 0.0)),
                float(c.get("std", 1.0)),
                c.get("fill", 0.0),
                list(c.get("values", [])),
                bool(c.get("indicator", False)),
            )
            for c in values["columns"]
        ]
        return cls(columns, int(values.get("max_categories", 32)))


def cell_text(value: Any) -> str | None:
    """A cell given in Python or JSON (a number, text, None) as the text a CSV would hold;
    None for a missing value."""
    if value is None or isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool):  # JSON's true/false: as a spreadsheet writes them
        return str(value).upper()
    text = str(value).strip()
    return None if text.lower() in MISSING else text


def parse_number(text: str) -> float | None:
    """A cell's number, or None (infinities and NaN are not numbers here)."""
    try:
        value = float(text.replace("_", "x"))  # "1_000" is not a number a spreadsheet writes
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _numbers(values: list[str | None], name: str, source: str, lines=None) -> np.ndarray:
    out = np.zeros(len(values), np.float64)
    for row, value in enumerate(values):
        if value is None:
            continue
        number = parse_number(value)
        if number is None:
            where = f"line {lines[row]}" if lines is not None else f"row {row + 1}"
            raise DataError(
                f"{source}, {where}: '{_short(value)}' in numeric column '{name}' is not a "
                "number. Fix the cell, leave it empty (missing cells are imputed), or list the "
                "column in --categorical."
            )
        out[row] = number
    return out


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def column_type(values: list[str | None], name: str, source: str, lines: list[int]) -> str:
    """numeric when its present cells are numbers; categorical when they are text. A column
    of numbers with a few non-numbers is refused, naming the first such cell."""
    present = [(i, v) for i, v in enumerate(values) if v is not None]
    junk = [(i, v) for i, v in present if parse_number(v) is None]
    if not junk:
        return "numeric"
    if len(junk) <= JUNK_SHARE * len(present):
        row, value = junk[0]
        raise DataError(
            f"{source}, line {lines[row]}: '{_short(value)}' in column '{name}' is not a number, "
            f"while {len(present) - len(junk)} of its {len(present)} cells are. Fix the "
            f"cell{'s' if len(junk) > 1 else ''} ({len(junk)} in all), leave them empty "
            "(missing cells are imputed), or list the column in --categorical."
        )
    return "categorical"


def fit_encoding(
    cells: dict[str, list[str | None]],
    inputs: list[str],
    train_rows: np.ndarray,
    source: str,
    lines: list[int],
    categorical: list[str] = (),
    max_categories: int = 32,
) -> Encoding:
    """The encoding of the ``inputs`` columns, fitted on ``train_rows`` (see the module doc)."""
    columns = []
    for name in inputs:
        values = cells[name]
        kind = "categorical" if name in categorical else column_type(values, name, source, lines)
        train = [values[i] for i in train_rows]
        present = [v for v in train if v is not None]
        indicator = len(present) < len(train)
        if kind == "numeric":
            numbers = np.array([parse_number(v) for v in present], np.float64)
            fill = float(np.median(numbers)) if len(numbers) else 0.0
            filled = np.concatenate([numbers, np.full(len(train) - len(present), fill)])
            mean = float(filled.mean()) if len(filled) else 0.0
            std = float(filled.std()) if len(filled) else 1.0
            std = std if std > 1e-12 else 1.0  # a constant column: centred only
            columns.append(Column(name, kind, mean, std, fill, indicator=indicator))
        else:
            counts = Counter(present)
            ranked = sorted(counts, key=lambda v: (-counts[v], v))
            fill = ranked[0] if ranked else OTHER
            columns.append(
                Column(name, kind, fill=fill, values=ranked[:max_categories], indicator=indicator)
            )
    return Encoding(columns, max_categories)
