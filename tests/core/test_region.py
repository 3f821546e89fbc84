"""Region consistency: a fixed region on varied scenes is found where it was put."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from memgrid.core.demo import photo, scene, stamp, with_noise
from memgrid.core.metrics.region import bounding_box, largest_component, region_consistency
from memgrid.core.metrics.tiled_l2 import TiledL2

SEEDS = 12
SHAS = [f"sha{index}" for index in range(SEEDS)]
# The demo draws at 256 px, so one tile of the 8x8 map is 32 px: this box covers rows 5-6
# and columns 1-3 exactly.
WATERMARK_BOX = (32, 160, 127, 223)
WATERMARK_TILES = [41, 42, 43, 49, 50, 51]


def watermarked_grid(box: tuple[int, int, int, int] = WATERMARK_BOX) -> list[Image.Image]:
    return [stamp(scene(("template", seed)), "MARK", box, "fixed") for seed in range(SEEDS)]


def test_a_watermark_on_varied_scenes_is_the_region():
    score = TiledL2().score(1, watermarked_grid(), SHAS)
    values = score.values
    assert values["region_tiles"] == WATERMARK_TILES
    assert values["region_bbox"] == [5, 1, 6, 3]
    # The share of the textured tiles: the scenes' flat skies are left out of the count.
    assert values["extent"] == pytest.approx(6 / (64 * values["textured_share"]))
    assert 0.5 < values["textured_share"] < 1.0
    assert values["clique_share"] == 1 / SEEDS  # the images as wholes all differ
    heatmap = np.array(score.heatmap)
    assert np.all(heatmap.ravel()[WATERMARK_TILES] == 1.0)
    assert np.delete(heatmap.ravel(), WATERMARK_TILES).max() < 0.5


def test_a_corner_logo_gives_a_corner_box():
    values = TiledL2().score(1, watermarked_grid((0, 0, 63, 31)), SHAS).values
    assert values["region_bbox"] == [0, 0, 0, 1]
    assert values["region_tiles"] == [0, 1]


def test_whole_image_copy_has_full_extent():
    images = [with_noise(photo("copied"), ("copy", seed)) for seed in range(SEEDS)]
    values = TiledL2().score(1, images, SHAS).values
    assert values["extent"] == 1.0
    # Every textured tile is in the region; the photo's flat wall is left out.
    assert len(values["region_tiles"]) == round(64 * values["textured_share"])


def test_free_variation_has_no_region():
    images = [scene(("varied", seed)) for seed in range(SEEDS)]
    values = TiledL2().score(1, images, SHAS).values
    assert values["extent"] == 0.0
    assert values["region_tiles"] == []
    assert values["region_bbox"] is None


def test_region_grid_is_a_parameter():
    values = TiledL2(region_grid=16).score(1, watermarked_grid(), SHAS).values
    assert values["region_grid"] == 16
    assert values["region_bbox"] == [10, 2, 13, 7]


def test_tile_share_is_the_share_of_agreeing_pairs():
    """4 seeds, tile 0 agrees only for seeds 0-1-2 (3 of 6 pairs): share 0.5, consistent."""
    distances = np.ones((4, 4, 4))
    distances[0, :3, :3] = 0.0
    region = region_consistency(distances, delta=0.15, tile_threshold=0.5)
    assert region.heatmap[0][0] == 0.5
    assert region.tiles == (0,)
    stricter = region_consistency(distances, delta=0.15, tile_threshold=0.6)
    assert stricter.tiles == () and stricter.bbox is None and stricter.extent == 0.0


def test_largest_component_is_four_connected_and_deterministic():
    mask = np.array(
        [
            [1, 0, 0, 1],
            [0, 1, 0, 1],
            [0, 0, 0, 1],
            [1, 1, 0, 0],
        ],
        dtype=bool,
    )
    # Diagonal neighbours do not join: (0,0) and (1,1) stay apart.
    assert largest_component(mask) == (3, 7, 11)
    tie = np.array([[1, 0, 1]], dtype=bool)
    assert largest_component(tie) == (0,)
    assert bounding_box((3, 7, 11), 4) == (0, 3, 2, 3)


def test_region_map_needs_a_square_grid_and_two_seeds():
    with pytest.raises(ValueError, match="square"):
        region_consistency(np.zeros((5, 3, 3)), delta=0.15)
    with pytest.raises(ValueError, match="2 seeds"):
        region_consistency(np.zeros((4, 1, 1)), delta=0.15)


def flat_sky_grid(seeds: int = 8) -> list[Image.Image]:
    """Unrelated scenes under the same plain sky: nothing memorized, the sky agrees."""
    rng = np.random.default_rng(3)
    images = []
    for _ in range(seeds):
        pixels = np.empty((256, 256, 3), dtype=np.uint8)
        pixels[:128] = (120, 170, 230)  # one flat colour, the same in every seed
        pixels[128:] = rng.integers(0, 256, size=(128, 256, 3), dtype=np.uint8)
        images.append(Image.fromarray(pixels, "RGB"))
    return images


def test_flat_tiles_that_agree_are_not_a_template():
    values = TiledL2().score(1, flat_sky_grid(), ["x"] * 8).values
    assert values["extent"] == 0.0
    assert values["region_bbox"] is None
    without_floor = TiledL2(texture_floor=0.0).score(1, flat_sky_grid(), ["x"] * 8).values
    assert without_floor["extent"] == 0.5  # the top half would otherwise look fixed
    assert values["textured_share"] == 0.5


def test_a_textured_mark_on_a_flat_background_still_counts():
    images = [stamp(image, "MARK", (8, 8, 120, 60), "mark") for image in flat_sky_grid()]
    values = TiledL2().score(1, images, ["x"] * 8).values
    assert values["extent"] > 0
    assert values["region_bbox"] is not None and values["region_bbox"][0] == 0
