"""Labelled sets as files other tools load: rows, filters, writers and the export folder.

docs/design.md, "Export": One row per grid (prompt, agreed label and how it was reached, every
annotator's label, proposal, scores, provenance, images), written as JSONL, CSV,
Parquet, a Hugging Face `imagefolder` or WebDataset tar shards, beside a manifest
(`export.json`) that makes the export traceable. Everything is written into a hidden
folder beside the destination and renamed onto it at the end, so an interrupted export
leaves nothing at the destination. Every file name derives from ids, never from prompts.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tarfile
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO, Any

from memgrid.core.agreement import AgreedLabel, AgreementHow, GridState, grid_state
from memgrid.core.errors import InputError, ProjectError, UnavailableError
from memgrid.core.images import IMAGE_SUFFIXES
from memgrid.core.records import Grid, GridImage, LabelEvent, Proposal, Score, ThresholdSet
from memgrid.core.taxonomy import Category

MANIFEST_NAME = "export.json"
# Bumped when the row layout changes, so readers of old exports can tell.
EXPORT_LAYOUT_VERSION = 1
DEFAULT_SHARD_SIZE = 1000
IMAGES_FOLDER = "images"
IMAGEFOLDER_METADATA = "metadata.jsonl"
# Parquet rows are buffered into row groups of this many grids.
PARQUET_ROW_GROUP = 10_000


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


ROWS_FILES = {
    ExportFormat.JSONL: "grids.jsonl",
    ExportFormat.CSV: "grids.csv",
    ExportFormat.PARQUET: "grids.parquet",
}
# Formats that are pointless without their images.
IMAGE_FORMATS = (ExportFormat.IMAGEFOLDER, ExportFormat.WEBDATASET)


# ---- options and filters ---------------------------------------------------------------


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
    """What to export where; `with_images` None means the format's default."""

    export_format: ExportFormat
    destination: Path
    filters: ExportFilters = field(default_factory=ExportFilters)
    with_images: ImageMode | None = None
    shard_size: int = DEFAULT_SHARD_SIZE
    overwrite: bool = False

    @property
    def image_mode(self) -> ImageMode:
        if self.with_images is not None:
            return self.with_images
        return ImageMode.COPY if self.export_format in IMAGE_FORMATS else ImageMode.NONE

    def check(self, project_root: Path, project_files: Sequence[Path] = ()) -> None:
        """Refuse what cannot work, or would overwrite the project, before anything is written."""
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


def check_destination(
    destination: Path, project_root: Path, project_files: Sequence[Path], *, overwrite: bool
) -> None:
    """An existing destination needs `overwrite`; the project is never a destination.

    Neither the project folder (or a folder holding it) nor any of `project_files` (its
    database, images/, thumbs/) or anything inside them may be replaced by an export.
    """
    resolved = destination.resolve()
    if resolved == project_root.resolve() or resolved in project_root.resolve().parents:
        raise InputError(destination, "is the project folder or holds it; export elsewhere")
    for project_file in project_files:
        protected = project_file.resolve()
        if resolved == protected or protected in resolved.parents:
            raise InputError(
                destination, f"is part of the project ({project_file}); export elsewhere"
            )
    if (destination.exists() or destination.is_symlink()) and not overwrite:
        raise InputError(destination, "already exists; pass --overwrite to replace it")


# ---- rows ------------------------------------------------------------------------------

# What each field of a row holds; the manifest carries this, so an export explains itself.
ROW_FIELDS = {
    "grid_id": "the grid's id in the project (file names derive from it)",
    "prompt_id": "the prompt's id in the project",
    "prompt": "the prompt text",
    "model": "the generator model",
    "source": "where the grid came from (generate, import, demo)",
    "category": "the agreed primary category: explicit, implicit, unintended or none; "
    "null without an agreed label",
    "state": "labelled, flagged, skipped or unlabelled, over all annotators",
    "agreement": "how the label was reached (adjudicated, majority, tie, unlabelled), the "
    "annotators who chose it (support) out of those who labelled (annotators), their "
    "share, and the categories of a tie",
    "features": "the agreed label's features: category, name, tiles of the region map "
    "(empty: the whole image)",
    "webster": "Webster's replication type (MV, TV, RV, N) where the labels give one",
    "labels": "every annotator's current label, and adjudications, with time and whether "
    "the proposal was shown",
    "proposal": "the categorizer's proposal under the active threshold set (name, "
    "version), with score, margin and reasons",
    "scores": "metric -> the latest stored run: version, params, values, heat map",
    "settings": "the generation settings",
    "provenance": "how the grid was generated or imported",
    "images": "one per seed: seed, sha256, size, path in the export (null when images "
    "were left out) and path in the project",
}


def build_row(
    grid: Grid,
    events: Sequence[LabelEvent],
    agreed: AgreedLabel,
    proposal: Proposal | None,
    threshold_set: ThresholdSet | None,
    scores: Sequence[Score],
    image_paths: Sequence[str | None],
) -> dict[str, Any]:
    """The export row of one grid; `image_paths` are relative to the export (None: not in it).

    `scores` maps each metric to its latest stored run; later entries win.
    """
    return {
        "grid_id": grid.id,
        "prompt_id": grid.prompt_id,
        "prompt": grid.prompt,
        "model": grid.model,
        "source": grid.source,
        "category": _value(agreed.category),
        "state": grid_state(events).value,
        "agreement": {
            "how": agreed.how.value,
            "support": agreed.support,
            "annotators": agreed.annotators,
            "share": agreed.share,
            "tied": [category.value for category in agreed.tied],
        },
        "features": [feature.to_dict() for feature in agreed.features],
        "webster": _value(agreed.webster),
        "labels": [_label(event) for event in events],
        "proposal": _proposal(proposal, threshold_set),
        "scores": {score.metric: _score(score) for score in scores},
        "settings": grid.settings,
        "provenance": grid.provenance,
        "images": [
            {
                "seed": image.seed,
                "sha256": image.sha256,
                "width": image.width,
                "height": image.height,
                "path": path,
                "project_path": image.path,
            }
            for image, path in zip(grid.images, image_paths, strict=True)
        ],
    }


def _value(member: StrEnum | None) -> str | None:
    return None if member is None else member.value


def _label(event: LabelEvent) -> dict[str, Any]:
    return {
        "annotator": event.annotator,
        "action": event.action,
        "state": _value(event.state),
        "category": _value(event.category),
        "features": [feature.to_dict() for feature in event.features],
        "webster": _value(event.webster),
        "note": event.note,
        "proposal_shown": event.proposal_shown,
        "time": datetime.fromtimestamp(event.created_at, UTC).isoformat(timespec="milliseconds"),
    }


def _proposal(
    proposal: Proposal | None, threshold_set: ThresholdSet | None
) -> dict[str, Any] | None:
    if proposal is None:
        return None
    return {
        "category": proposal.category.value,
        "threshold_set": None
        if threshold_set is None
        else {"id": threshold_set.id, "name": threshold_set.name, "version": threshold_set.version},
        "score": proposal.score,
        "margin": proposal.margin,
        "webster": _value(proposal.webster),
        "features": [feature.to_dict() for feature in proposal.features],
        "reasons": [reason.to_dict() for reason in proposal.reasons],
    }


def _score(score: Score) -> dict[str, Any]:
    return {
        "version": score.version,
        "params": score.params,
        "values": score.values,
        "available": score.available,
        "note": score.note,
        "heatmap": score.heatmap,
    }


# Rows hold no cycles, so the encoder skips its cycle check (a fifth of its time).
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), check_circular=False, default=str
)


def compact_json(value: Any) -> str:
    """One-line JSON that line-based readers cannot split: U+2028/U+2029 are escaped too."""
    text = _ENCODER.encode(value)
    if "\u2028" in text or "\u2029" in text:
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text


# Flat rows (CSV, imagefolder metadata): scalars as columns, nested values as JSON text.
# Missing text is "" rather than null so that column types never change down the file.
FLAT_COLUMNS = (
    "grid_id",
    "prompt_id",
    "prompt",
    "model",
    "source",
    "category",
    "state",
    "agreement_how",
    "agreement_support",
    "agreement_annotators",
    "agreement_share",
    "webster",
    "features",
    "labels",
    "proposal_category",
    "proposal_threshold_set",
    "proposal_threshold_version",
    "proposal_score",
    "proposal_margin",
    "proposal",
    "scores",
    "settings",
    "provenance",
    "seeds",
    "images",
)
# Columns that may be missing numbers; JSON metadata leaves them out, since a column that
# starts null and turns numeric later breaks `datasets`' type inference.
_NULLABLE_NUMBER_COLUMNS = (
    "agreement_share",
    "proposal_threshold_version",
    "proposal_score",
    "proposal_margin",
)
IMAGEFOLDER_COLUMNS = (
    "file_name",
    "seed",
    "sha256",
    "width",
    "height",
    *(c for c in FLAT_COLUMNS if c not in (*_NULLABLE_NUMBER_COLUMNS, "seeds", "images")),
)


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """The row with nested values as JSON text and absent text as "" (in FLAT_COLUMNS order)."""
    agreement = row["agreement"]
    proposal = row["proposal"] or {}
    threshold_set = proposal.get("threshold_set") or {}
    return {
        "grid_id": row["grid_id"],
        "prompt_id": row["prompt_id"],
        "prompt": row["prompt"],
        "model": row["model"],
        "source": row["source"],
        "category": row["category"] or "",
        "state": row["state"],
        "agreement_how": agreement["how"],
        "agreement_support": agreement["support"],
        "agreement_annotators": agreement["annotators"],
        "agreement_share": agreement["share"],
        "webster": row["webster"] or "",
        "features": compact_json(row["features"]),
        "labels": compact_json(row["labels"]),
        "proposal_category": proposal.get("category") or "",
        "proposal_threshold_set": threshold_set.get("name", ""),
        "proposal_threshold_version": threshold_set.get("version"),
        "proposal_score": proposal.get("score"),
        "proposal_margin": proposal.get("margin"),
        "proposal": compact_json(row["proposal"]),
        "scores": compact_json(row["scores"]),
        "settings": compact_json(row["settings"]),
        "provenance": compact_json(row["provenance"]),
        "seeds": compact_json([image["seed"] for image in row["images"]]),
        "images": compact_json(row["images"]),
    }


# ---- image files -----------------------------------------------------------------------


def image_suffix(project_path: str) -> str:
    """The image's file suffix, from the project's (content-addressed) path; never free text."""
    suffix = PurePosixPath(project_path).suffix.lower()
    return suffix if suffix in IMAGE_SUFFIXES else ".bin"


def sample_key(grid_id: int) -> str:
    """The WebDataset key of a grid: no dots (WebDataset splits keys at the first dot)."""
    return f"grid{grid_id:08d}"


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


# ---- the Parquet layout ------------------------------------------------------------------


def load_pyarrow() -> Any:
    """pyarrow with its parquet module, or UnavailableError naming the extra that installs it."""
    try:
        import pyarrow
        import pyarrow.parquet  # makes pyarrow.parquet reachable
    except ImportError:
        raise UnavailableError(
            "parquet export needs pyarrow: pip install 'memgrid[export]'"
        ) from None
    return pyarrow


def parquet_schema(pa: Any) -> Any:
    """The Parquet layout of a row: typed structs, free-form dicts (scores, settings,
    provenance) as JSON text, since their keys differ from grid to grid."""
    feature = pa.struct(
        [("category", pa.string()), ("name", pa.string()), ("tiles", pa.list_(pa.int32()))]
    )
    reason = pa.struct(
        [
            ("signal", pa.string()),
            ("text", pa.string()),
            ("value", pa.float64()),
            ("threshold", pa.float64()),
            ("fired", pa.bool_()),
        ]
    )
    agreement = pa.struct(
        [
            ("how", pa.string()),
            ("support", pa.int32()),
            ("annotators", pa.int32()),
            ("share", pa.float64()),
            ("tied", pa.list_(pa.string())),
        ]
    )
    label = pa.struct(
        [
            ("annotator", pa.string()),
            ("action", pa.string()),
            ("state", pa.string()),
            ("category", pa.string()),
            ("features", pa.list_(feature)),
            ("webster", pa.string()),
            ("note", pa.string()),
            ("proposal_shown", pa.bool_()),
            ("time", pa.string()),
        ]
    )
    threshold_set = pa.struct([("id", pa.int64()), ("name", pa.string()), ("version", pa.int32())])
    proposal = pa.struct(
        [
            ("category", pa.string()),
            ("threshold_set", threshold_set),
            ("score", pa.float64()),
            ("margin", pa.float64()),
            ("webster", pa.string()),
            ("features", pa.list_(feature)),
            ("reasons", pa.list_(reason)),
        ]
    )
    image = pa.struct(
        [
            ("seed", pa.int64()),
            ("sha256", pa.string()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("path", pa.string()),
            ("project_path", pa.string()),
        ]
    )
    return pa.schema(
        [
            ("grid_id", pa.int64()),
            ("prompt_id", pa.int64()),
            ("prompt", pa.string()),
            ("model", pa.string()),
            ("source", pa.string()),
            ("category", pa.string()),
            ("state", pa.string()),
            ("agreement", agreement),
            ("features", pa.list_(feature)),
            ("webster", pa.string()),
            ("labels", pa.list_(label)),
            ("proposal", proposal),
            ("scores", pa.string()),
            ("settings", pa.string()),
            ("provenance", pa.string()),
            ("images", pa.list_(image)),
        ]
    )


# ---- writers ---------------------------------------------------------------------------


@dataclass
class RenderedRows:
    """A batch of rows serialised for one format, with the images they bring along.

    Made wherever rows are built (worker processes too: everything here pickles) and
    stored by the format's writer in the main process. `images` pairs each source file
    with its path in the export; WebDataset samples carry their own.
    """

    payload: Any
    images: list[tuple[Path, str]]
    tally: ExportTally


class RowWriter:
    """Stores rendered rows, and their images, in the staging folder; one subclass per format.

    `image_path` and `render` are pure class methods, so worker processes can run them;
    the instance lives in the main process and owns the open files. `finish` completes
    the files and returns their names; as a context manager it closes them however the
    block ends.
    """

    def __init__(self, folder: Path, options: ExportOptions, mtime: float) -> None:
        self.folder = folder
        self.image_mode = options.image_mode
        self.mtime = mtime
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
    def render(cls, rows: Sequence[tuple[dict[str, Any], Sequence[Path]]]) -> Any:
        """The rows (each with its images' source files) in the form `write` stores."""
        raise NotImplementedError

    def write(self, rendered: RenderedRows) -> None:
        for source, target in rendered.images:
            path = self.folder / target
            if path.parent not in self._image_folders:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._image_folders.add(path.parent)
            place_image(source, path, self.image_mode)
        self._write_payload(rendered.payload)

    def _write_payload(self, payload: Any) -> None:
        raise NotImplementedError

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


class JsonlWriter(RowWriter):
    """`grids.jsonl`: one nested JSON object a line."""

    def __init__(self, folder: Path, options: ExportOptions, mtime: float) -> None:
        super().__init__(folder, options, mtime)
        self._rows = self._open(ROWS_FILES[ExportFormat.JSONL], "wb")

    @classmethod
    def render(cls, rows: Sequence[tuple[dict[str, Any], Sequence[Path]]]) -> bytes:
        # Encoded where rendered: a worker hands over bytes, the cheapest thing to pickle.
        return "".join(compact_json(row) + "\n" for row, _ in rows).encode()

    def _write_payload(self, payload: bytes) -> None:
        self._rows.write(payload)


class CsvWriter(RowWriter):
    """`grids.csv`: FLAT_COLUMNS, nested values as JSON text; quoting keeps newlines in cells."""

    def __init__(self, folder: Path, options: ExportOptions, mtime: float) -> None:
        super().__init__(folder, options, mtime)
        # newline="" lets the csv module write the newlines inside quoted prompts itself.
        self._rows = self._open(ROWS_FILES[ExportFormat.CSV], newline="")
        self._rows.write(self.render_lines([FLAT_COLUMNS]))

    @staticmethod
    def render_lines(lines: Sequence[Sequence[Any]]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(lines)
        return buffer.getvalue()

    @classmethod
    def render(cls, rows: Sequence[tuple[dict[str, Any], Sequence[Path]]]) -> str:
        return cls.render_lines([list(flat_row(row).values()) for row, _ in rows])

    def _write_payload(self, payload: str) -> None:
        self._rows.write(payload)


class ParquetWriter(RowWriter):
    """`grids.parquet`: typed nested columns (parquet_schema), row groups of PARQUET_ROW_GROUP."""

    def __init__(self, folder: Path, options: ExportOptions, mtime: float) -> None:
        super().__init__(folder, options, mtime)
        self._pa = load_pyarrow()
        name = ROWS_FILES[ExportFormat.PARQUET]
        self._writer = self._pa.parquet.ParquetWriter(str(folder / name), parquet_schema(self._pa))
        self.files.append(name)
        self._pending: list[Any] = []

    @classmethod
    def render(cls, rows: Sequence[tuple[dict[str, Any], Sequence[Path]]]) -> Any:
        pa = load_pyarrow()
        return pa.Table.from_pylist(
            [
                {
                    **row,
                    "scores": compact_json(row["scores"]),
                    "settings": compact_json(row["settings"]),
                    "provenance": compact_json(row["provenance"]),
                }
                for row, _ in rows
            ],
            schema=parquet_schema(pa),
        )

    def _write_payload(self, payload: Any) -> None:
        self._pending.append(payload)
        if sum(table.num_rows for table in self._pending) >= PARQUET_ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            table = self._pa.concat_tables(self._pending)
            self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
            self._pending = []

    def finish(self) -> list[str]:
        self._flush()
        self._writer.close()
        _fsync_file(self.folder / self.files[0])
        return super().finish()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._writer.is_open:
            self._writer.close()
        super().__exit__(kind, error, traceback)


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


# A WebDataset sample: its key, its JSON, and (member name, source file) per image.
Sample = tuple[str, bytes, list[tuple[str, Path]]]


class WebDatasetWriter(RowWriter):
    """Tar shards of `shard_size` samples: `<key>.json` plus `<key>.seed<N>.<ext>` per image."""

    def __init__(self, folder: Path, options: ExportOptions, mtime: float) -> None:
        super().__init__(folder, options, mtime)
        self.shard_size = options.shard_size
        self._tar: tarfile.TarFile | None = None
        self._in_shard = 0

    @classmethod
    def image_path(cls, image_mode: ImageMode, grid_id: int, image: GridImage) -> str | None:
        return f"{sample_key(grid_id)}.seed{image.seed}{image_suffix(image.path)}"

    @classmethod
    def render(cls, rows: Sequence[tuple[dict[str, Any], Sequence[Path]]]) -> list[Sample]:
        return [
            (
                sample_key(row["grid_id"]),
                compact_json(row).encode(),
                [
                    (image["path"], source)
                    for image, source in zip(row["images"], sources, strict=True)
                ],
            )
            for row, sources in rows
        ]

    def _write_payload(self, payload: list[Sample]) -> None:
        for key, row_json, images in payload:
            tar = self._shard()
            for member, source in images:
                # Opened, not tar.add()ed: a symlinked image goes in as its bytes, not a link.
                with open(source, "rb") as handle:
                    info = self._member(member, os.fstat(handle.fileno()).st_size)
                    tar.addfile(info, handle)
            tar.addfile(self._member(f"{key}.json", len(row_json)), io.BytesIO(row_json))
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
            _fsync_file(self.folder / name)
        return super().finish()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._close_tar()
        super().__exit__(kind, error, traceback)


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


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


# ---- the export folder and its manifest ---------------------------------------------------


@contextmanager
def staged_destination(destination: Path, *, overwrite: bool) -> Iterator[Path]:
    """Yield an empty hidden folder beside `destination`; rename it onto `destination` at the end.

    If the block raises (or is interrupted), the folder is removed and `destination` is
    untouched. With `overwrite`, an existing destination is swapped out by two renames
    and then deleted; a failed swap puts it back.
    """
    parent = destination.parent
    parent.mkdir(parents=True, exist_ok=True)
    recover_stale_exports(destination)
    # mkdir, not mkdtemp: the export gets the umask's permissions, not mkdtemp's 0700.
    staging = parent / f".{destination.name}.{_owner_tag()}.partial"
    staging.mkdir()
    try:
        yield staging
        _swap_in(staging, destination, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _owner_tag() -> str:
    """The writing process's id and a random part: a later run can tell a dead writer's leftovers."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _owner_alive(leftover: Path) -> bool:
    try:
        pid = int(leftover.name.rsplit(".", 2)[-2].split("-", 1)[0])
    except (ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def recover_stale_exports(destination: Path) -> None:
    """Clean up after an export that was killed: drop its half-written folder, and if it
    died in the middle of an --overwrite swap, put the previous export back."""
    parent = destination.parent
    for leftover in sorted(parent.glob(f".{destination.name}.*.old")):
        if _owner_alive(leftover):
            continue
        if not destination.exists() and not destination.is_symlink():
            os.replace(leftover, destination)
        else:
            shutil.rmtree(leftover, ignore_errors=True)
    for leftover in parent.glob(f".{destination.name}.*.partial"):
        if not _owner_alive(leftover):
            shutil.rmtree(leftover, ignore_errors=True)


def _swap_in(staging: Path, destination: Path, *, overwrite: bool) -> None:
    old: Path | None = None
    if destination.exists() or destination.is_symlink():
        if not overwrite:
            raise InputError(destination, "already exists; pass --overwrite to replace it")
        old = destination.parent / f".{destination.name}.{_owner_tag()}.old"
        os.replace(destination, old)
    try:
        os.replace(staging, destination)
    except BaseException:
        if old is not None:
            os.replace(old, destination)
        raise
    _fsync_folder(destination.parent)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


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


_FLAT_LAYOUTS = {
    ExportFormat.CSV: list(FLAT_COLUMNS),
    ExportFormat.IMAGEFOLDER: list(IMAGEFOLDER_COLUMNS),
}


def build_manifest(
    options: ExportOptions,
    tally: ExportTally,
    *,
    grids_in_project: int,
    files: Sequence[str],
    project_id: str | None,
    schema_version: int,
    memgrid_version: str,
    created_at: datetime,
) -> dict[str, Any]:
    """What `export.json` says: enough to trace an export back to its project and filters."""
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
        "columns": _FLAT_LAYOUTS.get(options.export_format),
    }


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    path = folder / MANIFEST_NAME
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
