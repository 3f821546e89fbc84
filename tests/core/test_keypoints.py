"""Keypoint matching (item 6): the same picture shifted, rescaled or recoloured is matched."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from memgrid.core.demo import artwork, scene
from memgrid.core.metrics import DEFAULT_METRICS, WEIGHT_METRICS, make_metric
from memgrid.core.metrics.keypoints import (
    MATCH_INLIERS,
    MAX_SEEDS,
    Keypoints,
    inlier_similarity,
)


def reframed(image: Image.Image, crop: float, size: int) -> Image.Image:
    """A crop of `crop` of the picture (off-centre), resized: what a figure panel does."""
    width, height = image.size
    box = (
        int(width * (1 - crop) * 0.7),
        int(height * (1 - crop) * 0.3),
        int(width * (1 - crop) * 0.7 + width * crop),
        int(height * (1 - crop) * 0.3 + height * crop),
    )
    return image.crop(box).resize((size, size), Image.Resampling.BICUBIC)


def recoloured(image: Image.Image) -> Image.Image:
    """Channels swapped and contrast changed: another colour scheme of the same picture."""
    red, green, blue = image.split()
    return ImageOps.autocontrast(Image.merge("RGB", (blue, red, green)), cutoff=5)


def test_a_shifted_rescaled_recoloured_copy_is_matched_and_unrelated_scenes_are_not() -> None:
    original = artwork("a famous print").resize((512, 512))
    copies = [original, reframed(original, 0.8, 300), recoloured(reframed(original, 0.9, 512))]
    unrelated = [scene(("free", seed)).resize((512, 512)) for seed in range(3)]
    metric = Keypoints()
    copy_inliers = metric.inliers(copies)
    other_inliers = metric.inliers(unrelated)
    upper = np.triu_indices(3, k=1)
    assert copy_inliers[upper].min() >= MATCH_INLIERS
    assert other_inliers[upper].max() < MATCH_INLIERS


def test_keypoint_scores_report_the_shared_grid_values() -> None:
    original = artwork("one training image").resize((384, 384))
    images = [original, reframed(original, 0.85, 384), reframed(original, 0.9, 256), scene("x")]
    score = Keypoints().score(1, images, ["a", "b", "c", "d"])
    values = score.values
    assert values["n_seeds"] == 4
    assert values["clique_size"] == 3  # the three framings of one photo; the scene is apart
    assert values["max_inliers"] >= MATCH_INLIERS
    assert 0.0 <= values["median_similarity"] < 1.0
    assert score.params["match_inliers"] == MATCH_INLIERS


def test_matching_is_deterministic() -> None:
    original = artwork("work").resize((384, 384))
    images = [original, reframed(original, 0.8, 384), recoloured(original)]
    assert np.array_equal(Keypoints().inliers(images), Keypoints().inliers(images))


def test_similarity_is_one_half_at_the_match_count() -> None:
    assert inlier_similarity(MATCH_INLIERS) == pytest.approx(0.5)
    assert inlier_similarity(0) == 0.0


def test_keypoints_need_no_weights_and_run_by_default() -> None:
    assert "keypoints" in DEFAULT_METRICS and "keypoints" not in WEIGHT_METRICS
    make_metric("keypoints").ensure_loaded()  # OpenCV is a base dependency: no weights


def test_large_grids_are_matched_on_a_sample_of_seeds() -> None:
    images = [scene(("free", seed)).resize((128, 128)) for seed in range(40)]
    values = Keypoints().score(1, images, [str(s) for s in range(40)]).values
    assert values["seeds_matched"] == MAX_SEEDS and values["n_seeds"] == MAX_SEEDS
    assert values["grid_seeds"] == 40


def test_a_sampled_grids_copies_are_named_by_their_seeds_in_the_grid() -> None:
    """Of 10 seeds, 8 evenly spaced ones are matched (0, 1, 3, 4, 5, 6, 8, 9); the copies at
    seeds 8 and 9 are the sample's 7th and 8th, and are reported as seeds 8 and 9."""
    copy = artwork("a famous print").resize((256, 256))
    images = [scene(("free", seed)).resize((256, 256)) for seed in range(8)] + [copy, copy]
    values = Keypoints().score(1, images, [str(s) for s in range(10)]).values
    assert values["cliques"] == [[8, 9]]


def test_nearest_two_are_opencvs_brute_force_hamming_matches() -> None:
    import cv2

    from memgrid.core.metrics.keypoints import _descriptor_words, _nearest_two

    rng = np.random.default_rng(5)
    first = rng.integers(0, 256, (70, 32), dtype=np.uint8)
    second = rng.integers(0, 256, (90, 32), dtype=np.uint8)
    second[:30] = first[:30] ^ (rng.random((30, 32)) < 0.05).astype(np.uint8)  # near copies
    best, second_best, nearest = _nearest_two(_descriptor_words(first), _descriptor_words(second))
    matches = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(first, second, k=2)
    assert best.tolist() == [int(pair[0].distance) for pair in matches]
    assert second_best.tolist() == [int(pair[1].distance) for pair in matches]
    unique = best < second_best  # on a tie either index is the nearest
    expected = np.array([pair[0].trainIdx for pair in matches])
    assert np.array_equal(nearest[unique], expected[unique])
    assert np.array_equal(nearest[:30], np.arange(30))


def test_nearest_two_count_every_bit_up_to_all_256() -> None:
    from memgrid.core.metrics.keypoints import _descriptor_words, _nearest_two

    ones = np.full((1, 32), 255, dtype=np.uint8)
    opposite = np.zeros((2, 32), dtype=np.uint8)
    opposite[1, :24] = 255  # the first three words alike, the last one all different
    best, second_best, nearest = _nearest_two(_descriptor_words(ones), _descriptor_words(opposite))
    assert (best.tolist(), second_best.tolist(), nearest.tolist()) == ([64], [256], [1])


def test_the_matches_say_how_much_of_the_picture_recurs() -> None:
    # A mark stamped at one place on varied scenes: its matches span a few percent, in
    # the mark's box; a whole picture recurring spans much of it.
    from memgrid.core.categorizer import LOCAL_MATCH_AREA
    from memgrid.core.demo import WATERMARK, stamp

    marked = [stamp(scene(("vary", seed)), "STOCKPIX", WATERMARK, "mark") for seed in range(6)]
    values = Keypoints().score(1, marked, [str(seed) for seed in range(6)]).values
    assert values["clique_size"] >= 3
    assert values["matched_area"] < LOCAL_MATCH_AREA
    x0, y0, x1, y1 = values["matched_box"]
    side = marked[0].width
    assert WATERMARK[0] / side - 0.05 <= x0 < x1 <= WATERMARK[2] / side + 0.05
    assert WATERMARK[1] / side - 0.05 <= y0 < y1 <= WATERMARK[3] / side + 0.05

    original = artwork("one training image").resize((384, 384))
    copies = [original, reframed(original, 0.85, 384), recoloured(original)]
    whole = Keypoints().score(1, copies, ["a", "b", "c"]).values
    assert whole["clique_size"] == 3 and whole["matched_area"] >= LOCAL_MATCH_AREA
