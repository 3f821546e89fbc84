"""Carlini et al.'s tiled l2: two seeds are near-identical only if every tile is close.

The seeds are squashed to one square (512x512 as in Carlini et al., or the grid's own size
when its seeds are smaller, see `working_side`) and cut into 4x4 tiles; each pair of
corresponding tiles is compared by the normalized l2 (RMS over all pixels and channels in
[0, 1]) and the image distance is the largest tile distance. Carlini et al. call a pair
near-identical under delta = 0.15. The same per-tile distances on a finer grid (8x8 tiles)
give the region map, computed in the same pass.

Carlini's largest tile makes one occluded tile decide: a number box, a caption or a
watermark in one corner of otherwise verbatim copies (figure panels, stock photos) puts
that tile at 0.2-0.4 while the others sit at 0.02-0.03. The value is kept as Carlini
defines it (`clique_share`, `median_similarity`, ...) and a robust variant is reported
beside it under `robust_*`: the image distance is the tile distance at ROBUST_QUANTILE
(with 16 tiles the 4th largest), so up to 3 of 16 tiles may differ. The rules read the
robust values (docs/design.md, "Signals").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from memgrid.core.metrics.base import EmbeddingCache, Metric
from memgrid.core.metrics.features import SeedImage, SeedPixels
from memgrid.core.metrics.grid_scores import require_seeds
from memgrid.core.metrics.region import (
    DEFAULT_REGION_GRID,
    DEFAULT_TEXTURE_FLOOR,
    DEFAULT_TILE_THRESHOLD,
    region_consistency,
)
from memgrid.core.records import Score

CARLINI_DELTA = 0.15
CARLINI_SIZE = 512
CARLINI_TILES = 4  # per side: 16 tiles of 128x128 at 512
# Seeds smaller than CARLINI_SIZE are compared at their own size (the grid's largest side,
# rounded up to whole tiles) rather than enlarged to it: a tile's RMS is a mean, so the
# size changes it only through interpolation. On realgrids-dev (556 pairs of seeds of
# 64-512 px) the image distances moved by 0.3% at the 10th and 90th percentiles, at most
# 0.006, and no pair crossed a threshold, while enlarging 256 px seeds to 512 was a third
# of scoring them. Below this side tiles would hold too few pixels to measure texture.
SMALLEST_SIDE = 128
# Texture is sampled on at least this many pixels per tile side, inside each tile (every 4th
# pixel of a 64 px tile at 512, every other of a 32 px tile at 256).
TEXTURE_SAMPLES = 16
MID_GREY = np.float32(127.5)
# The robust image distance: this quantile of the tile distances (Carlini's is 1.0, the
# largest). At 0.8 the 13th of 16 sorted tiles, so 3 tiles (under a fifth of the image:
# a corner box, half a caption bar) may differ between near-identical seeds.
ROBUST_QUANTILE = 0.8
# The region map's own per-tile threshold. Carlini's 0.15 was set for whole images; per
# 64 px tile, 6% of textured tile pairs of unrelated seeds agree at 0.15 by chance (28k
# pairs of 54 real grids not memorized), 1% at 0.08. Re-encoded copies sit at 0.02-0.03.
TILE_DELTA = 0.08
# Grids of up to this many seeds compare each pair directly ((n - 1) / 2 passes over an
# image); larger ones through one Gram matrix per tile. On 512 px seeds a direct pair costs
# 0.4 ms, and the Gram route 0.9-2.0 ms an image whatever n, slowest on the smallest grids
# (BLAS is poor at 2-3 rows): direct is cheaper up to 6 seeds, the Gram route from 9.
DIRECT_PAIRS_UP_TO = 6
# Grid values repeated for the robust distance, as robust_<key>.
ROBUST_KEYS = ("clique_size", "clique_share", "cluster_size", "cluster_share", "median_similarity")


def tile_mean_squares(pixels: np.ndarray, tiles_per_side: int) -> np.ndarray:
    """Mean squared difference per tile for every pair, in [0, 1] units: (tiles**2, n, n).

    `pixels` is (n, size, size, channels) uint8. Small grids compare each pair directly,
    larger ones go through one Gram matrix per tile (see DIRECT_PAIRS_UP_TO).
    """
    count, height, width, _ = pixels.shape
    if height % tiles_per_side or width % tiles_per_side:
        raise ValueError(f"a {height}x{width} image does not split into {tiles_per_side} tiles")
    if count <= DIRECT_PAIRS_UP_TO:
        squares = _paired_mean_squares(pixels, tiles_per_side)
    else:
        squares = _gram_mean_squares(pixels, tiles_per_side)
    return np.clip(squares, 0.0, 1.0, out=squares)  # float32 rounding may step past either end


def _paired_mean_squares(pixels: np.ndarray, tiles_per_side: int) -> np.ndarray:
    """Each pair's absolute difference (uint8, exact), squared and summed per tile in float32."""
    import cv2  # deferred like every OpenCV use; a base dependency

    count, height, width, channels = pixels.shape
    tile_height, tile_width = height // tiles_per_side, width // tiles_per_side
    squared = np.zeros((tiles_per_side * tiles_per_side, count, count), dtype=np.float32)
    for first in range(count):
        for second in range(first + 1, count):
            difference = cv2.absdiff(pixels[first], pixels[second]).astype(np.float32)
            tiles = difference.reshape(
                tiles_per_side, tile_height, tiles_per_side, tile_width * channels
            )
            sums = np.einsum("rhcw,rhcw->rc", tiles, tiles).ravel()
            squared[:, first, second] = squared[:, second, first] = sums
    squared /= np.float32(255.0 * 255.0 * tile_height * tile_width * channels)
    return squared


def _gram_mean_squares(pixels: np.ndarray, tiles_per_side: int) -> np.ndarray:
    """Vectorised over all pairs through one Gram matrix per tile, one row of tiles at a time
    so the float copy stays in cache. Pixels are centred on mid-grey as they are converted to
    float32 (one pass), which keeps the norms small: identical tiles come out at 0 and
    near-identical ones within about 1e-4 of the exact RMS, far below the thresholds."""
    count, height, width, channels = pixels.shape
    tile_height, tile_width = height // tiles_per_side, width // tiles_per_side
    tile_size = tile_height * tile_width * channels
    grid = pixels.reshape(count, tiles_per_side, tile_height, tiles_per_side, tile_width, channels)
    squared = np.empty((tiles_per_side, tiles_per_side, count, count), dtype=np.float32)
    # (tiles in the row, seeds, tile rows, tile columns, channels): one row of tiles at a time.
    centred = np.empty((tiles_per_side, count, tile_height, tile_width, channels), dtype=np.float32)
    for row in range(tiles_per_side):
        np.subtract(grid[:, row].transpose(2, 0, 1, 3, 4), MID_GREY, out=centred)
        tiles = centred.reshape(tiles_per_side, count, tile_size)
        gram = tiles @ tiles.transpose(0, 2, 1)
        norms = np.einsum("tii->ti", gram)
        squared[row] = norms[:, :, None] + norms[:, None, :] - 2.0 * gram
    squared = squared.reshape(tiles_per_side * tiles_per_side, count, count)
    squared /= np.float32(255.0 * 255.0 * tile_size)
    for tile in squared:
        np.fill_diagonal(tile, 0.0)
    return squared


def tile_texture(pixels: np.ndarray, tiles_per_side: int) -> np.ndarray:
    """Each seed's within-tile standard deviation in [0, 1] (mean over channels), (tiles**2, n).

    Estimated on a regular sample of each tile, TEXTURE_SAMPLES to twice that many pixels a
    side (every 4th pixel each way at 512, every other at 256: 16 of each tile's side at
    both), so about the same sample at every working size: a texture floor needs the spread,
    not every pixel, and a full pass would cost as much as the distances themselves. Each
    tile is sampled on its own, so no sample strays into the next tile whatever the side. Per tile and channel, the variance is E[x^2] - E[x]^2, both means
    taken by an area resize of the samples to one pixel per tile (an exact box average: every
    tile holds the same number of samples).
    """
    import cv2  # deferred like every OpenCV use; a base dependency

    count, height, width, channels = pixels.shape
    tile_height, tile_width = height // tiles_per_side, width // tiles_per_side
    stride = max(min(tile_height, tile_width) // TEXTURE_SAMPLES, 1)
    tiles = pixels.reshape(count, tiles_per_side, tile_height, tiles_per_side, tile_width, channels)
    sampled = tiles[:, :, ::stride, :, ::stride].astype(np.float32)  # contiguous, tile by tile
    rows, columns = sampled.shape[1] * sampled.shape[2], sampled.shape[3] * sampled.shape[4]
    side = (tiles_per_side, tiles_per_side)
    deviations = []
    for seed in sampled.reshape(count, rows, columns, channels):
        mean = cv2.resize(seed, side, interpolation=cv2.INTER_AREA)
        mean_square = cv2.resize(seed * seed, side, interpolation=cv2.INTER_AREA)
        # Spatial spread per channel: a flat colour has none, whatever its hue.
        spread = np.sqrt(np.maximum(mean_square - mean * mean, 0.0))
        deviations.append(spread.mean(axis=-1).ravel() / 255.0)
    return np.stack(deviations, axis=1)


def robust_distances(image_tiles: np.ndarray, quantile: float = ROBUST_QUANTILE) -> np.ndarray:
    """The (n, n) image distance at `quantile` of each pair's tile distances (1.0: the largest)."""
    tiles = image_tiles.shape[0]
    rank = min(max(math.ceil(quantile * tiles) - 1, 0), tiles - 1)
    return np.partition(image_tiles, rank, axis=0)[rank]


def coarsen(mean_squares: np.ndarray, factor: int) -> np.ndarray:
    """Per-tile mean squares on a grid `factor` times coarser: a big tile's MSE is the mean
    of its equal-sized sub-tiles' MSEs, so the fine pass yields the coarse one for free."""
    tile_count, count, _ = mean_squares.shape
    fine = round(tile_count**0.5)
    coarse = fine // factor
    return (
        mean_squares.reshape(coarse, factor, coarse, factor, count, count)
        .mean(axis=(1, 3))
        .reshape(coarse * coarse, count, count)
    )


class TiledL2(Metric):
    """Tiled l2 distance (Carlini et al. 2023) with the region map on a finer grid."""

    name = "tiled-l2"
    kind = "distance"
    # 4: small seeds compared at their own size; 3: OpenCV upscales; 2: robust_* values, the
    # region map at its own tile_delta
    version = "4"

    def __init__(
        self,
        delta: float = CARLINI_DELTA,
        size: int = CARLINI_SIZE,
        tiles: int = CARLINI_TILES,
        region_grid: int = DEFAULT_REGION_GRID,
        tile_threshold: float = DEFAULT_TILE_THRESHOLD,
        texture_floor: float = DEFAULT_TEXTURE_FLOOR,
        cluster_eps: float | None = None,
        tile_delta: float = TILE_DELTA,
        robust_quantile: float = ROBUST_QUANTILE,
    ) -> None:
        super().__init__(threshold=delta, cluster_eps=cluster_eps)
        if size % tiles or size % region_grid:
            raise ValueError(f"size {size} must split evenly into {tiles} and {region_grid} tiles")
        self.size = size
        self.tiles = tiles
        self.region_grid = region_grid
        self.tile_threshold = float(tile_threshold)
        self.texture_floor = float(texture_floor)
        self.tile_delta = float(tile_delta)
        self.robust_quantile = float(robust_quantile)

    @property
    def params(self) -> dict[str, Any]:
        return {
            **super().params,
            "size": self.size,
            "tiles": self.tiles,
            "region_grid": self.region_grid,
            "tile_threshold": self.tile_threshold,
            "texture_floor": self.texture_floor,
            "tile_delta": self.tile_delta,
            "robust_quantile": self.robust_quantile,
        }

    def working_side(self, images: Sequence[SeedImage]) -> int:
        """The side the seeds are compared at: their largest side, rounded up to whole tiles of
        both grids, within [SMALLEST_SIDE, size] (see SMALLEST_SIDE)."""
        step = math.lcm(self.tiles, self.region_grid)
        largest = max(max(SeedPixels.of(image).size) for image in images)
        side = max(min(largest, self.size), SMALLEST_SIDE)
        return min(-(-side // step) * step, self.size)

    def pixels(self, images: Sequence[SeedImage], side: int | None = None) -> np.ndarray:
        """(n, side, side, 3) uint8: the seeds squashed to the working square (`working_side`
        unless a side is given)."""
        seeds = [SeedPixels.of(image) for image in images]
        side = side or self.working_side(seeds)
        pixels = np.empty((len(seeds), side, side, 3), dtype=np.uint8)
        for index, seed in enumerate(seeds):
            pixels[index] = seed.rgb_square(side)
        return pixels

    def tile_distances(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-tile RMS distances: (tiles**2, n, n) for the image, (grid**2, n, n) for regions."""
        region_squares = tile_mean_squares(pixels, self.region_grid)
        if self.region_grid % self.tiles == 0:
            image_squares = coarsen(region_squares, self.region_grid // self.tiles)
        else:
            image_squares = tile_mean_squares(pixels, self.tiles)
        return np.sqrt(image_squares), np.sqrt(region_squares)

    def matrix(
        self,
        images: Sequence[SeedImage],
        shas: Sequence[str],
        cache: EmbeddingCache | None = None,
    ) -> np.ndarray:
        image_tiles, _ = self.tile_distances(self.pixels(images))
        return image_tiles.max(axis=0)

    def score(
        self,
        grid_id: int,
        images: Sequence[SeedImage],
        shas: Sequence[str],
        cache: EmbeddingCache | None = None,
    ) -> Score:
        require_seeds(len(images))
        pixels = self.pixels(images)
        image_tiles, region_tiles = self.tile_distances(pixels)
        values = self.grid_values(image_tiles.max(axis=0))
        robust = self.grid_values(robust_distances(image_tiles, self.robust_quantile))
        values.update(
            {f"robust_{key}": robust[key] for key in ROBUST_KEYS},
            robust_quantile=self.robust_quantile,
        )
        region = region_consistency(
            region_tiles,
            self.tile_delta,
            self.tile_threshold,
            tile_texture(pixels, self.region_grid),
            self.texture_floor,
        )
        values.update(
            extent=region.extent,
            textured_share=region.informative,
            region_tiles=list(region.tiles),
            region_bbox=list(region.bbox) if region.bbox is not None else None,
            region_grid=self.region_grid,
            tile_threshold=self.tile_threshold,
            texture_floor=self.texture_floor,
            tile_delta=self.tile_delta,
        )
        return self.make_score(grid_id, values, heatmap=region.heatmap)
