"""Half-cell thumbnails: the layout keeps to the cell budget; the heat map tints the grid."""

from __future__ import annotations

import numpy as np
import pytest
from memgrid.core.records import GridImage
from memgrid.tui.app.widgets.seed_grid import (
    UPPER_HALF,
    compose_picture,
    halfcell_rows,
    overlay_heatmap,
    plan_layout,
)
from textual.geometry import Size


@pytest.mark.parametrize("seeds", [1, 4, 8, 16, 32, 64])
def test_layout_keeps_to_the_budget_and_the_area(seeds: int) -> None:
    area = Size(106, 43)
    layout = plan_layout(seeds, area, cell_budget=1300)
    assert seeds * layout.columns * layout.rows <= 1300 or layout.rows == 1
    assert layout.columns == 2 * layout.rows  # square pixels: a cell is twice as high as wide
    assert layout.per_row * (layout.columns + 1) - 1 <= area.width
    assert layout.height_for(seeds) <= area.height


def test_sixteen_seeds_fit_at_160_by_50() -> None:
    layout = plan_layout(16, Size(106, 43), cell_budget=1300)
    assert (layout.columns, layout.rows) == (12, 6)


def test_halfcell_rows_put_upper_pixels_in_front_and_lower_behind() -> None:
    pixels = np.zeros((2, 2, 3), dtype=np.uint8)
    pixels[0] = (255, 0, 0)
    pixels[1] = (0, 0, 255)
    (row,) = halfcell_rows(pixels, 2, 1)
    (segment,) = row  # one run: both cells share their colours
    assert segment.text == UPPER_HALF * 2
    assert segment.style.color.triplet == (255, 0, 0)
    assert segment.style.bgcolor.triplet == (0, 0, 255)


def test_overlay_tints_only_consistent_tiles() -> None:
    pixels = np.full((8, 8, 3), 100, dtype=np.uint8)
    heatmap = [[1.0, 0.0], [0.0, 0.0]]
    tinted = overlay_heatmap(pixels, heatmap)
    assert tinted[0, 0, 0] > 100 and tinted[0, 0, 1] < 100
    assert (tinted[7, 7] == 100).all()


def test_picture_has_captions_and_a_placeholder_for_missing_images() -> None:
    images = [GridImage(seed, f"p{seed}", f"s{seed}", 8, 8) for seed in (3, 9)]

    def pixels_of(image: GridImage, width: int, height: int) -> np.ndarray | None:
        return None if image.seed == 9 else np.full((height, width, 3), 50, dtype=np.uint8)

    layout = plan_layout(2, Size(80, 40), cell_budget=400)
    picture = compose_picture(1, images, pixels_of, layout, heatmap=[[0.5]])
    text = "\n".join(line.text for line in picture.plain)
    assert "seed 3" in text and "seed 9" in text and "missing" in text
    assert picture.overlaid is not None and picture.overlaid != picture.plain
