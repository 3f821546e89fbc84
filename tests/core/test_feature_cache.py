"""The fast scoring path gives the reference values: batched pHash, cached ORB keypoints,
the process pool and re-scoring from the per-image feature cache (issue 17)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import imagehash
import numpy as np
import pytest
from PIL import Image

from memgrid.core.demo import artwork, scene, stamp, with_noise
from memgrid.core.images import CheckedImage, decode_rgb, png_bytes
from memgrid.core.metrics import make_metric
from memgrid.core.metrics.features import FeatureCache, LazyImages, SeedPixels, per_image
from memgrid.core.metrics.keypoints import (
    MATCH_SIZE,
    MAX_FEATURES,
    PATCH_SIZE,
    RATIO,
    REPROJECTION,
    Keypoints,
)
from memgrid.core.metrics.phash import PHash
from memgrid.tui.services import scoring
from memgrid.tui.services.project import Project
from memgrid.tui.services.scoring import score_project

WEIGHTS_FREE = ("tiled-l2", "phash", "keypoints")


def varied_images() -> list[Image.Image]:
    """Scenes, a print at several sizes, a watermark, noise and a flat image."""
    print_ = artwork("a print")
    return [
        *(scene(("cache", seed)).resize((512, 512)) for seed in range(4)),
        print_.resize((300, 200)),
        print_.resize((97, 131)),
        stamp(scene(("cache", 9)), "STOCK", (10, 10, 90, 40), ("cache",)),
        with_noise(scene(("cache", 5)), ("cache", 5), sigma=6.0),
        Image.new("RGB", (64, 64), (120, 30, 200)),
    ]


def test_batched_phash_bits_are_imagehash_bits() -> None:
    images = varied_images()
    metric = PHash()
    reference = np.stack(
        [
            np.asarray(
                imagehash.phash(Image.fromarray(metric.hash_input(image))).hash, dtype=bool
            ).ravel()
            for image in images
        ]
    )
    assert np.array_equal(metric.hashes(images), reference)


def reference_inliers(images: Sequence[Image.Image]) -> np.ndarray:
    """Keypoint inliers computed the plain way: describe each seed, match every pair."""
    cv2.setRNGSeed(0)
    detector = cv2.ORB_create(
        nfeatures=MAX_FEATURES, edgeThreshold=PATCH_SIZE, patchSize=PATCH_SIZE
    )
    grays = [SeedPixels.of(image).grey_square(MATCH_SIZE) for image in images]
    described = [detector.detectAndCompute(gray, None) for gray in grays]
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    count = len(images)
    inliers = np.zeros((count, count))
    for first in range(count):
        for second in range(first + 1, count):
            (points_a, descriptors_a), (points_b, descriptors_b) = (
                described[first],
                described[second],
            )
            found = 0
            if descriptors_a is not None and descriptors_b is not None:
                good = [
                    pair[0]
                    for pair in matcher.knnMatch(descriptors_a, descriptors_b, k=2)
                    if len(pair) == 2 and pair[0].distance < RATIO * pair[1].distance
                ]
                if len(good) >= 3:
                    source = np.float32([points_a[m.queryIdx].pt for m in good])
                    target = np.float32([points_b[m.trainIdx].pt for m in good])
                    transform, mask = cv2.estimateAffinePartial2D(
                        source, target, method=cv2.RANSAC, ransacReprojThreshold=REPROJECTION
                    )
                    fitted = transform is not None and mask is not None
                    scale = np.hypot(transform[0, 0], transform[0, 1]) if fitted else 0
                    found = int(mask.sum()) if 0.5 <= scale <= 2.0 else 0
            inliers[first, second] = inliers[second, first] = found
    return inliers


def test_keypoint_inliers_match_the_plain_loop_computed_or_read_back_from_the_cache() -> None:
    print_ = artwork("a famous print").resize((512, 512))
    images = [print_, print_.crop((40, 30, 470, 480)).resize((300, 300)), *varied_images()[:4]]
    shas = [f"sha{index}" for index in range(len(images))]
    cache = FeatureCache()
    computed = Keypoints().inliers(images, shas, cache)
    assert np.array_equal(computed, reference_inliers(images))
    assert computed[0, 1] >= 20  # the copy is found, so the comparison is not of zeros
    # Read back: no image is touched, and the bytes give the very same inliers.
    untouchable = LazyImages([Path("/nonexistent") / f"{sha}.png" for sha in shas])
    again = FeatureCache(cache.added)
    assert np.array_equal(Keypoints().inliers(untouchable, shas, again), computed)
    assert untouchable.decoded == 0 and again.added == {}


def test_per_image_computes_each_distinct_image_once() -> None:
    calls: list[int] = []

    def compute(images: list[Image.Image]) -> list[int]:
        calls.append(len(images))
        return [image.width for image in images]

    images = [Image.new("RGB", (width, 4)) for width in (3, 5, 3)]
    cache = FeatureCache({"k": {"b": (7).to_bytes(1, "big")}})
    found = per_image(cache, "k", images, ["a", "b", "a"], compute, lambda v: bytes([v]), ord)
    assert found == [3, 7, 3] and calls == [1]
    assert cache.added == {"k": {"a": bytes([3])}}


def add_grid(project: Project, name: str, images: list[Image.Image]) -> int:
    stored = [
        project.images.put(CheckedImage(png_bytes(image), ".png", *image.size), seed)
        for seed, image in enumerate(images)
    ]
    grid_id, _ = project.store.grids.add(name, stored, model="test", source="test")
    return grid_id


def stored_values(project: Project) -> dict[tuple[int, str], dict]:
    return {
        (score.grid_id, score.metric): (score.values, score.heatmap)
        for score in project.store.scores.where(grid_ids=project.store.grids.ids_all())
    }


# Chunks of about 4 images: the three grids go out as three chunks, so with 2 or 3 workers
# they are scored in the pool (its results written in order), not here.
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_scoring_service_stores_what_each_metric_gives_directly(
    project: Project, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scoring, "IMAGES_PER_CHUNK", 4)
    print_ = artwork("a print").resize((256, 256))
    grids = {
        "copies": [with_noise(print_, ("copy", seed), sigma=3.0) for seed in range(4)],
        "template": [stamp(scene(("t", s)), "STOCK", (10, 10, 90, 40), ("t",)) for s in range(4)],
        "varied": [scene(("v", seed)).resize((200, 150)) for seed in range(3)],
    }
    ids = {name: add_grid(project, name, images) for name, images in grids.items()}
    metrics = [make_metric(name) for name in WEIGHTS_FREE]
    report = score_project(project, metrics, workers=workers)
    assert report.grids_scored == 3 and not report.errors
    first = stored_values(project)
    for name, grid_id in ids.items():
        grid = project.store.grids.get(grid_id)
        decoded = [decode_rgb(project.image_path(image)) for image in grid.images]
        shas = [image.sha256 for image in grid.images]
        for metric in metrics:
            direct = metric.score(grid_id, decoded, shas)
            assert first[(grid_id, metric.name)] == (direct.values, direct.heatmap), name
    # Hashes and keypoints were kept per image; re-scoring reads them and changes nothing.
    for metric in metrics[1:]:
        shas = [
            image.sha256
            for grid_id in ids.values()
            for image in project.store.grids.get(grid_id).images
        ]
        assert set(project.store.images.get_embeddings(metric.feature_key, shas)) == set(shas)
    again = score_project(project, metrics, workers=workers, rescore=True)
    assert again.grids_scored == 3
    assert stored_values(project) == first


@pytest.mark.parametrize("corrupt_grid", [0, 2])
def test_a_bad_image_fails_its_grid_only_in_the_pool_too(
    project: Project, corrupt_grid: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scoring, "IMAGES_PER_CHUNK", 3)
    ids = [add_grid(project, f"grid {n}", [scene((n, s)) for s in range(3)]) for n in range(3)]
    broken = project.image_path(project.store.grids.get(ids[corrupt_grid]).images[1])
    broken.chmod(0o644)
    broken.write_bytes(broken.read_bytes()[:200])  # cut short, as by a killed copy
    report = score_project(project, [make_metric(name) for name in WEIGHTS_FREE], workers=2)
    assert report.grids_scored == 2
    (error,) = report.errors
    assert str(broken) in str(error)
    scored = {score.grid_id for score in project.store.scores.where(grid_ids=ids)}
    assert scored == set(ids) - {ids[corrupt_grid]}


def test_scoring_keeps_freed_seed_buffers_on_glibc(monkeypatch):
    """On Linux (glibc) scoring sets malloc's thresholds so that each seed's decode buffers
    are reused, not faulted in afresh; elsewhere it does nothing and says nothing."""
    import ctypes
    import platform

    from memgrid.tui.services import scoring_processes as scoring

    calls = []

    class RecordingLibc:
        def mallopt(self, option: int, value: int) -> int:
            calls.append((option, value))
            return 1

    monkeypatch.setattr(scoring.ctypes, "CDLL", lambda name: RecordingLibc())
    scoring.reuse_freed_memory()
    assert calls == [(-3, 32 * 2**20), (-1, 128 * 2**20)]  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD

    monkeypatch.setattr(scoring.ctypes, "CDLL", lambda name: object())  # no mallopt (macOS)
    scoring.reuse_freed_memory()
    monkeypatch.undo()
    if platform.libc_ver()[0] == "glibc":
        assert ctypes.CDLL(None).mallopt(-1, 128 * 2**20) == 1  # the real call is accepted
