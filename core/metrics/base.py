"""The one interface every consistency metric follows.

A metric turns the decoded seeds of one grid into a pairwise matrix (distances or cosine
similarities); `grid_scores` turns any such matrix into the same grid-level numbers, so
the categorizer reads one set of keys whatever the metric.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from memgrid.core.metrics.grid_scores import (
    DBSCAN_MIN_SAMPLES,
    MatrixKind,
    grid_scores,
    require_seeds,
)
from memgrid.core.records import Score

if TYPE_CHECKING:
    from memgrid.core.metrics.features import SeedImage


class EmbeddingCache(Protocol):
    """Where embeddings live between runs: float32 bytes per (model key, image sha256).

    The project store implements this; core only sees the protocol, so it stays SQLite-free.
    """

    def get_embeddings(self, model_key: str, shas: Sequence[str]) -> dict[str, bytes]: ...

    def put_embeddings(self, model_key: str, embeddings: Mapping[str, bytes]) -> None: ...


class Metric:
    """A pairwise comparison of a grid's seeds with a near-duplicate threshold.

    Subclasses set `name`, `kind` and `version`, store their parameters, and implement
    `matrix`. `score` then adds the shared grid scores; metrics with more to say (the
    region map of tiled-l2) extend it.
    """

    name: ClassVar[str]
    kind: ClassVar[MatrixKind]
    version: ClassVar[str] = "1"
    # True when the metric runs a model and caches embeddings: the scoring loop then calls
    # it from one thread with the store as cache, instead of from the decoding pool.
    uses_cache: ClassVar[bool] = False
    # The optional extra the metric's model needs (core/extras.py); None: the base install.
    extra: ClassVar[str | None] = None

    def __init__(self, threshold: float, cluster_eps: float | None = None) -> None:
        self.threshold = float(threshold)
        # DBSCAN's eps in distance units; by default the metric's own near-duplicate
        # threshold, which for SSCD (0.5 cosine) is exactly MemBench's eps 0.5 on 1 - cosine.
        if cluster_eps is None:
            cluster_eps = (
                self.threshold if self.kind == "distance" else round(1.0 - self.threshold, 12)
            )
        self.cluster_eps = float(cluster_eps)

    @property
    def feature_key(self) -> str | None:
        """The key of what the metric derives from each image alone, cached per image sha256
        (core/metrics/features.py); None: it keeps nothing per image."""
        return None

    def ensure_loaded(self) -> None:
        """Load what the metric runs on (a model); UnavailableError if it cannot run here."""

    @property
    def params(self) -> dict[str, Any]:
        """Every parameter that changes the result; stored with each score for comparability."""
        return {
            "threshold": self.threshold,
            "cluster_eps": self.cluster_eps,
            "min_samples": DBSCAN_MIN_SAMPLES,
        }

    def matrix(
        self,
        images: Sequence[SeedImage],
        shas: Sequence[str],
        cache: EmbeddingCache | None = None,
    ) -> np.ndarray:
        """The (n, n) pairwise matrix of `kind` over the seeds, in seed order."""
        raise NotImplementedError

    def score(
        self,
        grid_id: int,
        images: Sequence[SeedImage],
        shas: Sequence[str],
        cache: EmbeddingCache | None = None,
    ) -> Score:
        """The grid's Score; raises UnavailableError when the metric cannot run here."""
        require_seeds(len(images))
        values = self.grid_values(self.matrix(images, shas, cache))
        return self.make_score(grid_id, values)

    def grid_values(self, matrix: np.ndarray) -> dict[str, Any]:
        """The shared grid scores of a pairwise matrix under this metric's thresholds."""
        return grid_scores(matrix, self.kind, self.threshold, self.cluster_eps)

    def make_score(
        self, grid_id: int, values: dict[str, Any], heatmap: list[list[float]] | None = None
    ) -> Score:
        return Score(
            grid_id=grid_id,
            metric=self.name,
            params=self.params,
            version=self.version,
            values=values,
            heatmap=heatmap,
        )

    def unavailable(self, grid_id: int, why: str) -> Score:
        """A stored record that the metric could not run, with why; no values are invented."""
        return Score(
            grid_id=grid_id,
            metric=self.name,
            params=self.params,
            version=self.version,
            values={},
            available=False,
            note=why,
        )
