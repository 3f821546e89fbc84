"""The CSV export: `grids.csv`, one flat row a line."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memgrid.core.export.base import RowWriter
from memgrid.core.export.options import ExportOptions
from memgrid.core.export.rows import FLAT_COLUMNS, flat_row

CSV_FILE = "grids.csv"


class CsvWriter(RowWriter):
    """`grids.csv`: FLAT_COLUMNS, nested values as JSON text; quoting keeps newlines in cells."""

    def __init__(self, folder: Path, options: ExportOptions, mtime: float) -> None:
        super().__init__(folder, options, mtime)
        # newline="" lets the csv module write the newlines inside quoted prompts itself.
        self._rows = self._open(CSV_FILE, newline="")
        self._rows.write(self.render_lines([FLAT_COLUMNS]))

    @staticmethod
    def render_lines(lines: Sequence[Sequence[Any]]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(lines)
        return buffer.getvalue()

    @classmethod
    def render(cls, rows: Sequence[tuple[dict[str, Any], Sequence[Path]]]) -> str:
        return cls.render_lines([list(flat_row(row).values()) for row, _ in rows])

    def _write_payload(self, payload: str) -> None:
        self._rows.write(payload)
