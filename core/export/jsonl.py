"""The JSONL export: `grids.jsonl`, one nested row a line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from memgrid.core.export.base import ExportItem, RowWriter
from memgrid.core.export.columns import DataColumns, compact_json
from memgrid.core.export.options import ExportOptions

JSONL_FILE = "grids.jsonl"


class JsonlWriter(RowWriter):
    """`grids.jsonl`: one nested JSON object a line."""

    def __init__(
        self, folder: Path, options: ExportOptions, mtime: float, columns: DataColumns
    ) -> None:
        super().__init__(folder, options, mtime, columns)
        self._rows = self._open(JSONL_FILE, "wb")

    @classmethod
    def render(cls, items: Sequence[ExportItem], columns: DataColumns) -> bytes:
        # Encoded where rendered: a worker hands over bytes, the cheapest thing to pickle.
        return "".join(compact_json(item.row) + "\n" for item in items).encode()

    def _write_payload(self, payload: bytes) -> None:
        self._rows.write(payload)
