"""tiled-l2's robust variant (item 3) and the region map's own tile threshold (item 4)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from memgrid.core.demo import photo, scene, with_noise
from memgrid.core.metrics.tiled_l2 import ROBUST_QUANTILE, TILE_DELTA, TiledL2, robust_distances
from memgrid.core.thresholds import SPECS, Thresholds

SEEDS = 6


def numbered(image: Image.Image, number: int) -> Image.Image:
    """A figure panel's number box in the top-left corner: one tile of 16 differs."""
    boxed = image.resize((512, 512)).copy()
    draw = ImageDraw.Draw(boxed)
    shade = (number * 40) % 256
    draw.rectangle((0, 0, 110, 110), fill=(shade, 255 - shade, 128))
    draw.text((30, 30), str(number), fill=(0, 0, 0))
    return boxed


def test_an_occluded_corner_breaks_carlinis_value_but_not_the_robust_one() -> None:
    copy = photo("verbatim")
    images = [numbered(with_noise(copy, ("n", seed)), seed) for seed in range(SEEDS)]
    score = TiledL2().score(1, images, [str(s) for s in range(SEEDS)])
    values = score.values
    assert values["clique_size"] < SEEDS  # Carlini's largest tile: the number box decides
    assert values["robust_clique_size"] == SEEDS
    assert values["robust_median_similarity"] > values["median_similarity"]
    assert values["robust_quantile"] == ROBUST_QUANTILE


def test_unrelated_scenes_stay_apart_at_the_robust_distance() -> None:
    images = [scene(("free", seed)) for seed in range(SEEDS)]
    values = TiledL2().score(1, images, [str(s) for s in range(SEEDS)]).values
    assert values["robust_clique_size"] == 1


def test_robust_distance_is_a_tile_quantile() -> None:
    tiles = np.arange(16, dtype=float).reshape(16, 1, 1) / 100 * np.ones((16, 2, 2))
    assert robust_distances(tiles, 1.0)[0, 1] == pytest.approx(0.15)  # Carlini: the largest
    assert robust_distances(tiles, 0.8)[0, 1] == pytest.approx(0.12)  # the 13th of 16


def test_the_region_map_has_its_own_documented_tile_threshold() -> None:
    assert TILE_DELTA < 0.15
    assert Thresholds.v0().tile_delta == TILE_DELTA
    assert "chance" in SPECS["tile_delta"].source
    # Two seeds whose every tile differs by about 0.1 RMS: a pair under Carlini's 0.15 per
    # tile, but not the same pixels. The region map's own 0.08 does not call them agreeing.
    base = np.asarray(scene("base").resize((512, 512)), dtype=np.float64)
    rng = np.random.default_rng(0)
    images = [
        Image.fromarray(np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8))
        for _ in range(3)
    ]
    strict = TiledL2().score(1, images, ["a", "b", "c"]).values
    loose = TiledL2(tile_delta=0.15).score(1, images, ["a", "b", "c"]).values
    assert strict["tile_delta"] == TILE_DELTA
    assert len(loose["region_tiles"]) > len(strict["region_tiles"])
