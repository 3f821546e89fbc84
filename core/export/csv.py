"""The CSV export: `grids.csv`, one flat row a line, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memgrid.core.export.base import ExportItem, RowWriter
from memgrid.core.export.columns import DataColumns
from memgrid.core.export.options import ExportOptions
from memgrid.core.export.rows import flat_columns, flat_row, formula_safe

CSV_FILE = "grids.csv"


class CsvWriter(RowWriter):
    """`grids.csv`: the flat columns (rows.flat_columns), nested values as JSON text; quoting
    keeps newlines in cells, and text that a spreadsheet would run as a formula gets a
    leading quote (formula_safe)."""

    def __init__(
        self, folder: Path, options: ExportOptions, mtime: float, columns: DataColumns
    ) -> None:
        super().__init__(folder, options, mtime, columns)
        # newline="" lets the csv module write the newlines inside quoted prompts itself.
        self._rows = self._open(CSV_FILE, newline="")
        self._rows.write(self.render_lines([self.column_names()]))

    @staticmethod
    def render_lines(lines: Sequence[Sequence[Any]]) -> str:
        """The lines as CSV text, each ending in "\n".

        The csv module quotes a cell only for the characters of its line terminator, so a
        "\n" terminator would leave a lone CR unquoted, and readers end a line there. Each
        line is written with "\r\n" (which quotes both) and its own terminator swapped.
        """
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        rendered = []
        for line in lines:
            writer.writerow(line)
            rendered.append(buffer.getvalue()[:-2])
            buffer.seek(0)
            buffer.truncate()
        return "".join(line + "\n" for line in rendered)

    @classmethod
    def render(cls, items: Sequence[ExportItem], columns: DataColumns) -> str:
        return cls.render_lines(
            [
                [formula_safe(cell) for cell in flat_row(item.row, columns).values()]
                for item in items
            ]
        )

    def column_names(self) -> list[str]:
        return flat_columns(self.columns)

    def _write_payload(self, payload: str) -> None:
        self._rows.write(payload)
