"""The WebDataset export: tar shards of one sample per grid, its JSON and one image per seed."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from memgrid.core.export.base import ExportItem, RowWriter, fsync_file, image_suffix
from memgrid.core.export.columns import DataColumns, compact_json
from memgrid.core.export.options import ExportOptions, ImageMode
from memgrid.core.records import GridImage


def sample_key(grid_id: int) -> str:
    """The WebDataset key of a grid: no dots (WebDataset splits keys at the first dot)."""
    return f"grid{grid_id:08d}"


# A WebDataset sample: its key, its JSON, (member name, source file) per image, and
# (member name, bytes) per made file (the contact sheet).
Sample = tuple[str, bytes, list[tuple[str, Path]], list[tuple[str, bytes]]]


class WebDatasetWriter(RowWriter):
    """Tar shards of `shard_size` samples: `<key>.json` plus `<key>.seed<N>.<ext>` per image
    (and `<key>.contact.png`, the contact sheet, when asked for)."""

    def __init__(
        self, folder: Path, options: ExportOptions, mtime: float, columns: DataColumns
    ) -> None:
        super().__init__(folder, options, mtime, columns)
        self.shard_size = options.shard_size
        self._tar: tarfile.TarFile | None = None
        self._in_shard = 0

    @classmethod
    def image_path(cls, image_mode: ImageMode, grid_id: int, image: GridImage) -> str | None:
        return f"{sample_key(grid_id)}.seed{image.seed}{image_suffix(image.path)}"

    @classmethod
    def contact_sheet_path(cls, grid_id: int) -> str:
        return f"{sample_key(grid_id)}.contact.png"

    @classmethod
    def render(cls, items: Sequence[ExportItem], columns: DataColumns) -> list[Sample]:
        return [
            (
                sample_key(item.row["grid_id"]),
                compact_json(item.row).encode(),
                [
                    (image["path"], source)
                    for image, source in zip(item.row["images"], item.sources, strict=True)
                ],
                []
                if item.contact_sheet is None
                else [(item.row["contact_sheet"], item.contact_sheet)],
            )
            for item in items
        ]

    def _write_payload(self, payload: list[Sample]) -> None:
        for key, row_json, images, made in payload:
            tar = self._shard()
            for member, source in images:
                # Opened, not tar.add()ed: a symlinked image goes in as its bytes, not a link.
                with open(source, "rb") as handle:
                    info = self._member(member, os.fstat(handle.fileno()).st_size)
                    tar.addfile(info, handle)
            for member, data in [*made, (f"{key}.json", row_json)]:
                tar.addfile(self._member(member, len(data)), io.BytesIO(data))
            self._in_shard += 1

    def _shard(self) -> tarfile.TarFile:
        if self._tar is None or self._in_shard >= self.shard_size:
            self._close_tar()
            name = f"shard-{len(self.files):06d}.tar"
            self._tar = tarfile.open(  # noqa: SIM115  (one shard open at a time, closed by _close_tar)
                self.folder / name, "w", format=tarfile.PAX_FORMAT
            )
            self.files.append(name)
            self._in_shard = 0
        return self._tar

    def _member(self, name: str, size: int) -> tarfile.TarInfo:
        """A plain file owned by nobody in particular, stamped with the export's time."""
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o644
        info.mtime = int(self.mtime)
        return info

    def _close_tar(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None

    def finish(self) -> list[str]:
        self._close_tar()
        for name in self.files:
            fsync_file(self.folder / name)
        return super().finish()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._close_tar()
        super().__exit__(kind, error, traceback)
