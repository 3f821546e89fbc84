"""Which writer serves each format, and the two steps every export takes through it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memgrid.core.export.base import RenderedRows, RowWriter
from memgrid.core.export.csv import CsvWriter
from memgrid.core.export.imagefolder import ImageFolderWriter
from memgrid.core.export.jsonl import JsonlWriter
from memgrid.core.export.manifest import ExportTally
from memgrid.core.export.options import ExportFormat, ExportOptions
from memgrid.core.export.parquet import ParquetWriter
from memgrid.core.export.webdataset import WebDatasetWriter

WRITERS: dict[ExportFormat, type[RowWriter]] = {
    ExportFormat.JSONL: JsonlWriter,
    ExportFormat.CSV: CsvWriter,
    ExportFormat.PARQUET: ParquetWriter,
    ExportFormat.IMAGEFOLDER: ImageFolderWriter,
    ExportFormat.WEBDATASET: WebDatasetWriter,
}


def render_rows(
    options: ExportOptions, rows: Sequence[tuple[dict[str, Any], Sequence[Path]]]
) -> RenderedRows:
    """Serialise a batch of rows (each with its images' source files) for the options' format."""
    writer = WRITERS[options.export_format]
    tally = ExportTally()
    images: list[tuple[Path, str]] = []
    for row, sources in rows:
        tally.add(row)
        if sources and options.export_format is not ExportFormat.WEBDATASET:
            images.extend(
                (source, image["path"])
                for image, source in zip(row["images"], sources, strict=True)
            )
    return RenderedRows(payload=writer.render(rows), images=images, tally=tally)


def open_writer(options: ExportOptions, folder: Path, mtime: float) -> RowWriter:
    """The writer for the options' format, writing into `folder`."""
    return WRITERS[options.export_format](folder, options, mtime)
