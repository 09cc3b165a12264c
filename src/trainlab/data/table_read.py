"""Reading a table (CSV, or Parquet with pyarrow) into columns of cells, and the rule that tells
a table's CSV from an image-labels CSV.

Example:
    >>> table = read_table(Path("patients.csv"))
    >>> table.columns[:3], table.cells["age"][:2]
    (['age', 'city', 'outcome'], ['41', 'Lyon'])

Every cell is kept as text (Parquet's numbers as their text), a missing cell as None: an empty
cell or one of ``MISSING`` (NA, NaN, null, None, ?; any case). Encoding them is
``trainlab.data.table_encode``'s job.

Which reading a ``--dataset FILE.csv`` gets (``reads_as_table``): ``table:FILE`` is always a
table; a ``.parquet`` file is a table; a ``.csv`` file is read as images and their labels when
a cell of its first row names an image file (by its extension, or a file with that stem and an
image extension beside the CSV), or when its header has a file column (file, file_name,
filename, path, image, id) and every column is a file, label, split or is_valid column
(Kaggle's ``id,label``). Any other CSV is a table.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from trainlab.data.root import IMAGE_SUFFIXES
from trainlab.errors import DataError

PREFIX = "table:"  # --dataset table:FILE.csv: read as a table whatever its columns
PARQUET = (".parquet", ".pq")
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
# the labels CSV's column names (trainlab.data.csv_labels; a test checks they agree)
FILE_COLUMNS = ("file", "file_name", "filename", "path", "image", "id")
LABEL_COLUMNS = ("label", "labels", "class", "target", "category")
PLAIN_COLUMNS = ("split", "is_valid")
MAX_FIELD = 1 << 20  # a longer cell is not a number, a category, a file name or a label
SNIFF_BYTES = 1 << 16
SNIFF_CELLS = 64  # the first row's cells looked at for an image file's name


@dataclass
class Table:
    """A table's cells, column by column, and the file line of each row (for messages)."""

    source: str
    columns: list[str]
    cells: dict[str, list[str | None]] = field(default_factory=dict)
    lines: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.lines)

    def where(self, row: int) -> str:
        """How a message names a row: its line in a CSV, its row number in Parquet."""
        return f"{self.source}, line {self.lines[row]}"


def path_of(name: str) -> Path:
    """The file a ``--dataset`` value names (``table:`` removed)."""
    return Path(name.removeprefix(PREFIX)).expanduser().resolve()


def read_table(path: Path) -> Table:
    """The cells of a CSV or Parquet file.

    Raises:
        DataError: no such file, not UTF-8, not valid CSV, no header, a header with an empty or
            repeated column name, no rows, a row with more or fewer cells than the header.
    """
    if path.suffix.lower() in PARQUET:
        return _read_parquet(path)
    try:
        content = path.read_bytes()
    except OSError as e:
        raise DataError(
            f"--dataset {path}: cannot read it ({e.strerror or e}); give a CSV file with a header "
            "row and one row per sample."
        ) from None
    return parse_csv(content, str(path))


def csv_rows(text: str, source: str, header_hint: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every non-blank row of a CSV text; invalid CSV and a file with
    no rows are errors naming the file (the labels CSV reads its rows here too)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    old_limit = csv.field_size_limit(MAX_FIELD)
    try:
        rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as e:
        raise DataError(f"{source}, line {reader.line_num}: not valid CSV ({e}).") from None
    finally:
        csv.field_size_limit(old_limit)
    if not rows:
        raise DataError(f"{source}: empty; {header_hint}.")
    return rows


def parse_csv(content: bytes, source: str) -> Table:
    """The cells of a CSV file's bytes (see ``read_table`` for what is refused)."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{source}: not UTF-8 text (byte {e.start}); save the table as UTF-8 CSV."
        ) from None
    if "\x00" in text:
        raise DataError(f"{source}: holds NUL bytes, so it is not a CSV text file.")
    rows = csv_rows(text, source, "a table starts with a header row naming its columns")
    header = [cell.strip() for cell in rows[0][1]]
    _check_header(header, source)
    table = Table(source, header, {name: [] for name in header})
    columns = [table.cells[name] for name in header]
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise DataError(
                f"{source}, line {line}: {len(row)} cells, but the header has {len(header)} "
                f"columns ({_listed(header)}). Give every row one cell per column (an empty "
                "cell for a missing value)."
            )
        for column, cell in zip(columns, row, strict=True):
            value = cell.strip()
            column.append(None if value.lower() in MISSING else value)
        table.lines.append(line)
    if not table.lines:
        raise DataError(f"{source}: a header and no rows; add one row per sample.")
    return table


def _read_parquet(path: Path) -> Table:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            f"--dataset {path}: reading Parquet needs pyarrow, which is not installed. "
            "pip install pyarrow (or trainlab[tables]), or save the table as CSV."
        ) from None
    try:
        data = pq.read_table(path).to_pydict()
    except Exception as e:  # noqa: BLE001 - pyarrow's errors are many; say which file
        raise DataError(f"--dataset {path}: cannot read it as Parquet ({e}).") from None
    header = [str(name).strip() for name in data]
    _check_header(header, str(path))
    table = Table(str(path), header)
    for name, values in zip(header, data.values(), strict=True):
        table.cells[name] = [_parquet_cell(v) for v in values]
    count = len(next(iter(data.values()), []))
    table.lines = list(range(1, count + 1))
    if not count:
        raise DataError(f"{path}: no rows; add one row per sample.")
    return table


def _parquet_cell(value) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    return None if text.lower() in MISSING else text


def _check_header(header: list[str], source: str) -> None:
    empty = [i + 1 for i, name in enumerate(header) if not name]
    if empty:
        raise DataError(
            f"{source}: column {empty[0]} of the header has no name; name every column in the "
            "first row."
        )
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(
                f"{source}: the header names column '{name}' twice; give each column its own name."
            )
        seen.add(name)


def _listed(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names)} in all)" if len(names) > limit else "")


def reads_as_table(name: str) -> bool:
    """Whether ``--dataset NAME`` is a table (see the module's doc for the rule)."""
    if not isinstance(name, str) or not name:
        return False
    if name.startswith(PREFIX):
        return True
    lower = name.lower()
    if lower.endswith(PARQUET):
        return True
    if not lower.endswith(".csv"):
        return False
    path = Path(name).expanduser()
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError:
        return False  # the labels CSV's loader says it cannot read it
    return not _looks_like_image_labels(head, path.parent)


def _looks_like_image_labels(head: bytes, folder: Path) -> bool:
    lines = head.decode("utf-8-sig", errors="replace").splitlines()[:2]
    try:
        rows = list(csv.reader(lines))
    except csv.Error:
        return True
    if not rows:
        return True
    header = [cell.strip().lower() for cell in rows[0]]
    known = FILE_COLUMNS + LABEL_COLUMNS + PLAIN_COLUMNS
    if any(name in FILE_COLUMNS for name in header) and all(name in known for name in header):
        return True
    first = rows[1] if len(rows) > 1 else []
    return any(cell.strip() and _names_image(cell.strip(), folder) for cell in first[:SNIFF_CELLS])


def _names_image(cell: str, folder: Path) -> bool:
    if os.path.splitext(cell)[1].lower() in IMAGE_SUFFIXES:
        return True
    try:
        base = folder / cell
        return any(base.with_name(base.name + suffix).is_file() for suffix in IMAGE_SUFFIXES)
    except (OSError, ValueError):  # not a name a file can have
        return False
