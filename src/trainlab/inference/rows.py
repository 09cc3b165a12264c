"""A table's model on people's rows: ``trainlab predict RUN rows.csv`` reads each file's rows.

Example:
    >>> predictor = Predictor("runs/<id>")          # trained on --dataset table.csv
    >>> results = predict_rows(predictor, ["new_patients.csv"])
    >>> [(r.source, r.label) for r in results][:2]
    [('1', 'benign'), ('2', 'malignant')]

Each row is encoded by the run's recorded rules (``trainlab.data.table_encode``): the columns
the model takes must all be there (a missing one is an error naming it; extra columns, the
target among them, are ignored), an empty cell is imputed as in training. Rows are numbered
from 1 after the header; with several files a row is ``FILE:N``.
"""

from __future__ import annotations

from pathlib import Path

from trainlab.data.table_read import read_table
from trainlab.errors import DataError


def predict_rows(predictor, inputs: list[str], *, batch_size: int = 256) -> list:
    """One ``Prediction`` per row of each input file, in order.

    Raises:
        DataError: a file that cannot be read as a table, or lacks a column the model takes.
    """
    results = []
    for given in inputs:
        table = read_table(Path(given).expanduser())
        missing = [name for name in predictor.columns if name not in table.cells]
        if missing:
            raise DataError(
                f"{given}: no column {', '.join(repr(m) for m in missing)}; this model takes "
                f"the columns {', '.join(predictor.columns)} (the target may be left out). "
                "Add the missing column(s); empty cells are imputed as in training."
            )
        rows = [
            {name: table.cells[name][i] for name in predictor.columns} for i in range(len(table))
        ]
        prefix = f"{given}:" if len(inputs) > 1 else ""
        names = [f"{prefix}{i + 1}" for i in range(len(rows))]
        results += predictor.predict(rows, names, batch_size=batch_size)
    return results
