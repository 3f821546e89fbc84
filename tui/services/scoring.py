"""The scoring loop shared by `memgrid score` and the app: every grid not yet scored, resumably.

Images are decoded and the pixel metrics (tiled-l2, phash) computed in a thread pool:
Pillow's decoders and numpy's array work release the GIL, so threads scale without
pickling images across processes. Model metrics (clip, sscd) run on the calling thread,
with the store as their embedding cache. Each grid's scores go to the store in one
transaction, so a killed run resumes at the first grid it had not finished.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memgrid.core.errors import InputError, UnavailableError
from memgrid.core.extras import require_extra
from memgrid.core.images import decode_rgb
from memgrid.core.metrics import DEFAULT_METRICS, METRICS, make_metric
from memgrid.core.metrics.base import Metric
from memgrid.core.metrics.clip import DEFAULT_MODEL, DEFAULT_PRETRAINED
from memgrid.core.records import Grid, GridImage, Score
from memgrid.tui.services.project import Project
from PIL import Image

# Grids handed to the pool ahead of the one being written: enough to keep every worker
# busy, few enough that decoded images of waiting grids stay a small multiple of one grid.
PREFETCH_PER_WORKER = 2
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
    pool_metrics: tuple[Metric, ...]
    model_metrics: tuple[Metric, ...]
    # Metrics known not to run here, with why: recorded without decoding anything.
    unavailable: tuple[tuple[Metric, str], ...] = ()

    @property
    def needs_images(self) -> bool:
        return bool(self.pool_metrics or self.model_metrics)


@dataclass
class _GridResult:
    scores: list[Score]
    images: list[Image.Image] | None  # kept only for the model metrics
    error: InputError | None = None


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
    unavailable with its reason.
    """
    if workers < 1:
        raise InputError("--workers", "must be at least 1")
    started = time.perf_counter()
    wanted = list(grid_ids) if grid_ids is not None else project.store.grids.ids_all()
    report = ScoringReport(grids=len(wanted))
    pending, unusable, report.held_unavailable = _plan(project, metrics, wanted, rescore)
    for name in report.held_unavailable:
        report.unavailable.setdefault(name, unusable[name])
    report.grids_pending = len(pending)
    work = _grid_work(project, pending, unusable)
    with (
        _one_blas_thread(),
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="memgrid-score") as pool,
    ):
        for done_work, result in _in_order(pool, work, workers * PREFETCH_PER_WORKER, project):
            if result.error is not None:
                report.errors.append(result.error)
            else:
                _write_grid(project, done_work, result, report)
            if on_progress:
                on_progress(report.grids_scored + len(report.errors), report.grids_pending)
    report.seconds = time.perf_counter() - started
    return report


def _write_grid(
    project: Project, work: _GridWork, result: _GridResult, report: ScoringReport
) -> None:
    """Add the model metrics' scores and the unavailable ones, then store all in one go."""
    scores = [
        *result.scores,
        *_model_scores(project, work, result.images),
        *(metric.unavailable(work.grid.id, why) for metric, why in work.unavailable),
    ]
    with project.store.atomic():
        for score in scores:
            project.store.scores.add(score)
    report.grids_scored += 1
    report.scores_written += len(scores)
    for score in scores:
        if not score.available:
            report.unavailable.setdefault(score.metric, score.note)
            report.unavailable_grids[score.metric] = (
                report.unavailable_grids.get(score.metric, 0) + 1
            )


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """BLAS on one thread while the pool runs: the per-tile Gram matrices are small, and
    BLAS threads spinning beside the pool's threads slow every worker down. torch's own
    thread pool (clip, sscd on the calling thread) is not a BLAS pool and keeps its size."""
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    with threadpool_limits(limits=1, user_api="blas"):
        yield


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
                pool_metrics=tuple(m for m in usable if not m.uses_cache),
                model_metrics=tuple(m for m in usable if m.uses_cache),
                unavailable=tuple((m, unusable[m.name]) for m in needed if m.name in unusable),
            )


def _in_order(
    pool: ThreadPoolExecutor, work: Iterator[_GridWork], ahead: int, project: Project
) -> Iterator[tuple[_GridWork, _GridResult]]:
    """Results in submission order, with at most `ahead` grids in flight."""
    in_flight: deque[tuple[_GridWork, Future[_GridResult]]] = deque()
    for item in work:
        in_flight.append((item, pool.submit(_decode_and_score, project.image_path, item)))
        if len(in_flight) >= ahead:
            done_work, future = in_flight.popleft()
            yield done_work, future.result()
    while in_flight:
        done_work, future = in_flight.popleft()
        yield done_work, future.result()


def _decode_and_score(image_path: Callable[[GridImage], Path], work: _GridWork) -> _GridResult:
    """Runs in the pool: decode the grid's images once, then the pixel metrics."""
    grid = work.grid
    if not work.needs_images:
        return _GridResult(scores=[], images=None)
    try:
        images = [decode_rgb(image_path(image)) for image in grid.images]
    except InputError as error:
        return _GridResult(scores=[], images=None, error=_with_grid(error, grid))
    shas = [image.sha256 for image in grid.images]
    scores = [_score_or_unavailable(metric, grid.id, images, shas) for metric in work.pool_metrics]
    return _GridResult(scores=scores, images=images if work.model_metrics else None)


def _model_scores(
    project: Project, work: _GridWork, images: list[Image.Image] | None
) -> list[Score]:
    """The model metrics, on this thread: torch has its own threads, the store its connection."""
    if not work.model_metrics or images is None:
        return []
    shas = [image.sha256 for image in work.grid.images]
    return [
        _score_or_unavailable(metric, work.grid.id, images, shas, project.store.images)
        for metric in work.model_metrics
    ]


def _score_or_unavailable(
    metric: Metric,
    grid_id: int,
    images: list[Image.Image],
    shas: list[str],
    cache: Any = None,
) -> Score:
    try:
        return metric.score(grid_id, images, shas, cache)
    except UnavailableError as error:
        return metric.unavailable(grid_id, str(error))


def _with_grid(error: InputError, grid: Grid) -> InputError:
    """The decoding error, saying which grid it spoiled."""
    return InputError(error.source, f"{error.problem} (grid {grid.id} not scored)", error.location)
