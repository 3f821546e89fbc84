"""Which writer serves each format, and the two steps every export takes through it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from memgrid.core.export.base import ExportItem, RenderedRows, RowWriter
from memgrid.core.export.columns import DataColumns
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
    options: ExportOptions, items: Sequence[ExportItem], columns: DataColumns
) -> RenderedRows:
    """Serialise a batch of grids for the options' format, with the files they bring along."""
    writer = WRITERS[options.export_format]
    tally = ExportTally()
    images: list[tuple[Path, str]] = []
    made: list[tuple[str, bytes]] = []
    for item in items:
        tally.add(item.row)
        if options.export_format is ExportFormat.WEBDATASET:
            continue  # a sample carries its own files
        if item.sources:
            images.extend(
                (source, image["path"])
                for image, source in zip(item.row["images"], item.sources, strict=True)
            )
        if item.contact_sheet is not None:
            made.append((item.row["contact_sheet"], item.contact_sheet))
    return RenderedRows(
        payload=writer.render(items, columns), images=images, tally=tally, made=made
    )


def open_writer(
    options: ExportOptions, folder: Path, mtime: float, columns: DataColumns
) -> RowWriter:
    """The writer for the options' format, writing into `folder`."""
    return WRITERS[options.export_format](folder, options, mtime, columns)
