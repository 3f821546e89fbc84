"""What the scores say, drawn on the seeds: the consistent region as an outline, the
near-duplicate groups as coloured badges, the heat map as a picture of its own.

Pure numpy on pixel arrays, so every protocol (half-cell, Kitty, Sixel, iTerm2) shows the
same marks, and tests can read them back.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from memgrid.core.categorizer import REGION_GRID as PROPOSAL_GRID
from memgrid.core.records import Proposal, Score

REGION_METRIC = "tiled-l2"  # the one metric with a region map (docs/design.md, "Signals")
CLIQUE_METRICS = ("tiled-l2", "sscd", "phash")  # pixel-level near-duplicates, as the categorizer
OUTLINE_RGB = (255, 215, 0)
# One colour a near-duplicate group; more groups than colours reuse them.
GROUP_RGB = ((80, 200, 255), (255, 120, 200), (140, 230, 110), (255, 160, 60), (190, 150, 255))
GROUP_NAMES = "ABCDE"
DIFF_GAIN = 4  # differences are faint; amplified they show where two seeds part


@dataclass(frozen=True)
class Evidence:
    """The marks for one grid: region tiles on a square tile grid, and seed groups."""

    region_tiles: frozenset[int] = frozenset()
    region_grid: int = 0
    region_source: str = REGION_METRIC  # or "proposal": a mark keypoints placed (categorizer)
    groups: tuple[tuple[int, ...], ...] = ()  # seed indices per near-duplicate group
    group_metric: str = ""

    def group_of(self, index: int) -> int | None:
        for number, members in enumerate(self.groups):
            if index in members:
                return number
        return None

    @property
    def key(self) -> tuple[object, ...]:
        """What changes the drawn pixels (part of a picture's cache key)."""
        return (tuple(sorted(self.region_tiles)), self.region_grid)


def evidence_from(scores: Iterable[Score], proposal: Proposal | None = None) -> Evidence:
    """Region tiles from the region metric, else the proposal's (a stamp the keypoints found
    where the map found none: the outline shows what the proposal calls fixed); groups from
    the first pixel metric that has any."""
    by_metric = {score.metric: score for score in scores if score.available}
    region = by_metric.get(REGION_METRIC)
    tiles: frozenset[int] = frozenset()
    grid, source = 0, REGION_METRIC
    if region is not None:
        tiles = frozenset(int(t) for t in region.values.get("region_tiles") or ())
        grid = int(region.values.get("region_grid") or (len(region.heatmap or ()) or 0))
    proposed = frozenset(t for f in (proposal.features if proposal else ()) for t in f.tiles)
    if not tiles and proposed:
        tiles, grid, source = proposed, grid or PROPOSAL_GRID, "proposal"
    tiles = tiles if grid else frozenset()
    for metric in CLIQUE_METRICS:
        score = by_metric.get(metric)
        groups = score.values.get("cliques") if score is not None else None
        if groups:
            members = tuple(tuple(int(i) for i in group) for group in groups)
            return Evidence(tiles, grid, source, members, metric)
    return Evidence(tiles, grid, source)


def outline_region(pixels: np.ndarray, tiles: frozenset[int], grid: int) -> np.ndarray:
    """The image with the outer edges of the region's tiles drawn: an outline, not a fill."""
    if not tiles or grid <= 0:
        return pixels
    height, width = pixels.shape[:2]
    marked = pixels.copy()
    thickness = max(1, round(min(height, width) / 160))
    rgb = np.array(OUTLINE_RGB, dtype=np.uint8)
    for tile in tiles:
        row, column = divmod(tile, grid)
        top, bottom = row * height // grid, (row + 1) * height // grid
        left, right = column * width // grid, (column + 1) * width // grid
        if row == 0 or tile - grid not in tiles:
            marked[top : top + thickness, left:right] = rgb
        if row == grid - 1 or tile + grid not in tiles:
            marked[max(bottom - thickness, top) : bottom, left:right] = rgb
        if column == 0 or tile - 1 not in tiles:
            marked[top:bottom, left : left + thickness] = rgb
        if column == grid - 1 or tile + 1 not in tiles:
            marked[top:bottom, max(right - thickness, left) : right] = rgb
    return marked


def heat_color(share: float) -> tuple[int, int, int]:
    """Dark blue for tiles that vary across seeds, through orange, to red for fixed ones."""
    share = min(max(share, 0.0), 1.0)
    stops = ((0.0, (20, 30, 70)), (0.5, (200, 120, 30)), (1.0, (230, 30, 30)))
    for (low, low_rgb), (high, high_rgb) in itertools.pairwise(stops):
        if share <= high:
            t = (share - low) / (high - low)
            r, g, b = (round(a + (c - a) * t) for a, c in zip(low_rgb, high_rgb, strict=True))
            return r, g, b
    return stops[-1][1]


def heatmap_pixels(heatmap: Sequence[Sequence[float]], width: int, height: int) -> np.ndarray:
    """The heat map as a width x height image, one flat colour a tile."""
    shares = np.asarray(heatmap, dtype=np.float32)
    palette = np.array([[heat_color(float(s)) for s in row] for row in shares], dtype=np.uint8)
    rows = (np.arange(height) * shares.shape[0]) // max(height, 1)
    columns = (np.arange(width) * shares.shape[1]) // max(width, 1)
    return palette[rows][:, columns]


def difference(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, float]:
    """|first - second| amplified by DIFF_GAIN, and the mean difference as a share of 255.

    The second image is compared at the first one's size.
    """
    if first.shape != second.shape:
        from PIL import Image

        size = (first.shape[1], first.shape[0])
        second = np.asarray(Image.fromarray(second).resize(size, Image.Resampling.BOX))
    gap = np.abs(first.astype(np.int16) - second.astype(np.int16))
    amplified = np.clip(gap * DIFF_GAIN, 0, 255).astype(np.uint8)
    return amplified, float(gap.mean() / 255.0)
