"""Rows of a table (``--dataset table.csv --target COLUMN``): numeric and categorical columns
encoded by the rules recorded with the run (``trainlab.data.table_encode``), so eval, predict,
serve and export encode a person's rows as training did.

A table whose target is a class is the ``table`` kind; one whose target is a number is
``table-regression``. The encoding already standardises the numeric columns, so no statistics
are applied per batch on top of it.
"""

from __future__ import annotations

from typing import Any

from trainlab.data.kinds.base import Reader
from trainlab.data.kinds.tabular import TabularKind
from trainlab.data.kinds.tasks import REGRESSION


class TableKind(TabularKind):
    name = "table"
    summary = "rows of a table (numeric and categorical columns)"
    rows = True  # predict and serve take rows (column name -> cell), not files
    model = "mlp"  # the default model's name

    def channel_stats(self, train_x: Any) -> tuple[list[float], list[float]]:  # noqa: ARG002
        return [], []  # the recorded encoding standardised the numeric columns already

    def default_model(self, data: Any) -> tuple[str, dict[str, Any]]:
        """An MLP sized from the encoded columns: two hidden layers of twice their number,
        rounded up to a power of two, from 32 to 256."""
        features = int(data.input_shape[0])
        width = min(256, max(32, 1 << (2 * features - 1).bit_length()))
        return self.model, {"hidden": [width, width]}

    def reader(self, data: dict[str, Any], max_pixels: int) -> Reader:  # noqa: ARG002
        """A row (column name -> value: a number, text, or None for missing) encoded by the
        run's recorded rules; a missing column or a number that is not one is refused."""
        from trainlab.data.images import ImageError, Prepared
        from trainlab.data.table_encode import Encoding, cell_text
        from trainlab.errors import DataError

        encoding = Encoding.from_dict(data["preprocess"]["encoding"])

        def read(source: Any, name: str | None) -> Prepared:
            where = name or "row"
            if not isinstance(source, dict):
                raise ImageError(
                    f"{where}: this model takes a table's rows (column name -> value), not "
                    f"{type(source).__name__}."
                )
            cells = {str(k): [cell_text(v)] for k, v in source.items()}
            try:
                features = encoding.apply(cells, where)
            except DataError as e:
                raise ImageError(str(e)) from None
            return Prepared(features[0], False, (0, 0))

        return read

    def graph_input(self, data: dict[str, Any]) -> str:
        width = data["input_shape"][0]
        return (
            f"float32 N×{width}: a table's rows encoded as the metadata's 'encoding' says "
            "(numeric columns imputed and standardised, categorical ones one-hot, missing "
            "indicators); batch size N is dynamic"
        )


class TableRegressionKind(TableKind):
    name = "table-regression"
    summary = "rows of a table with a numeric target"
    task = REGRESSION
    model = "mlp-regressor"


def _register() -> None:
    from trainlab.data.kinds import register_kind

    register_kind(TableKind())
    register_kind(TableRegressionKind())


_register()
