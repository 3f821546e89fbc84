"""Scoring's worker side: what a worker computes for a chunk of grids, and how scoring's
processes are set up (each computes on one core, with BLAS and OpenCV on one thread, and
reuses its freed seed buffers; the pool's workers start from a forkserver that imported the
pixel metrics once). It imports core only, not the store: workers never touch SQLite."""

from __future__ import annotations

import ctypes
import multiprocessing
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

from PIL import Image

from memgrid.core.errors import InputError, UnavailableError
from memgrid.core.metrics.base import Metric
from memgrid.core.metrics.features import FeatureCache, LazyImages
from memgrid.core.records import Grid, Score

OPENCV_METRICS = ("keypoints", "gradients")
# What the pool's forkserver imports once, so that workers start with it loaded.
PRELOADED = (
    __name__,
    "memgrid.core.metrics.tiled_l2",
    "memgrid.core.metrics.phash",
    "memgrid.core.metrics.keypoints",
    "memgrid.core.metrics.gradients",
    "cv2",
    "pyspng",
)


# glibc's malloc options (malloc.h): M_TRIM_THRESHOLD, M_MMAP_THRESHOLD.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def reuse_freed_memory() -> None:
    """Keep the memory of one seed's buffers for the next (glibc only; a no-op elsewhere).

    By default glibc hands each freed buffer of a decoded seed (about 1 MB at 512 px) back
    to the kernel and faults it back in, zeroed, for the next seed: 1.3 ms a 512 px seed
    when only decoding, 0.35 ms within scoring (A/B runs). Set for the rest of the process:
    buffers up to 32 MB (a 2048 px seed is 12) come from the heap, which keeps up to 128 MB
    free before returning any. Pillow recycles its own blocks and needs none of this.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc: its allocator has its own policy
        return
    mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)
    mallopt(_M_TRIM_THRESHOLD, 128 * 2**20)


@contextmanager
def one_thread_each(metrics: Sequence[Metric]) -> Iterator[None]:
    """BLAS and OpenCV on one thread each while scoring: the per-tile Gram matrices are
    small, and library threads spinning beside the workers slow every worker down; so
    `workers` is the number of cores used. torch's own thread pool (clip, sscd on this
    thread) is not a BLAS pool and keeps its size."""
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    reuse_freed_memory()
    cv2 = _loaded_cv2(metrics)
    opencv_threads = cv2.getNumThreads() if cv2 is not None else None
    if cv2 is not None:
        cv2.setNumThreads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        if cv2 is not None:
            cv2.setNumThreads(opencv_threads)


def _loaded_cv2(metrics: Sequence[Metric]) -> Any:
    """OpenCV when a metric uses it or it is already loaded; None otherwise (no import)."""
    if "cv2" not in sys.modules and not any(metric.name in OPENCV_METRICS for metric in metrics):
        return None
    try:
        import cv2
    except ImportError:
        return None  # keypoints then reports itself unavailable
    return cv2


def pool_context() -> BaseContext:
    """forkserver: workers forked from a clean process that preloaded the pixel metrics.

    A plain fork would copy OpenCV's and BLAS's thread pools mid-state (a worker then hangs
    on its first parallel call) and any lock the app's threads hold; spawn would re-import
    numpy and OpenCV in every worker of every run.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():  # Windows
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOADED))
    return context


def start_worker() -> None:
    """Each worker computes on one core and leaves Ctrl-C to the main process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    reuse_freed_memory()
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
    cv2 = _loaded_cv2(())
    if cv2 is not None:
        cv2.setNumThreads(1)


@dataclass
class GridResult:
    scores: list[Score]
    images: LazyImages | None  # kept only when scored in this process, for the model metrics
    error: InputError | None = None


@dataclass(frozen=True)
class PixelTask:
    """What a worker needs of one grid (picklable: no model metric, no store)."""

    grid: Grid
    paths: tuple[Path, ...]
    metrics: tuple[Metric, ...]


@dataclass
class ChunkResult:
    results: list[GridResult]
    features: dict[str, dict[str, bytes]]  # feature key -> sha256 -> bytes, computed anew


def score_chunk(
    tasks: Sequence[PixelTask], features: FeatureCache, keep_images: bool = False
) -> ChunkResult:
    """Runs in a worker (or here): each grid's pixel metrics, its images decoded on first use."""
    results = []
    for task in tasks:
        images = LazyImages(task.paths)
        shas = [image.sha256 for image in task.grid.images]
        try:
            scores = [
                score_or_unavailable(metric, task.grid.id, images, shas, features)
                for metric in task.metrics
            ]
        except InputError as error:
            results.append(GridResult([], None, with_grid(error, task.grid)))
            continue
        results.append(GridResult(scores, images if keep_images else None))
    return ChunkResult(results, features.added)


def score_or_unavailable(
    metric: Metric,
    grid_id: int,
    images: Sequence[Image.Image],
    shas: list[str],
    cache: Any = None,
) -> Score:
    try:
        return metric.score(grid_id, images, shas, cache)
    except UnavailableError as error:
        return metric.unavailable(grid_id, str(error))


def with_grid(error: InputError, grid: Grid) -> InputError:
    """The decoding error, saying which grid it spoiled."""
    return InputError(error.source, f"{error.problem} (grid {grid.id} not scored)", error.location)
