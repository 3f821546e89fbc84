"""A grid's contact sheet: its seeds tiled into one PNG, with the region outlined.

`memgrid export --contact-sheet` adds one per grid, so a reviewer sees a grid without
memgrid. Each seed is squashed to a square, as the region map is (docs/design.md,
"Signals"), so a region box lands on the tiles it names. Outlined in yellow: the region
map's largest consistent region, per metric that has one; in red: the agreed label's
features placed on tiles (their bounding box).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from memgrid.core.images import decode_rgb, png_bytes
from memgrid.core.metrics.region import DEFAULT_REGION_GRID, bounding_box

SEED_SIZE = 192  # pixels per seed on the sheet
GAP = 4
DETECTED_COLOUR = (255, 212, 0)
LABELLED_COLOUR = (230, 30, 30)
BACKGROUND = (24, 24, 24)


@dataclass(frozen=True)
class RegionBox:
    """An inclusive [row0, col0, row1, col1] box on a grid x grid region map, and its colour."""

    box: tuple[int, int, int, int]
    grid: int
    colour: tuple[int, int, int]


def row_regions(row: Mapping[str, Any]) -> list[RegionBox]:
    """The boxes to outline on an export row's seeds: detected regions, then labelled ones."""
    boxes = []
    grid = DEFAULT_REGION_GRID
    for score in row["scores"].values():
        values = score.get("values") or {}
        box = values.get("region_bbox")
        if box and len(box) == 4:
            grid = int(values.get("region_grid") or DEFAULT_REGION_GRID)
            boxes.append(RegionBox(tuple(int(v) for v in box), grid, DETECTED_COLOUR))  # type: ignore[arg-type]
    for feature in row["features"]:
        box = bounding_box(tuple(feature["tiles"]), grid)
        if box is not None:
            boxes.append(RegionBox(box, grid, LABELLED_COLOUR))
    return boxes


def contact_sheet(
    seeds: Sequence[tuple[int, Path]], regions: Sequence[RegionBox], size: int = SEED_SIZE
) -> bytes:
    """PNG bytes of the seeds (seed number, image file) tiled near-square, regions outlined."""
    columns = max(1, math.ceil(math.sqrt(len(seeds))))
    rows = max(1, math.ceil(len(seeds) / columns))
    sheet = Image.new("RGB", (columns * (size + GAP) + GAP, rows * (size + GAP) + GAP), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for index, (seed, path) in enumerate(seeds):
        left = GAP + (index % columns) * (size + GAP)
        top = GAP + (index // columns) * (size + GAP)
        sheet.paste(decode_rgb(path).resize((size, size), Image.Resampling.BILINEAR), (left, top))
        for region in regions:
            cell = size / region.grid
            row0, col0, row1, col1 = region.box
            draw.rectangle(
                (
                    left + col0 * cell,
                    top + row0 * cell,
                    left + (col1 + 1) * cell - 1,
                    top + (row1 + 1) * cell - 1,
                ),
                outline=region.colour,
                width=3,
            )
        draw.text((left + 4, top + 2), f"seed {seed}", fill=(255, 255, 255))
    return png_bytes(sheet)
