"""What an export writes where: its format, how images come along, and which grids it keeps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from memgrid.core.agreement import AgreedLabel, AgreementHow, GridState, grid_state
from memgrid.core.errors import InputError
from memgrid.core.export.staging import check_destination
from memgrid.core.extras import require_extra
from memgrid.core.records import LabelEvent
from memgrid.core.taxonomy import Category

DEFAULT_SHARD_SIZE = 1000


class ExportFormat(StrEnum):
    """The file layouts an export can take."""

    JSONL = "jsonl"
    CSV = "csv"
    PARQUET = "parquet"
    IMAGEFOLDER = "imagefolder"
    WEBDATASET = "webdataset"


class ImageMode(StrEnum):
    """How images reach the export: copied, hard-linked (symlinked across filesystems), or not."""

    COPY = "copy"
    LINK = "link"
    NONE = "none"


# Formats written with pyarrow (the `export` extra): Parquet, and imagefolder's metadata.parquet.
PYARROW_FORMATS = (ExportFormat.PARQUET, ExportFormat.IMAGEFOLDER)
# Formats that are pointless without their images.
IMAGE_FORMATS = (ExportFormat.IMAGEFOLDER, ExportFormat.WEBDATASET)


@dataclass(frozen=True)
class ExportFilters:
    """Which grids an export keeps; empty tuples and None keep everything.

    `categories` and `min_agreement` read the agreed label. `states` reads the grid's state
    over all annotators, or `annotator`'s own state when one is named; naming an annotator
    without states keeps the grids they labelled, flagged or skipped.
    """

    categories: tuple[Category, ...] = ()
    states: tuple[GridState, ...] = ()
    annotator: str | None = None
    min_agreement: float | None = None
    adjudicated_only: bool = False

    def admits(self, events: Sequence[LabelEvent], agreed: AgreedLabel) -> bool:
        if self.adjudicated_only and agreed.how is not AgreementHow.ADJUDICATED:
            return False
        if self.categories and agreed.category not in self.categories:
            return False
        if self.min_agreement is not None and (
            agreed.share is None or agreed.share < self.min_agreement
        ):
            return False
        if self.annotator is None:
            return not self.states or grid_state(events) in self.states
        own_state = grid_state([event for event in events if event.annotator == self.annotator])
        if self.states:
            return own_state in self.states
        return own_state is not GridState.UNLABELLED

    def to_dict(self) -> dict[str, Any]:
        return {
            "categories": [category.value for category in self.categories],
            "states": [state.value for state in self.states],
            "annotator": self.annotator,
            "min_agreement": self.min_agreement,
            "adjudicated_only": self.adjudicated_only,
        }


@dataclass(frozen=True)
class ExportOptions:
    """What to export where; `with_images` None means the format's default; `contact_sheets`
    adds one PNG per grid (contact_sheet.py)."""

    export_format: ExportFormat
    destination: Path
    filters: ExportFilters = field(default_factory=ExportFilters)
    with_images: ImageMode | None = None
    shard_size: int = DEFAULT_SHARD_SIZE
    overwrite: bool = False
    contact_sheets: bool = False

    @property
    def image_mode(self) -> ImageMode:
        if self.with_images is not None:
            return self.with_images
        return ImageMode.COPY if self.export_format in IMAGE_FORMATS else ImageMode.NONE

    def check(self, project_root: Path, project_files: Sequence[Path] = ()) -> None:
        """Refuse what cannot work, or would overwrite the project, before anything is written."""
        if self.export_format in PYARROW_FORMATS:
            require_extra("export", f"--format {self.export_format.value}")
        if self.export_format in IMAGE_FORMATS and self.image_mode is ImageMode.NONE:
            raise InputError(
                "--with-images", f"{self.export_format} exports need their images (copy or link)"
            )
        if self.export_format is ExportFormat.WEBDATASET and self.image_mode is ImageMode.LINK:
            raise InputError(
                "--with-images", "webdataset shards hold the image bytes: use copy, not link"
            )
        if self.shard_size < 1:
            raise InputError("--shard-size", "must be at least 1")
        if self.filters.min_agreement is not None and not 0 <= self.filters.min_agreement <= 1:
            raise InputError("--min-agreement", "must be between 0 and 1")
        check_destination(self.destination, project_root, project_files, overwrite=self.overwrite)
