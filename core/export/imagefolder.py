"""The Hugging Face `imagefolder` export: images plus `metadata.jsonl`, one line per image."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memgrid.core.export.base import RowWriter
from memgrid.core.export.options import ExportOptions
from memgrid.core.export.rows import IMAGEFOLDER_COLUMNS, compact_json, flat_row

IMAGEFOLDER_METADATA = "metadata.jsonl"


class ImageFolderWriter(RowWriter):
    """Images plus `metadata.jsonl`, one line per image with its grid's flat columns.

    One line per image is what `datasets.load_dataset("imagefolder", ...)` reads (its
    `file_name` column); `grid_id` and `seed` tie the lines of a grid together.
    """

    def __init__(self, folder: Path, options: ExportOptions, mtime: float) -> None:
        super().__init__(folder, options, mtime)
        self._metadata = self._open(IMAGEFOLDER_METADATA, "wb")

    @classmethod
    def render(cls, rows: Sequence[tuple[dict[str, Any], Sequence[Path]]]) -> bytes:
        lines = []
        for row, _ in rows:
            flat = flat_row(row)
            for image in row["images"]:
                line = {
                    "file_name": image["path"],
                    "seed": image["seed"],
                    "sha256": image["sha256"],
                    "width": image["width"],
                    "height": image["height"],
                    **flat,
                }
                lines.append(compact_json({c: line[c] for c in IMAGEFOLDER_COLUMNS}) + "\n")
        return "".join(lines).encode()

    def _write_payload(self, payload: bytes) -> None:
        self._metadata.write(payload)
