"""Exporting a project: read the store in batches, resolve labels, filter, render, write.

Each batch costs a fixed number of queries (labels, grids with images, proposals,
scores), however many grids it holds, all read inside one snapshot. Large exports render
their batches in worker processes (one per core, each with its own connection) while
the main process writes them in order: building and encoding rows is pure Python, and
a second core halves the time of a 100,000-grid export.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import sys
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from multiprocessing.pool import AsyncResult
from pathlib import Path
from typing import Any

from memgrid.core.agreement import agreed_label
from memgrid.core.export.base import ExportItem, RenderedRows, project_file
from memgrid.core.export.columns import DataColumns
from memgrid.core.export.contact_sheet import contact_sheet, row_regions
from memgrid.core.export.manifest import ExportTally, build_manifest, write_manifest
from memgrid.core.export.options import ExportOptions, ImageMode
from memgrid.core.export.rows import build_row
from memgrid.core.export.staging import staged_destination
from memgrid.core.export.writers import WRITERS, open_writer, render_rows
from memgrid.core.records import LabelEvent, Score, ThresholdSet
from memgrid.db.store import Store
from memgrid.tui.services.project import Project

# Grids per batch: a few thousand keeps memory flat and stays far below SQLite's limit on
# query parameters.
BATCH_SIZE = 2000
# Below this many grids, starting worker processes costs more than it saves.
PARALLEL_MIN_GRIDS = 20_000


@dataclass(frozen=True)
class ExportReport:
    destination: Path
    rows: int
    images: int
    files: list[str]
    manifest: dict[str, Any]


@dataclass(frozen=True)
class BatchContext:
    """What rendering a batch needs besides the store; small and picklable for workers."""

    project_root: Path
    options: ExportOptions
    threshold_sets: dict[int, ThresholdSet]
    columns: DataColumns


def export_project(
    project: Project,
    options: ExportOptions,
    on_progress: Callable[[int, int], None] | None = None,
    *,
    workers: int | None = None,
    batch_size: int = BATCH_SIZE,
) -> ExportReport:
    """Export the grids the filters admit; nothing appears at the destination unless all of it does.

    `workers` None picks one process per core for large exports and none for small ones.
    """
    options.check(project.root, project.own_files())
    store = project.store
    created_at = datetime.now(UTC)
    context = BatchContext(
        project_root=project.root,
        options=options,
        threshold_sets={ts.id: ts for ts in store.thresholds.all()},
        columns=DataColumns.from_types(
            store.prompts.metadata_types_all(), store.scores.field_types_all()
        ),
    )
    grid_ids = store.grids.ids_all()
    batches = [
        grid_ids[start : start + batch_size] for start in range(0, len(grid_ids), batch_size)
    ]
    if workers is None:
        workers = export_workers(len(grid_ids))
    if store.path is None:  # an in-memory store cannot be opened by another process
        workers = 0
    tally = ExportTally()
    with (
        paused_garbage_collection(),
        staged_destination(options.destination, overwrite=options.overwrite) as staging,
        open_writer(options, staging, created_at.timestamp(), context.columns) as writer,
        # closing(): a failure here stops the worker pool at once, not whenever the
        # traceback lets go of the generator.
        closing(_rendered(project, context, batches, workers)) as rendered_batches,
    ):
        done = 0
        for batch, rendered in zip(batches, rendered_batches, strict=True):
            writer.write(rendered)
            tally.merge(rendered.tally)
            done += len(batch)
            if on_progress is not None:
                on_progress(done, len(grid_ids))
        files = writer.finish()
        manifest = build_manifest(
            options,
            tally,
            grids_in_project=len(grid_ids),
            files=files,
            columns=writer.column_names(),
            data_columns=context.columns,
            project_id=store.project_id,
            schema_version=store.schema_version,
            memgrid_version=_memgrid_version(),
            created_at=created_at,
        )
        write_manifest(staging, manifest)
    return ExportReport(
        destination=options.destination,
        rows=tally.rows,
        images=tally.images,
        files=files,
        manifest=manifest,
    )


def export_workers(grid_count: int) -> int:
    """Worker processes for an export of `grid_count` grids; 0 renders in this process.

    Workers are forked, which is safe only from a single-threaded process on Linux (the
    app's threads, or macOS's frameworks, could hold locks at the fork); elsewhere, and
    for small exports, rendering stays here.
    """
    cores = os.cpu_count() or 1
    forkable = sys.platform == "linux" and threading.active_count() == 1
    if grid_count < PARALLEL_MIN_GRIDS or cores < 2 or not forkable:
        return 0
    return min(cores, 4)


def render_batch(store: Store, context: BatchContext, batch: Sequence[int]) -> RenderedRows:
    """Read, resolve, filter and render one batch: labels first, the rest only for grids kept."""
    options = context.options
    with store.snapshot():
        events_by_grid: dict[int, list[LabelEvent]] = defaultdict(list)
        for event in store.labels.current_where(grid_ids=batch):
            events_by_grid[event.grid_id].append(event)
        admitted = []
        for grid_id in batch:
            events = events_by_grid.get(grid_id, [])
            agreed = agreed_label(events)
            if options.filters.admits(events, agreed):
                admitted.append((grid_id, events, agreed))
        admitted_ids = [grid_id for grid_id, _, _ in admitted]
        grids = {grid.id: grid for grid in store.grids.where(ids=admitted_ids)}
        proposals = {
            proposal.grid_id: proposal
            for proposal in store.proposals.active_where(grid_ids=admitted_ids)
        }
        scores: dict[int, list[Score]] = defaultdict(list)
        for score in store.scores.where(grid_ids=admitted_ids):
            scores[score.grid_id].append(score)
    writer = WRITERS[options.export_format]
    image_mode = options.image_mode
    items = []
    for grid_id, events, agreed in admitted:
        grid = grids.get(grid_id)
        if grid is None:
            continue
        proposal = proposals.get(grid_id)
        row = build_row(
            grid,
            events,
            agreed,
            proposal,
            context.threshold_sets.get(proposal.threshold_set_id) if proposal else None,
            scores.get(grid_id, ()),
            [writer.image_path(image_mode, grid_id, image) for image in grid.images],
            writer.contact_sheet_path(grid_id) if options.contact_sheets else None,
        )
        # The images' files, only where they are copied, linked or tiled: the path checks
        # are a third of a row-only export's time.
        needs_files = image_mode is not ImageMode.NONE or options.contact_sheets
        files = (
            [project_file(context.project_root, image.path) for image in grid.images]
            if needs_files
            else []
        )
        sheet = None
        if options.contact_sheets:
            sheet = contact_sheet(
                [(image.seed, file) for image, file in zip(grid.images, files, strict=True)],
                row_regions(row),
            )
        items.append(
            ExportItem(row, [] if image_mode is ImageMode.NONE else files, contact_sheet=sheet)
        )
    return render_rows(options, items, context.columns)


def _rendered(
    project: Project, context: BatchContext, batches: list[list[int]], workers: int
) -> Iterator[RenderedRows]:
    """Rendered batches in order: here, or from a pool that keeps a few batches in flight."""
    if workers < 1:
        for batch in batches:
            yield render_batch(project.store, context, batch)
        return
    # Forked workers inherit the loaded modules (no re-import, no __main__ re-run) and open
    # their own connection; they never touch this process's, and exit without closing it.
    with multiprocessing.get_context("fork").Pool(
        workers, initializer=_start_worker, initargs=(project.store.path, context)
    ) as pool:
        in_flight: deque[AsyncResult[RenderedRows]] = deque()
        pending = iter(batches)
        for batch in pending:
            in_flight.append(pool.apply_async(_render_in_worker, (batch,)))
            if len(in_flight) >= 2 * workers:
                break
        while in_flight:
            rendered = in_flight.popleft().get()
            next_batch = next(pending, None)
            if next_batch is not None:
                in_flight.append(pool.apply_async(_render_in_worker, (next_batch,)))
            yield rendered


_worker_state: tuple[Store, BatchContext] | None = None


def _start_worker(database: Path, context: BatchContext) -> None:
    """Open the worker's own connection once; every batch it renders reuses it."""
    global _worker_state
    # The main process handles Ctrl-C and tears the pool down; workers just stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.disable()
    _worker_state = (Store.open(database), context)


def _render_in_worker(batch: Sequence[int]) -> RenderedRows:
    """Render one batch in a worker process (a module-level function, so it pickles)."""
    assert _worker_state is not None, "worker started without _start_worker"
    store, context = _worker_state
    return render_batch(store, context, batch)


@contextmanager
def paused_garbage_collection() -> Iterator[None]:
    """Pause the cycle collector while rows are built: they hold no cycles, and its passes
    over millions of fresh dicts cost a third of an export's time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _memgrid_version() -> str:
    try:
        return version("memgrid")
    except PackageNotFoundError:
        return "unknown"
