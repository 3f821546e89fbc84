"""Keypoint matching: the same picture shifted, rescaled, cropped or recoloured, without weights.

A memorized composition often recurs moved or resized (a poster reframed, a figure cut at
another size, a print recoloured): tiled-l2 compares pixels at fixed places and pHash a
global low-frequency layout, so both miss it. Here each seed's ORB keypoints (Rublee et al.
2011: FAST corners over an image pyramid, each with an oriented binary descriptor of
intensity comparisons) are matched across a pair by Hamming distance with Lowe's ratio
test, and RANSAC fits one similarity transform (shift, scale, rotation) to the matches;
the number of matches that agree with it (inliers) measures how much of one picture
reappears in the other. Intensity comparisons do not change with colour or brightness.
Unrelated seeds leave a handful of chance inliers.

Chosen by measurement on real seed grids (docs/design.md, "Signals"): next to Meta's PDQ
hash, which like pHash hashes the whole layout and failed on reframed copies, inliers
separated copies from unrelated seeds best. Version 1 matched SIFT keypoints (Lowe 2004),
whose doubled first octave cost about one decode per seed; ORB costs a tenth of that. On
the same grids the inlier scale held (unrelated pairs: 5 inliers at the 90th percentile,
20 at the 99th), the detector's decisions held or improved, and the signal alone ranks
grids about as well (docs/design.md, "Signals").
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np

from memgrid.core.errors import UnavailableError
from memgrid.core.metrics.base import EmbeddingCache, Metric
from memgrid.core.metrics.features import SeedImage, SeedPixels, per_image
from memgrid.core.metrics.grid_scores import require_seeds
from memgrid.core.records import Score

# Seeds are squashed to this square before matching: the scale at which RANSAC's tolerance
# and the inlier counts below are set; 192 separated real copies as well as 256.
MATCH_SIZE = 192
# The strongest keypoints kept per seed. Matching costs the square of it: at 500 a pair cost
# 1.3 ms, more than describing both seeds; at 250 it costs 0.4 ms, and on realgrids-dev the
# inliers still separate copies (near-copies' AUC 0.96-0.98) with fewer chance inliers
# among unrelated seeds (99th percentile 15, was 20).
MAX_FEATURES = 250
# ORB's patch (and the border it leaves out) in pixels: OpenCV's default 31 is for images
# of 640 px and more; at 192 it would drop a third of the picture, 15 keeps the border thin.
PATCH_SIZE = 15
# Lowe (2004): a match is kept when its nearest descriptor is closer than 0.8 of the
# second nearest; that rejects 90% of false matches and 5% of true ones.
RATIO = 0.8
# RANSAC's reprojection tolerance: 3 px at 192 (1.5% of the side), room for resampling.
REPROJECTION = MATCH_SIZE / 64
# Matching is pairwise, (n - 1) / 2 pairs per seed: larger grids are matched on this many
# evenly spaced seeds (28 pairs), which is enough to see an image that recurs across seeds
# (reported as `seeds_matched`); the clique, cluster and median describe that sample. At 16
# seeds of 512 px, all 120 pairs cost half as much as decoding the grid; 28 a quarter of that.
MAX_SEEDS = 8
# A copy may be resized within this factor; larger scale changes are chance alignments.
MAX_SCALE = 2.0
# Inliers at which a pair counts as the same picture: unrelated seeds of real grids leave
# 0-5 chance inliers (rarely up to 20 on text or pixel art), reframed copies 40-350.
# The pair similarity inliers / (inliers + MATCH_INLIERS) is 0.5 exactly there.
MATCH_INLIERS = 20
DESCRIPTOR_SIZE = 32  # ORB's 256 intensity comparisons, 8 to a byte
# The cached per-image keypoints change only with this (not with how grids are sampled).
DESCRIPTOR_VERSION = "2"
# One image's keypoints: positions (n, 2) float32 and descriptors (n, 32) uint8.
Described = tuple[np.ndarray, np.ndarray]
# Where a pair's inliers lie in its first seed: [x0, y0, x1, y1] as shares of the side.
Box = tuple[float, float, float, float]


def inlier_similarity(inliers: np.ndarray | float) -> np.ndarray | float:
    """Inliers mapped to [0, 1): 0.5 at MATCH_INLIERS, saturating for large copies."""
    return inliers / (inliers + MATCH_INLIERS)


class Keypoints(Metric):
    """RANSAC inliers of ORB matches between two seeds, as a similarity in [0, 1)."""

    name = "keypoints"
    kind = "similarity"
    # 5: where the clique's matches lie (matched_area, matched_box); 4: 250 keypoints (3: 500);
    # 3: at most 8 seeds matched; 2: ORB (1: SIFT)
    version = "5"

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
            "patch": PATCH_SIZE,
            "ratio": RATIO,
            "match_inliers": MATCH_INLIERS,
        }

    def ensure_loaded(self) -> None:
        opencv()

    @property
    def feature_key(self) -> str:
        """Names the per-image ORB keypoints in the feature cache."""
        return (
            f"orb/{DESCRIPTOR_VERSION}/size={self.size}/features={self.features}/patch={PATCH_SIZE}"
        )

    def inliers(
        self,
        images: Sequence[SeedImage],
        shas: Sequence[str] | None = None,
        cache: EmbeddingCache | None = None,
    ) -> np.ndarray:
        """(n, n) symmetric inlier counts (0 on the diagonal); the keypoints of images
        already described come from `cache` (keyed by sha256), the rest are detected."""
        return self.matches(images, shas, cache)[0]

    def matches(
        self,
        images: Sequence[SeedImage],
        shas: Sequence[str] | None = None,
        cache: EmbeddingCache | None = None,
    ) -> tuple[np.ndarray, dict[tuple[int, int], Box]]:
        """`inliers`, and for each pair (i < j) with inliers the box they span in seed i."""
        cv2 = opencv()
        described = per_image(
            cache,
            self.feature_key,
            images,
            shas,
            self._describe,
            _keypoint_bytes,
            _keypoints_from_bytes,
        )
        words = [_descriptor_words(descriptors) for _, descriptors in described]
        count = len(images)
        inliers = np.zeros((count, count), dtype=np.float64)
        boxes: dict[tuple[int, int], Box] = {}
        for first in range(count):
            for second in range(first + 1, count):
                matched = _pair_inliers(
                    cv2, described[first][0], words[first], described[second][0], words[second]
                )
                inliers[first, second] = inliers[second, first] = len(matched)
                if len(matched):
                    low, high = matched.min(axis=0) / self.size, matched.max(axis=0) / self.size
                    boxes[first, second] = (*map(float, low), *map(float, high))
        return inliers, boxes

    def _describe(self, images: list[SeedImage]) -> list[Described]:
        """Each image's ORB keypoint positions (n, 2) float32 and descriptors (n, 32) uint8."""
        cv2 = opencv()
        detector = cv2.ORB_create(
            nfeatures=self.features, edgeThreshold=PATCH_SIZE, patchSize=PATCH_SIZE
        )
        described = []
        for image in images:
            grey = SeedPixels.of(image).grey_square(self.size)
            points, descriptors = detector.detectAndCompute(grey, None)
            positions = np.float32(cv2.KeyPoint_convert(points)).reshape(-1, 2)
            if descriptors is None:
                descriptors = np.zeros((0, DESCRIPTOR_SIZE), dtype=np.uint8)
            described.append((positions, descriptors))
        return described

    def matrix(
        self,
        images: Sequence[SeedImage],
        shas: Sequence[str],
        cache: EmbeddingCache | None = None,
    ) -> np.ndarray:
        return _similarity(
            self.inliers(images, shas, cache)
        )  # every pair: see `score` for large grids

    def score(
        self,
        grid_id: int,
        images: Sequence[SeedImage],
        shas: Sequence[str],
        cache: EmbeddingCache | None = None,
    ) -> Score:
        require_seeds(len(images))
        sample = _evenly_spaced(len(images), MAX_SEEDS)
        inliers, boxes = self.matches([images[i] for i in sample], [shas[i] for i in sample], cache)
        values = self.grid_values(_similarity(inliers))
        if values["cliques"]:
            values.update(_matched_place(values["cliques"][0], boxes))
        # The groups as the grid's seed indices, not the sample's (they mark seeds on the grid).
        values["cliques"] = [[sample[member] for member in group] for group in values["cliques"]]
        pairs = inliers[np.triu_indices(len(sample), k=1)]
        values.update(
            median_inliers=float(np.median(pairs)),
            max_inliers=float(pairs.max()),
            seeds_matched=len(sample),
            # n_seeds is the sample's (the clique and shares are of it); this is the grid's, so
            # that the store sees the score covers every seed (and rescores a grown grid).
            grid_seeds=len(images),
        )
        return self.make_score(grid_id, values)


def _matched_place(clique: Sequence[int], boxes: dict[tuple[int, int], Box]) -> dict[str, Any]:
    """Where the largest clique's matches lie: the median share of the picture that a pair's
    inliers span (their bounding box), and the median box (corner by corner: a chance inlier
    far off in one pair does not stretch it). A copy of the picture spans much of it, a
    recurring watermark or logo a small part (core.categorizer reads this to tell them apart)."""
    spans = [boxes[pair] for pair in combinations(sorted(clique), 2) if pair in boxes]
    if not spans:
        return {}
    corners = np.array(spans)
    areas = (corners[:, 2] - corners[:, 0]) * (corners[:, 3] - corners[:, 1])
    return {
        "matched_area": round(float(np.median(areas)), 4),
        "matched_box": [round(float(v), 4) for v in np.median(corners, axis=0)],
    }


def _evenly_spaced(count: int, limit: int) -> list[int]:
    if count <= limit:
        return list(range(count))
    return sorted({round(i * (count - 1) / (limit - 1)) for i in range(limit)})


def _similarity(inliers: np.ndarray) -> np.ndarray:
    similarity = np.asarray(inlier_similarity(inliers), dtype=np.float64)
    np.fill_diagonal(similarity, 1.0)
    return similarity


def _pair_inliers(
    cv2: Any, points_a: np.ndarray, words_a: np.ndarray, points_b: np.ndarray, words_b: np.ndarray
) -> np.ndarray:
    """The positions in a, (k, 2), of the matches of keypoints a in b that agree with one
    similarity transform (RANSAC): its inliers."""
    none = np.zeros((0, 2), dtype=np.float32)
    if min(len(points_a), len(points_b)) < 2:
        return none
    best, second_best, nearest = _nearest_two(words_a, words_b)
    good = best < RATIO * second_best
    if np.count_nonzero(good) < 3:
        return none
    source = points_a[good]
    target = points_b[nearest[good]]
    transform, mask = cv2.estimateAffinePartial2D(
        source, target, method=cv2.RANSAC, ransacReprojThreshold=REPROJECTION
    )
    if transform is None or mask is None:
        return none
    scale = float(np.hypot(transform[0, 0], transform[0, 1]))
    if not 1.0 / MAX_SCALE <= scale <= MAX_SCALE:
        return none
    return source[mask.ravel().astype(bool)]


def _descriptor_words(descriptors: np.ndarray) -> np.ndarray:
    """(4, n) uint64: the descriptors' 256 bits as four words, stored word by word so that
    each word of every descriptor is contiguous (a third faster to compare than stored
    descriptor by descriptor)."""
    words = np.ascontiguousarray(descriptors, dtype=np.uint8).view(np.uint64)
    return np.ascontiguousarray(words.reshape(-1, DESCRIPTOR_SIZE // 8).T)


def _nearest_two(
    words_a: np.ndarray, words_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each descriptor of `a` (`_descriptor_words`): the Hamming distances to its nearest
    and second-nearest descriptor of `b`, and the nearest one's index (a brute-force
    matcher's knnMatch with k=2). Counted 64 bits at a time with the CPU's popcount: faster
    than OpenCV's matcher, and arrays rather than one Python object per match. Where the
    ratio test passes, the nearest is unique, so ties cannot change a match."""
    shape = (words_a.shape[1], words_b.shape[1])
    differing = np.empty(shape, dtype=np.uint64)
    distances = np.zeros(shape, dtype=np.uint16)
    for word_a, word_b in zip(words_a, words_b, strict=True):
        np.bitwise_xor(word_a[:, None], word_b[None, :], out=differing)
        distances += np.bitwise_count(differing)
    rows = np.arange(shape[0])
    nearest = distances.argmin(axis=1)
    best = distances[rows, nearest]
    distances[rows, nearest] = np.iinfo(np.uint16).max
    return best, distances.min(axis=1), nearest


def _keypoint_bytes(described: Described) -> bytes:
    """The count, positions as float32, then the binary descriptors as they are."""
    positions, descriptors = described
    header = np.int32([len(positions)]).tobytes()
    return header + positions.astype(np.float32).tobytes() + descriptors.astype(np.uint8).tobytes()


def _keypoints_from_bytes(data: bytes) -> Described:
    count = int(np.frombuffer(data, dtype=np.int32, count=1)[0])
    positions = np.frombuffer(data, dtype=np.float32, count=2 * count, offset=4).reshape(count, 2)
    descriptors = np.frombuffer(data, dtype=np.uint8, offset=4 + 8 * count)
    return positions, descriptors.reshape(count, DESCRIPTOR_SIZE)


def opencv() -> Any:
    """OpenCV, imported on first use (a base dependency: opencv-python-headless)."""
    try:
        import cv2
    except ImportError as error:  # a broken install: say so rather than crash the run
        raise UnavailableError(f"OpenCV is not importable ({error})") from None
    cv2.setRNGSeed(0)  # RANSAC draws from OpenCV's generator: one answer per input
    return cv2
