"""The scoring loop shared by `memgrid score` and the app: every grid not yet scored, resumably.

The pixel metrics (tiled-l2, phash, keypoints, gradients) run in a process pool sized by
`workers`, started once per run and fed grids in chunks; with one worker they run here.
Each image is decoded once, on first use, into the views every metric shares
(core/metrics/features.py, SeedPixels), and whatever depends on the image alone (pHash
bits, ORB keypoints) is kept per image sha256 in the store, so re-scoring reads it back instead of
decoding (core/metrics/features.py). Model metrics (clip, sscd) run in this process,
with the store as their embedding cache. Each chunk's scores and new features go to the
store in one transaction, so a killed run resumes at the first chunk it had not finished.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memgrid.core.errors import InputError, Interrupted, UnavailableError
from memgrid.core.extras import require_extra
from memgrid.core.metrics import DEFAULT_METRICS, METRICS, WEIGHTS_FREE_METRICS, make_metric
from memgrid.core.metrics.base import Metric
from memgrid.core.metrics.clip import DEFAULT_MODEL, DEFAULT_PRETRAINED
from memgrid.core.metrics.features import FeatureCache, LazyImages
from memgrid.core.records import Grid, Score
from memgrid.tui.services.project import Project
from memgrid.tui.services.scoring_processes import (
    ChunkResult,
    PixelTask,
    one_thread_each,
    pool_context,
    score_chunk,
    score_or_unavailable,
    start_worker,
    with_grid,
)

# A chunk is a few grids of about this many images: one task for a worker and one
# transaction for the store; large enough that the pool's messages cost nothing beside
# the work, small enough that a killed run loses little and the workers stay balanced.
IMAGES_PER_CHUNK = 48
# Chunks handed to the pool per worker ahead of the one being written: enough to keep every
# worker busy, few enough that memory stays a small multiple of one grid per worker (a
# worker holds one grid's images at a time; a chunk's results are scores and features).
CHUNKS_IN_FLIGHT_PER_WORKER = 2
GRIDS_PER_QUERY = 256


@dataclass(frozen=True)
class MetricOptions:
    """What the user chose: metric names and where the model metrics find their weights."""

    names: tuple[str, ...] = DEFAULT_METRICS
    clip_model: str = DEFAULT_MODEL
    clip_pretrained: str | None = DEFAULT_PRETRAINED
    sscd_path: Path | None = None
    device: str = "cpu"


@dataclass
class ScoringReport:
    grids: int = 0  # grids in the project
    grids_pending: int = 0  # grids that needed at least one metric
    grids_scored: int = 0
    scores_written: int = 0
    unavailable: dict[str, str] = field(default_factory=dict)  # metric -> why (first seen)
    unavailable_grids: dict[str, int] = field(default_factory=dict)  # metric -> grids
    # metric -> grids already stored as unavailable and left so: the metric still cannot run
    held_unavailable: dict[str, int] = field(default_factory=dict)
    errors: list[InputError] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def grids_per_second(self) -> float:
        return self.grids_scored / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "grids": self.grids,
            "grids_pending": self.grids_pending,
            "grids_scored": self.grids_scored,
            "scores_written": self.scores_written,
            "unavailable": self.unavailable,
            "unavailable_grids": self.unavailable_grids,
            "held_unavailable": self.held_unavailable,
            "errors": [str(error) for error in self.errors],
            "seconds": round(self.seconds, 3),
            "grids_per_second": round(self.grids_per_second, 3),
        }


class ScoringInterrupted(Interrupted):
    """Ctrl-C during scoring, with what the run had stored by then."""

    report: ScoringReport


def build_metrics(
    options: MetricOptions, asked_by: Mapping[str, str] | None = None
) -> list[Metric]:
    """Metric instances for the chosen names, in the order given, without duplicates.

    `asked_by` maps the metrics the user asked for to the option that asked (`--sscd`): those
    need their extra now (MissingExtraError); a model metric that only came with the
    defaults is stored as unavailable instead, with the same words.
    """
    metrics = []
    for name in dict.fromkeys(options.names):
        if name not in METRICS:
            raise InputError(
                "--metric", f"unknown metric {name!r}; choose from {', '.join(METRICS)}"
            )
        if name == "clip":
            metrics.append(
                make_metric(
                    name,
                    model=options.clip_model,
                    pretrained=options.clip_pretrained,
                    device=options.device,
                )
            )
        elif name == "sscd":
            metrics.append(make_metric(name, path=options.sscd_path))
        else:
            metrics.append(make_metric(name))
        extra = metrics[-1].extra
        if extra and asked_by and name in asked_by:
            require_extra(extra, asked_by[name])
    return metrics


@dataclass(frozen=True)
class _GridWork:
    """What one grid needs: the metrics it lacks, split by where they run."""

    grid: Grid
    paths: tuple[Path, ...]  # its images on disk, in seed order
    pool_metrics: tuple[Metric, ...]
    model_metrics: tuple[Metric, ...]
    # Metrics known not to run here, with why: recorded without decoding anything.
    unavailable: tuple[tuple[Metric, str], ...] = ()


@dataclass(frozen=True)
class _Chunk:
    """A few grids for one worker, with the features the store already has for their images."""

    work: tuple[_GridWork, ...]
    features: FeatureCache

    @property
    def tasks(self) -> tuple[PixelTask, ...]:
        return tuple(PixelTask(item.grid, item.paths, item.pool_metrics) for item in self.work)


def score_project(
    project: Project,
    metrics: Sequence[Metric],
    *,
    workers: int = 1,
    rescore: bool = False,
    grid_ids: Sequence[int] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ScoringReport:
    """Score every grid that lacks a current score for one of `metrics`.

    `on_progress(done, total)` is called after each grid is written. Bad images fail
    their grid only (reported in `errors`); a metric that cannot run here is stored as
    unavailable with its reason. Ctrl-C raises ScoringInterrupted with the report so far
    (every chunk written before it is stored).
    """
    if workers < 1:
        raise InputError("--workers", "must be at least 1")
    started = time.perf_counter()
    wanted = list(grid_ids) if grid_ids is not None else project.store.grids.ids_all()
    report = ScoringReport(grids=len(wanted))
    try:
        pending, unusable, report.held_unavailable = _plan(project, metrics, wanted, rescore)
        for name in report.held_unavailable:
            report.unavailable.setdefault(name, unusable[name])
        report.grids_pending = len(pending)
        chunks = _chunks(project, _grid_work(project, pending, unusable))
        for chunk, scored in _scored_chunks(chunks, workers, metrics):
            _write_chunk(project, chunk, scored, report)
            if on_progress:
                on_progress(report.grids_scored + len(report.errors), report.grids_pending)
    except KeyboardInterrupt:
        report.seconds = time.perf_counter() - started
        raise ScoringInterrupted(report) from None
    report.seconds = time.perf_counter() - started
    return report


def grids_needing_scores(project: Project) -> dict[str, int]:
    """Per default weights-free metric, the grids without a current score for it: never
    scored, scored by an older version or other parameters, or having gained seeds since
    (what `memgrid score` would compute, so `status` can say when scores are out of date)."""
    every_grid = set(project.store.grids.ids_all())
    return {
        name: len(_grids_lacking(project, make_metric(name), every_grid, True))
        for name in WEIGHTS_FREE_METRICS
    }


def _write_chunk(
    project: Project, chunk: _Chunk, scored: ChunkResult, report: ScoringReport
) -> None:
    """Add the model metrics' scores and the unavailable ones, then store the chunk's scores
    and new features in one transaction."""
    written: list[list[Score]] = []
    for work, result in zip(chunk.work, scored.results, strict=True):
        if result.error is not None:
            report.errors.append(result.error)
            continue
        images = result.images if result.images is not None else LazyImages(work.paths)
        try:
            model_scores = _model_scores(project, work, images)
        except InputError as error:
            report.errors.append(with_grid(error, work.grid))
            continue
        written.append(
            [
                *result.scores,
                *model_scores,
                *(metric.unavailable(work.grid.id, why) for metric, why in work.unavailable),
            ]
        )
    with project.store.atomic():
        for key, found in scored.features.items():
            project.store.images.put_embeddings(key, found)
        for scores in written:
            for score in scores:
                project.store.scores.add(score)
    for scores in written:
        _count_grid(scores, report)


def _count_grid(scores: list[Score], report: ScoringReport) -> None:
    report.grids_scored += 1
    report.scores_written += len(scores)
    for score in scores:
        if not score.available:
            report.unavailable.setdefault(score.metric, score.note)
            report.unavailable_grids[score.metric] = (
                report.unavailable_grids.get(score.metric, 0) + 1
            )


def _plan(
    project: Project, metrics: Sequence[Metric], grid_ids: Sequence[int], rescore: bool
) -> tuple[dict[int, list[Metric]], dict[str, str], dict[str, int]]:
    """What to score: grid id -> the metrics it still needs (in grid id order); the model
    metrics that cannot run here, with why; and, per such metric, how many grids are held.

    A grid already stored as unavailable for a metric is held (not rewritten) while the
    metric still cannot run; once its weights appear, the grid is scored. Each model metric
    is loaded once up front, and only when some grid needs it: a missing or corrupt weights
    file the user named (InputError) stops the run here, before any work.
    """
    wanted = set(grid_ids)
    pending: dict[int, list[Metric]] = {}
    unusable: dict[str, str] = {}
    held: dict[str, int] = {}
    for metric in metrics:
        needing = sorted(wanted) if rescore else _grids_lacking(project, metric, wanted, True)
        why = _why_unusable(metric) if needing and metric.uses_cache else None
        if why is not None:
            unusable[metric.name] = why
            if not rescore:
                unscored = set(_grids_lacking(project, metric, wanted, False))
                held[metric.name] = sum(1 for grid_id in needing if grid_id not in unscored)
                needing = [grid_id for grid_id in needing if grid_id in unscored]
        for grid_id in needing:
            pending.setdefault(grid_id, []).append(metric)
    return dict(sorted(pending.items())), unusable, {k: v for k, v in held.items() if v}


def _grids_lacking(
    project: Project, metric: Metric, wanted: set[int], retry_unavailable: bool
) -> list[int]:
    found = project.store.scores.unscored_ids_where(
        metric=metric.name,
        params=metric.params,
        version=metric.version,
        retry_unavailable=retry_unavailable,
    )
    return [grid_id for grid_id in found if grid_id in wanted]


def _why_unusable(metric: Metric) -> str | None:
    try:
        metric.ensure_loaded()
    except UnavailableError as error:
        return str(error)
    return None


def _grid_work(
    project: Project, pending: dict[int, list[Metric]], unusable: dict[str, str]
) -> Iterator[_GridWork]:
    """Grids loaded from the store a page at a time, paired with the metrics they need."""
    ids = list(pending)
    for start in range(0, len(ids), GRIDS_PER_QUERY):
        for grid in project.store.grids.where(ids=ids[start : start + GRIDS_PER_QUERY]):
            needed = pending[grid.id]
            usable = [m for m in needed if m.name not in unusable]
            yield _GridWork(
                grid=grid,
                paths=tuple(project.image_path(image) for image in grid.images),
                pool_metrics=tuple(m for m in usable if not m.uses_cache),
                model_metrics=tuple(m for m in usable if m.uses_cache),
                unavailable=tuple((m, unusable[m.name]) for m in needed if m.name in unusable),
            )


def _chunks(project: Project, work: Iterator[_GridWork]) -> Iterator[_Chunk]:
    """Grids grouped about IMAGES_PER_CHUNK images at a time, each chunk with the features
    the store already holds for its images (read just before it is handed out)."""
    batch: list[_GridWork] = []
    for item in work:
        batch.append(item)
        if sum(len(entry.paths) for entry in batch) >= IMAGES_PER_CHUNK:
            yield _chunk_with_features(project, batch)
            batch = []
    if batch:
        yield _chunk_with_features(project, batch)


def _chunk_with_features(project: Project, batch: list[_GridWork]) -> _Chunk:
    shas_by_key: dict[str, set[str]] = {}
    for item in batch:
        for metric in item.pool_metrics:
            if metric.feature_key is not None:
                shas = shas_by_key.setdefault(metric.feature_key, set())
                shas.update(image.sha256 for image in item.grid.images)
    known = {
        key: project.store.images.get_embeddings(key, sorted(shas))
        for key, shas in shas_by_key.items()
    }
    return _Chunk(work=tuple(batch), features=FeatureCache(known))


def _scored_chunks(
    chunks: Iterator[_Chunk], workers: int, metrics: Sequence[Metric]
) -> Iterator[tuple[_Chunk, ChunkResult]]:
    """Chunks scored in order: here with one worker or one chunk (a pool would only add its
    start), else in a process pool started once, with at most CHUNKS_IN_FLIGHT_PER_WORKER
    chunks per worker waiting (bounded memory)."""
    first_two = list(itertools.islice(chunks, 2))
    chunks = itertools.chain(first_two, chunks)
    if workers == 1 or len(first_two) < 2:
        with one_thread_each(metrics):
            for chunk in chunks:
                yield chunk, score_chunk(chunk.tasks, chunk.features, keep_images=True)
        return
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=pool_context(), initializer=start_worker
    )
    try:
        in_flight: deque[tuple[_Chunk, Future[ChunkResult]]] = deque()
        for chunk in chunks:
            in_flight.append((chunk, pool.submit(score_chunk, chunk.tasks, chunk.features)))
            if len(in_flight) >= workers * CHUNKS_IN_FLIGHT_PER_WORKER:
                done, future = in_flight.popleft()
                yield done, future.result()
        while in_flight:
            done, future = in_flight.popleft()
            yield done, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _shas(work: _GridWork) -> list[str]:
    return [image.sha256 for image in work.grid.images]


def _model_scores(project: Project, work: _GridWork, images: LazyImages) -> list[Score]:
    """The model metrics, in this process: torch has its own threads, the store its connection."""
    return [
        score_or_unavailable(metric, work.grid.id, images, _shas(work), project.store.images)
        for metric in work.model_metrics
    ]
