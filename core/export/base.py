"""What every export writer shares: rendered batches, image files, and the files it opens."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO, Any

from memgrid.core.errors import ProjectError
from memgrid.core.export.columns import DataColumns
from memgrid.core.export.manifest import ExportTally
from memgrid.core.export.options import ExportOptions, ImageMode
from memgrid.core.images import IMAGE_SUFFIXES
from memgrid.core.records import GridImage

IMAGES_FOLDER = "images"
CONTACT_SHEETS_FOLDER = "contact_sheets"


def image_suffix(project_path: str) -> str:
    """The image's file suffix, from the project's (content-addressed) path; never free text."""
    suffix = PurePosixPath(project_path).suffix.lower()
    return suffix if suffix in IMAGE_SUFFIXES else ".bin"


def project_file(project_root: Path, relative: str) -> Path:
    """The image file a stored path names, refusing paths that would leave the project."""
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts or not relative:
        raise ProjectError(f"{relative!r}: stored image path leaves the project folder")
    return project_root / path


def place_image(source: Path, target: Path, mode: ImageMode) -> None:
    """Copy or link one image into the export (a hard link, else a symlink across filesystems)."""
    if mode is ImageMode.COPY:
        shutil.copyfile(source, target)
        return
    try:
        os.link(source, target)
    except OSError:
        os.symlink(source.resolve(), target)


@dataclass(frozen=True)
class ExportItem:
    """One grid on its way into an export: its row, the project files of the images it
    brings along (empty when images stay out) and its contact sheet's PNG bytes."""

    row: dict[str, Any]
    sources: Sequence[Path] = ()
    contact_sheet: bytes | None = None


@dataclass
class RenderedRows:
    """A batch of rows serialised for one format, with the files they bring along.

    Made wherever rows are built (worker processes too: everything here pickles) and
    stored by the format's writer in the main process. `images` pairs each source file
    with its path in the export, `made` each made file (a contact sheet) with its path;
    WebDataset samples carry their own.
    """

    payload: Any
    images: list[tuple[Path, str]]
    tally: ExportTally
    made: list[tuple[str, bytes]] = field(default_factory=list)


class RowWriter:
    """Stores rendered rows, and their images, in the staging folder; one subclass per format.

    `image_path`, `contact_sheet_path` and `render` are pure class methods, so worker
    processes can run them; the instance lives in the main process and owns the open
    files. `columns` are the project's own flat columns (columns.py). `finish` completes
    the files and returns their names; as a context manager it closes them however the
    block ends.
    """

    def __init__(
        self, folder: Path, options: ExportOptions, mtime: float, columns: DataColumns
    ) -> None:
        self.folder = folder
        self.image_mode = options.image_mode
        self.mtime = mtime
        self.columns = columns
        self.files: list[str] = []
        self._handles: list[IO[Any]] = []
        self._image_folders: set[Path] = set()

    @classmethod
    def image_path(cls, image_mode: ImageMode, grid_id: int, image: GridImage) -> str | None:
        """Where the image goes, relative to the export; None when images stay out."""
        if image_mode is ImageMode.NONE:
            return None
        return f"{IMAGES_FOLDER}/{grid_id}/seed{image.seed}{image_suffix(image.path)}"

    @classmethod
    def contact_sheet_path(cls, grid_id: int) -> str:
        """Where the grid's contact sheet goes, relative to the export."""
        return f"{CONTACT_SHEETS_FOLDER}/{grid_id}.png"

    @classmethod
    def render(cls, items: Sequence[ExportItem], columns: DataColumns) -> Any:
        """The items' rows in the form `write` stores."""
        raise NotImplementedError

    def write(self, rendered: RenderedRows) -> None:
        for source, target in rendered.images:
            place_image(source, self._file_in_export(target), self.image_mode)
        for target, data in rendered.made:
            with open(self._file_in_export(target), "wb") as handle:
                handle.write(data)
        self._write_payload(rendered.payload)

    def _file_in_export(self, relative: str) -> Path:
        path = self.folder / relative
        if path.parent not in self._image_folders:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._image_folders.add(path.parent)
        return path

    def _write_payload(self, payload: Any) -> None:
        raise NotImplementedError

    def column_names(self) -> list[str] | None:
        """A flat layout's columns, for the manifest; None for nested rows."""
        return None

    def finish(self) -> list[str]:
        for handle in self._handles:
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        return self.files

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for handle in self._handles:
            handle.close()

    def _open(self, name: str, mode: str = "w", *, newline: str | None = None) -> IO[Any]:
        encoding = None if "b" in mode else "utf-8"
        handle = open(self.folder / name, mode, encoding=encoding, newline=newline)  # noqa: SIM115
        self._handles.append(handle)
        self.files.append(name)
        return handle


def fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
