"""Gradient layout (item 1 of the detector's follow-up): a composition redrawn is still seen."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageEnhance

from memgrid.core.combined import GRADIENT_THRESHOLD, combined_score
from memgrid.core.demo import artwork, scene
from memgrid.core.metrics import DEFAULT_METRICS, WEIGHT_METRICS, make_metric
from memgrid.core.metrics.gradients import GradientLayout
from memgrid.core.thresholds import Thresholds


def redrawn(image: Image.Image, crop: float, seed: int) -> Image.Image:
    """The same composition zoomed in, its texture drawn anew and its tones changed."""
    width, height = image.size
    left, top = width * (1 - crop) / 2, height * (1 - crop) / 2
    zoomed = image.crop((int(left), int(top), int(width - left), int(height - top))).resize(
        (256, 256), Image.Resampling.BICUBIC
    )
    noise = np.random.default_rng(seed).normal(0, 30, (256, 256, 1))
    texture = np.clip(np.asarray(zoomed, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
    return ImageEnhance.Contrast(Image.fromarray(texture)).enhance(0.7)


def grid_of_redrawings() -> list[Image.Image]:
    original = artwork("a frontal portrait").resize((256, 256))
    return [original, redrawn(original, 0.8, 1), redrawn(original, 0.9, 2)]


def test_a_redrawn_zoomed_composition_is_alike_and_unrelated_scenes_are_not() -> None:
    metric = GradientLayout()
    upper = np.triu_indices(3, k=1)
    alike = metric.matrix(grid_of_redrawings(), ["a", "b", "c"])[upper]
    unrelated = [scene(("free", seed)).resize((256, 256)) for seed in range(3)]
    apart = metric.matrix(unrelated, ["d", "e", "f"])[upper]
    assert alike.min() >= GRADIENT_THRESHOLD
    assert apart.max() < GRADIENT_THRESHOLD


def test_the_zoomed_in_seed_lines_up_only_through_the_crops() -> None:
    original = artwork("a poster").resize((256, 256))
    zoomed = redrawn(original, 0.7, 3)
    matrix = GradientLayout().matrix([original, zoomed], ["a", "b"])
    described = GradientLayout().descriptors([original, zoomed])
    uncropped = float(described[0, 0] @ described[1, 0])
    assert matrix[0, 1] == matrix[1, 0] > uncropped


def test_gradients_run_by_default_without_weights_and_feed_the_layout_evidence() -> None:
    assert "gradients" in DEFAULT_METRICS and "gradients" not in WEIGHT_METRICS
    score = make_metric("gradients").score(1, grid_of_redrawings(), ["a", "b", "c"])
    assert score.values["n_seeds"] == 3
    assert score.values["median_similarity"] >= GRADIENT_THRESHOLD
    combined = combined_score({"gradients": score}, Thresholds.v0())
    layout = combined.evidence_for("layout")
    assert layout.signal == "gradients:median_similarity"
    assert layout.x >= 1.0
    assert combined.memorized  # one signal at its threshold decides, as every v0 feature does


def test_layout_counts_one_recurring_layout_once_through_its_stronger_signal() -> None:
    images = grid_of_redrawings()
    gradients = make_metric("gradients").score(1, images, ["a", "b", "c"])
    phash = make_metric("phash").score(1, images, ["a", "b", "c"])
    both = combined_score({"gradients": gradients, "phash": phash}, Thresholds.v0())
    alone = {
        metric: combined_score({metric: score}, Thresholds.v0()).evidence_for("layout").x
        for metric, score in (("gradients", gradients), ("phash", phash))
    }
    assert both.evidence_for("layout").x == max(alone.values())
    assert len([e for e in both.evidence if e.feature == "layout"]) == 1
