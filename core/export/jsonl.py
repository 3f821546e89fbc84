"""The JSONL export: `grids.jsonl`, one nested row a line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memgrid.core.export.base import RowWriter
from memgrid.core.export.options import ExportOptions
from memgrid.core.export.rows import compact_json

JSONL_FILE = "grids.jsonl"


class JsonlWriter(RowWriter):
    """`grids.jsonl`: one nested JSON object a line."""

    def __init__(self, folder: Path, options: ExportOptions, mtime: float) -> None:
        super().__init__(folder, options, mtime)
        self._rows = self._open(JSONL_FILE, "wb")

    @classmethod
    def render(cls, rows: Sequence[tuple[dict[str, Any], Sequence[Path]]]) -> bytes:
        # Encoded where rendered: a worker hands over bytes, the cheapest thing to pickle.
        return "".join(compact_json(row) + "\n" for row, _ in rows).encode()

    def _write_payload(self, payload: bytes) -> None:
        self._rows.write(payload)
