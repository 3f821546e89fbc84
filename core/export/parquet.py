"""The Parquet export: `grids.parquet`, typed nested columns (see schema.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from memgrid.core.export.base import RowWriter, fsync_file
from memgrid.core.export.options import ExportOptions
from memgrid.core.export.rows import compact_json
from memgrid.core.export.schema import load_pyarrow, parquet_schema

PARQUET_FILE = "grids.parquet"
# Parquet rows are buffered into row groups of this many grids.
PARQUET_ROW_GROUP = 10_000


class ParquetWriter(RowWriter):
    """`grids.parquet`: typed nested columns (parquet_schema), row groups of PARQUET_ROW_GROUP."""

    def __init__(self, folder: Path, options: ExportOptions, mtime: float) -> None:
        super().__init__(folder, options, mtime)
        self._pa = load_pyarrow()
        name = PARQUET_FILE
        self._writer = self._pa.parquet.ParquetWriter(str(folder / name), parquet_schema(self._pa))
        self.files.append(name)
        self._pending: list[Any] = []

    @classmethod
    def render(cls, rows: Sequence[tuple[dict[str, Any], Sequence[Path]]]) -> Any:
        pa = load_pyarrow()
        return pa.Table.from_pylist(
            [
                {
                    **row,
                    "scores": compact_json(row["scores"]),
                    "settings": compact_json(row["settings"]),
                    "provenance": compact_json(row["provenance"]),
                }
                for row, _ in rows
            ],
            schema=parquet_schema(pa),
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
