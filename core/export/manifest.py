"""What an export holds (ExportTally) and the `export.json` that makes it traceable."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from memgrid.core.export.columns import DataColumns
from memgrid.core.export.options import ExportFormat, ExportOptions
from memgrid.core.export.rows import CSV_FORMULA_ESCAPING, ROW_FIELDS
from memgrid.core.export.staging import MANIFEST_NAME

# Bumped when the row layout changes, so readers of old exports can tell.
# 2: CSV text cells that would run as spreadsheet formulas get a leading quote.
# 3: `prompt_meta` (flat: prompt_meta.<key>), flat score.<metric>.<field> columns,
#    `contact_sheet`, labels' `imported_from`; imagefolder metadata as metadata.parquet
#    (category a ClassLabel).
EXPORT_LAYOUT_VERSION = 3


@dataclass
class ExportTally:
    """Counts of what an export holds, for the manifest and the report."""

    rows: int = 0
    images: int = 0
    categories: Counter[str] = field(default_factory=Counter)
    agreement: Counter[str] = field(default_factory=Counter)
    states: Counter[str] = field(default_factory=Counter)

    def add(self, row: dict[str, Any]) -> None:
        self.rows += 1
        self.images += len(row["images"])
        self.categories[row["category"] or "(no agreed label)"] += 1
        self.agreement[row["agreement"]["how"]] += 1
        self.states[row["state"]] += 1

    def merge(self, other: ExportTally) -> None:
        self.rows += other.rows
        self.images += other.images
        self.categories.update(other.categories)
        self.agreement.update(other.agreement)
        self.states.update(other.states)

    def to_dict(self, grids_in_project: int) -> dict[str, Any]:
        return {
            "grids_in_project": grids_in_project,
            "rows": self.rows,
            "images": self.images,
            "categories": dict(sorted(self.categories.items())),
            "agreement": dict(sorted(self.agreement.items())),
            "states": dict(sorted(self.states.items())),
        }


def build_manifest(
    options: ExportOptions,
    tally: ExportTally,
    *,
    grids_in_project: int,
    files: Sequence[str],
    columns: Sequence[str] | None,
    data_columns: DataColumns,
    project_id: str | None,
    schema_version: int,
    memgrid_version: str,
    created_at: datetime,
) -> dict[str, Any]:
    """What `export.json` says: enough to trace an export back to its project and filters.

    `columns` are a flat layout's column names (None for nested formats); `data_columns`
    the project's own columns, with their types, as every format holds them.
    `export_layout_version` and `memgrid_version` also mark the folder as memgrid's, which
    is what lets `--overwrite` replace it (staging.holds_memgrid_export).
    """
    return {
        "export_layout_version": EXPORT_LAYOUT_VERSION,
        "format": options.export_format.value,
        "created_at": created_at.isoformat(timespec="seconds"),
        "memgrid_version": memgrid_version,
        "project_id": project_id,
        "schema_version": schema_version,
        "filters": options.filters.to_dict(),
        "with_images": options.image_mode.value,
        "shard_size": options.shard_size
        if options.export_format is ExportFormat.WEBDATASET
        else None,
        "counts": tally.to_dict(grids_in_project),
        "fields": ROW_FIELDS,
        "files": list(files),
        "rows_per": "image" if options.export_format is ExportFormat.IMAGEFOLDER else "grid",
        "columns": None if columns is None else list(columns),
        "data_columns": {
            "prompt_meta": {
                name: kind.value for name, kind in data_columns.prompt_meta_kinds().items()
            },
            "scores": {name: kind.value for name, kind in data_columns.score_kinds().items()},
        },
        "contact_sheets": options.contact_sheets,
        "csv_formula_escaping": CSV_FORMULA_ESCAPING
        if options.export_format is ExportFormat.CSV
        else None,
    }


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    path = folder / MANIFEST_NAME
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
