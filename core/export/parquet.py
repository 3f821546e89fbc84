"""The Parquet export: `grids.parquet`, typed nested columns (see schema.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from memgrid.core.export.base import ExportItem, RowWriter, fsync_file
from memgrid.core.export.columns import PROMPT_META, DataColumns, compact_json
from memgrid.core.export.options import ExportOptions
from memgrid.core.export.schema import load_pyarrow, parquet_schema

PARQUET_FILE = "grids.parquet"
# Parquet rows are buffered into row groups of this many grids.
PARQUET_ROW_GROUP = 10_000


class ParquetWriter(RowWriter):
    """`grids.parquet`: typed nested columns (parquet_schema), row groups of PARQUET_ROW_GROUP;
    the prompt's fields and the scalar score values as flat columns too.

    Subclasses write another Parquet file: `file_name`, `schema` and `render` say which.
    """

    file_name = PARQUET_FILE

    def __init__(
        self, folder: Path, options: ExportOptions, mtime: float, columns: DataColumns
    ) -> None:
        super().__init__(folder, options, mtime, columns)
        self._pa = load_pyarrow()
        self._writer = self._pa.parquet.ParquetWriter(
            str(folder / self.file_name), self.schema(self._pa, columns)
        )
        self.files.append(self.file_name)
        self._pending: list[Any] = []

    @classmethod
    def schema(cls, pa: Any, columns: DataColumns) -> Any:
        return parquet_schema(pa, columns)

    @classmethod
    def render(cls, items: Sequence[ExportItem], columns: DataColumns) -> Any:
        pa = load_pyarrow()
        return pa.Table.from_pylist(
            [
                {
                    **{key: value for key, value in item.row.items() if key != PROMPT_META},
                    **columns.prompt_meta_cells(item.row),
                    "scores": compact_json(item.row["scores"]),
                    **columns.score_cells(item.row),
                    "settings": compact_json(item.row["settings"]),
                    "provenance": compact_json(item.row["provenance"]),
                }
                for item in items
            ],
            schema=cls.schema(pa, columns),
        )

    def _write_payload(self, payload: Any) -> None:
        self._pending.append(payload)
        if sum(table.num_rows for table in self._pending) >= PARQUET_ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            table = self._pa.concat_tables(self._pending)
            self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
            self._pending = []

    def finish(self) -> list[str]:
        self._flush()
        self._writer.close()
        fsync_file(self.folder / self.files[0])
        return super().finish()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._writer.is_open:
            self._writer.close()
        super().__exit__(kind, error, traceback)
