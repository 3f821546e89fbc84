"""Region consistency: which tiles stay the same across seeds, and the region they form.

Webster (2023) found 215 of 219 memorized SD2 prompts are templates (a fixed region, the
rest varying), so a whole-image score alone misses most memorization; this map finds
the fixed part and where it sits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A tile counts as consistent when at least half of all seed pairs agree on it: a majority,
# so one odd seed cannot hide a template and one lucky pair cannot fake one.
DEFAULT_TILE_THRESHOLD = 0.5
DEFAULT_REGION_GRID = 8
# Flat tiles (clear sky, a white studio backdrop) agree across unrelated seeds without
# anything being memorized, so a pair only counts as agreeing on a tile when at least one
# of its two tiles has texture: a within-tile standard deviation of 0.02 (about 5 of 255
# levels) is above sensor-like noise and smooth gradients, well below any mark or object.
DEFAULT_TEXTURE_FLOOR = 0.02


@dataclass(frozen=True)
class RegionMap:
    """Per-tile agreement across seed pairs and the largest consistent region it holds.

    `heatmap[r][c]` is the share of seed pairs whose tile (r, c) is within delta; `tiles`
    are the indices (row * grid + column) of the largest 4-connected group of consistent
    tiles, and `bbox` its inclusive box [row0, col0, row1, col1] (None when no tile is).
    """

    heatmap: list[list[float]]
    extent: float  # share of the informative (textured) tiles that are consistent
    tiles: tuple[int, ...]
    bbox: tuple[int, int, int, int] | None
    informative: float = 1.0  # share of all tiles with texture in most seed pairs

    @property
    def grid(self) -> int:
        return len(self.heatmap)


def region_consistency(
    tile_distances: np.ndarray,
    delta: float,
    tile_threshold: float = DEFAULT_TILE_THRESHOLD,
    tile_texture: np.ndarray | None = None,
    texture_floor: float = DEFAULT_TEXTURE_FLOOR,
) -> RegionMap:
    """The region map from per-tile pairwise distances shaped (grid*grid, n, n).

    `tile_texture` (grid*grid, n) is each seed's within-tile standard deviation in [0, 1];
    when given, pairs of flat tiles do not count as agreeing (see DEFAULT_TEXTURE_FLOOR).
    """
    tile_count, count, _ = tile_distances.shape
    grid = round(tile_count**0.5)
    if grid * grid != tile_count:
        raise ValueError(f"expected a square number of tiles, got {tile_count}")
    if count < 2:
        raise ValueError("region consistency needs at least 2 seeds")
    upper = np.triu_indices(count, k=1)
    agreeing = tile_distances[:, upper[0], upper[1]] <= delta
    informative = np.ones(tile_count, dtype=bool)
    if tile_texture is not None:
        textured_pairs = tile_texture[:, upper[0]] >= texture_floor
        textured_pairs |= tile_texture[:, upper[1]] >= texture_floor
        agreeing &= textured_pairs
        # A tile flat in most pairs says nothing either way: it is left out of the extent.
        informative = textured_pairs.mean(axis=1) >= tile_threshold
    shares = agreeing.mean(axis=1).reshape(grid, grid)
    consistent = shares >= tile_threshold
    tiles = largest_component(consistent)
    return RegionMap(
        heatmap=[[round(float(share), 6) for share in row] for row in shares],
        extent=float(consistent.sum() / max(int(informative.sum()), 1)),
        informative=float(informative.mean()),
        tiles=tiles,
        bbox=bounding_box(tiles, grid),
    )


def largest_component(mask: np.ndarray) -> tuple[int, ...]:
    """Indices (row * columns + column) of the largest 4-connected True group, sorted.

    Ties go to the group met first in row-major order, so the result is deterministic.
    """
    rows, columns = mask.shape
    seen = np.zeros_like(mask, dtype=bool)
    best: list[int] = []
    for start_row, start_column in zip(*np.nonzero(mask), strict=True):
        if seen[start_row, start_column]:
            continue
        component = []
        stack = [(int(start_row), int(start_column))]
        seen[start_row, start_column] = True
        while stack:
            row, column = stack.pop()
            component.append(row * columns + column)
            for next_row, next_column in (
                (row - 1, column),
                (row + 1, column),
                (row, column - 1),
                (row, column + 1),
            ):
                if (
                    0 <= next_row < rows
                    and 0 <= next_column < columns
                    and mask[next_row, next_column]
                    and not seen[next_row, next_column]
                ):
                    seen[next_row, next_column] = True
                    stack.append((next_row, next_column))
        if len(component) > len(best):
            best = component
    return tuple(sorted(best))


def bounding_box(tiles: tuple[int, ...], grid: int) -> tuple[int, int, int, int] | None:
    """Inclusive [row0, col0, row1, col1] of the tiles on a grid x grid map; None if empty."""
    if not tiles:
        return None
    rows = [tile // grid for tile in tiles]
    columns = [tile % grid for tile in tiles]
    return (min(rows), min(columns), max(rows), max(columns))
