"""Keypoint matching: the same picture shifted, rescaled, cropped or recoloured, without weights.

A memorized composition often recurs moved or resized (a poster reframed, a figure cut at
another size, a print recoloured): tiled-l2 compares pixels at fixed places and pHash a
global low-frequency layout, so both miss it. Here each seed's SIFT keypoints (Lowe 2004;
in OpenCV since its patent expired) are matched across a pair with Lowe's ratio test, and
RANSAC fits one similarity transform (shift, scale, rotation) to the matches; the number
of matches that agree with it (inliers) measures how much of one picture reappears in the
other. Descriptors are gradient histograms normalised for contrast, so a change of colour
or brightness leaves them alike. Unrelated seeds leave a handful of chance inliers.

Chosen by measurement on real seed grids (docs/design.md, "Signals"): next to Meta's PDQ
hash, which like pHash hashes the whole layout and failed on reframed copies, inliers
separated copies from unrelated seeds best.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from memgrid.core.errors import UnavailableError
from memgrid.core.metrics.base import EmbeddingCache, Metric
from memgrid.core.metrics.grid_scores import require_seeds
from memgrid.core.records import Score
from PIL import Image

# Seeds are squashed to this square before matching: the scale at which RANSAC's tolerance
# and the inlier counts below are set. SIFT's cost grows with the pixels (about 45 ms a
# seed at 192, 90 ms at 256 on one core) and 192 separated real copies as well as 256.
MATCH_SIZE = 192
MAX_FEATURES = 500
# Lowe (2004): a match is kept when its nearest descriptor is closer than 0.8 of the
# second nearest; that rejects 90% of false matches and 5% of true ones.
RATIO = 0.8
# RANSAC's reprojection tolerance: 3 px at 192 (1.5% of the side), room for resampling.
REPROJECTION = MATCH_SIZE / 64
# Matching is pairwise (n^2 / 2 pairs of a few ms each): larger grids are matched on this
# many evenly spaced seeds, which is plenty to see an image that recurs (reported as
# `seeds_matched`); the clique, cluster and median describe that sample.
MAX_SEEDS = 32
# A copy may be resized within this factor; larger scale changes are chance alignments.
MAX_SCALE = 2.0
# Inliers at which a pair counts as the same picture: unrelated seeds of real grids leave
# 0-5 chance inliers (rarely up to 20 on text or pixel art), reframed copies 40-350.
# The pair similarity inliers / (inliers + MATCH_INLIERS) is 0.5 exactly there.
MATCH_INLIERS = 20


def inlier_similarity(inliers: np.ndarray | float) -> np.ndarray | float:
    """Inliers mapped to [0, 1): 0.5 at MATCH_INLIERS, saturating for large copies."""
    return inliers / (inliers + MATCH_INLIERS)


class Keypoints(Metric):
    """RANSAC inliers of SIFT matches between two seeds, as a similarity in [0, 1)."""

    name = "keypoints"
    kind = "similarity"
    version = "1"

    def __init__(
        self,
        size: int = MATCH_SIZE,
        features: int = MAX_FEATURES,
        threshold: float | None = None,
        cluster_eps: float | None = None,
    ) -> None:
        super().__init__(threshold=0.5 if threshold is None else threshold, cluster_eps=cluster_eps)
        self.size = size
        self.features = features

    @property
    def params(self) -> dict[str, Any]:
        return {
            **super().params,
            "size": self.size,
            "features": self.features,
            "ratio": RATIO,
            "match_inliers": MATCH_INLIERS,
        }

    def ensure_loaded(self) -> None:
        opencv()

    def inliers(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(n, n) symmetric inlier counts (0 on the diagonal)."""
        cv2 = opencv()
        detector = cv2.SIFT_create(nfeatures=self.features)
        described = [detector.detectAndCompute(self._gray(image), None) for image in images]
        matcher = cv2.BFMatcher(cv2.NORM_L2)
        count = len(images)
        inliers = np.zeros((count, count), dtype=np.float64)
        for first in range(count):
            for second in range(first + 1, count):
                found = _pair_inliers(cv2, matcher, described[first], described[second])
                inliers[first, second] = inliers[second, first] = found
        return inliers

    def _gray(self, image: Image.Image) -> np.ndarray:
        resized = image.convert("L").resize((self.size, self.size), Image.Resampling.BILINEAR)
        return np.asarray(resized)

    def matrix(
        self,
        images: Sequence[Image.Image],
        shas: Sequence[str],
        cache: EmbeddingCache | None = None,
    ) -> np.ndarray:
        return _similarity(self.inliers(images))  # every pair: see `score` for large grids

    def score(
        self,
        grid_id: int,
        images: Sequence[Image.Image],
        shas: Sequence[str],
        cache: EmbeddingCache | None = None,
    ) -> Score:
        require_seeds(len(images))
        sample = _evenly_spaced(len(images), MAX_SEEDS)
        inliers = self.inliers([images[i] for i in sample])
        values = self.grid_values(_similarity(inliers))
        pairs = inliers[np.triu_indices(len(sample), k=1)]
        values.update(
            median_inliers=float(np.median(pairs)),
            max_inliers=float(pairs.max()),
            seeds_matched=len(sample),
        )
        return self.make_score(grid_id, values)


def _evenly_spaced(count: int, limit: int) -> list[int]:
    if count <= limit:
        return list(range(count))
    return sorted({round(i * (count - 1) / (limit - 1)) for i in range(limit)})


def _similarity(inliers: np.ndarray) -> np.ndarray:
    similarity = np.asarray(inlier_similarity(inliers), dtype=np.float64)
    np.fill_diagonal(similarity, 1.0)
    return similarity


def _pair_inliers(cv2: Any, matcher: Any, first: tuple[Any, Any], second: tuple[Any, Any]) -> int:
    """Matches of `first` in `second` that agree with one similarity transform (RANSAC)."""
    (points_a, descriptors_a), (points_b, descriptors_b) = first, second
    if descriptors_a is None or descriptors_b is None or min(len(points_a), len(points_b)) < 2:
        return 0
    good = [
        pair[0]
        for pair in matcher.knnMatch(descriptors_a, descriptors_b, k=2)
        if len(pair) == 2 and pair[0].distance < RATIO * pair[1].distance
    ]
    if len(good) < 3:
        return 0
    source = np.float32([points_a[m.queryIdx].pt for m in good])
    target = np.float32([points_b[m.trainIdx].pt for m in good])
    transform, mask = cv2.estimateAffinePartial2D(
        source, target, method=cv2.RANSAC, ransacReprojThreshold=REPROJECTION
    )
    if transform is None or mask is None:
        return 0
    scale = float(np.hypot(transform[0, 0], transform[0, 1]))
    if not 1.0 / MAX_SCALE <= scale <= MAX_SCALE:
        return 0
    return int(mask.sum())


def opencv() -> Any:
    """OpenCV, imported on first use (a base dependency: opencv-python-headless)."""
    try:
        import cv2
    except ImportError as error:  # a broken install: say so rather than crash the run
        raise UnavailableError(f"OpenCV is not importable ({error})") from None
    cv2.setRNGSeed(0)  # RANSAC draws from OpenCV's generator: one answer per input
    return cv2
