"""Comparing a grid's seeds with reference images, and naming Webster's type from the evidence.

docs/design.md, "Reference images". Each seed is compared with its candidates (the
references linked to the prompt, and its pHash neighbours in the pool) by Carlini's tiled
l2 and its robust variant, in the pass that also yields the 8x8 tile map:

- MV (matching verbatim): the seed is within Carlini's delta (robust distance) of a
  reference linked to its prompt: the caption's own image;
- RV (retrieval verbatim): within delta of a reference not linked to the prompt: another
  training image, found through the pool;
- TV (template verbatim): not within delta, but a connected region of at least
  REGION_MIN_TILES tiles of the 8x8 map matches the reference (textured tiles within
  tile_delta) while the rest differs;
- N: none of these; the nearest reference is still stored with its distance.

The grid takes the most serious type its seeds show (MV, then RV, then TV on at least
TEMPLATE_MIN_SEEDS seeds), and the reference most of those seeds match.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image

from memgrid.core.metrics.region import largest_component
from memgrid.core.metrics.tiled_l2 import (
    CARLINI_DELTA,
    ROBUST_QUANTILE,
    TILE_DELTA,
    TiledL2,
    coarsen,
    robust_distances,
    tile_mean_squares,
    tile_texture,
)
from memgrid.core.records import Reference, Score
from memgrid.core.taxonomy import Webster

REFERENCE_METRIC = "reference"
MATCH_VERSION = "1"
# A template match needs more than a chance agreement: 1% of textured 64 px tile pairs of
# unrelated images agree at tile_delta (docs/design.md, "Signals"), so 4 connected tiles
# (1/16 of the image) by chance are far rarer than the 2 the grid-level region rule asks.
REGION_MIN_TILES = 4
TEMPLATE_MIN_SEEDS = 2
# Most serious first: the order the grid's type and each seed's best match are chosen in.
TYPE_ORDER = (Webster.MATCHING_VERBATIM, Webster.RETRIEVAL_VERBATIM, Webster.TEMPLATE_VERBATIM)


@dataclass(frozen=True)
class Candidate:
    reference: Reference
    image: Image.Image
    linked: bool  # linked to the grid's prompt by key, url or caption
    hash_bits: float | None = None  # pHash distance to the nearest seed, when the index found it


@dataclass(frozen=True)
class SeedMatch:
    """A seed's best match: its type, the reference, and the distances that decided it."""

    seed: int
    reference_id: int
    webster: Webster
    distance: float  # robust tiled-l2 (tile distance at ROBUST_QUANTILE)
    carlini: float  # Carlini's tiled-l2 (the largest tile)
    region_tiles: tuple[int, ...]
    linked: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "reference_id": self.reference_id,
            "webster": self.webster.value,
            "distance": round(self.distance, 6),
            "carlini": round(self.carlini, 6),
            "region_tiles": list(self.region_tiles),
            "linked": self.linked,
        }


@dataclass
class MatchParams:
    delta: float = CARLINI_DELTA
    tile_delta: float = TILE_DELTA
    robust_quantile: float = ROBUST_QUANTILE
    region_min_tiles: int = REGION_MIN_TILES
    template_min_seeds: int = TEMPLATE_MIN_SEEDS
    extra: dict[str, Any] = field(default_factory=dict)  # the index's radius and neighbours

    def as_dict(self) -> dict[str, Any]:
        return {
            "delta": self.delta,
            "tile_delta": self.tile_delta,
            "robust_quantile": self.robust_quantile,
            "region_min_tiles": self.region_min_tiles,
            "template_min_seeds": self.template_min_seeds,
            **self.extra,
        }


def compare_seeds(
    seeds: Sequence[tuple[int, Image.Image]],
    candidates: Sequence[Candidate],
    params: MatchParams,
) -> list[SeedMatch]:
    """Each seed's best match among the candidates (none without candidates)."""
    if not seeds or not candidates:
        return []
    metric = TiledL2(delta=params.delta, tile_delta=params.tile_delta)
    # At Carlini's 512 whatever the sizes: a pair's distance must not depend on which other
    # candidates share the batch (a grid's working side is its largest image's).
    pixels = metric.pixels(
        [image for _, image in seeds] + [c.image for c in candidates], metric.size
    )
    count = len(seeds)
    fine_squares = tile_mean_squares(pixels, metric.region_grid)
    fine = np.sqrt(fine_squares)[:, :count, count:]  # (64, seeds, candidates)
    coarse = np.sqrt(coarsen(fine_squares, metric.region_grid // metric.tiles))[:, :count, count:]
    carlini = coarse.max(axis=0)
    robust = robust_distances(coarse, params.robust_quantile)
    texture = tile_texture(pixels, metric.region_grid)
    textured = (texture[:, :count, None] >= metric.texture_floor) | (
        texture[:, None, count:] >= metric.texture_floor
    )
    agreeing = (fine <= params.tile_delta) & textured
    grid = metric.region_grid
    matches = []
    for row, (seed, _) in enumerate(seeds):
        options = []
        for column, candidate in enumerate(candidates):
            distance = float(robust[row, column])
            tiles: tuple[int, ...] = ()
            if distance <= params.delta:
                webster = (
                    Webster.MATCHING_VERBATIM if candidate.linked else Webster.RETRIEVAL_VERBATIM
                )
            else:
                tiles = largest_component(agreeing[:, row, column].reshape(grid, grid))
                enough = len(tiles) >= params.region_min_tiles
                webster = Webster.TEMPLATE_VERBATIM if enough else Webster.NONE
            options.append(
                SeedMatch(
                    seed=seed,
                    reference_id=candidate.reference.id,
                    webster=webster,
                    distance=distance,
                    carlini=float(carlini[row, column]),
                    region_tiles=tiles if webster is Webster.TEMPLATE_VERBATIM else (),
                    linked=candidate.linked,
                )
            )
        matches.append(min(options, key=_rank))
    return matches


def _rank(match: SeedMatch) -> tuple[int, float, float]:
    order = TYPE_ORDER.index(match.webster) if match.webster in TYPE_ORDER else len(TYPE_ORDER)
    tie = -len(match.region_tiles) if match.webster is Webster.TEMPLATE_VERBATIM else 0
    return order, tie, match.distance


def grid_match(
    grid_id: int,
    matches: Sequence[SeedMatch],
    references: dict[int, Reference],
    params: MatchParams,
    *,
    n_seeds: int,
    linked: int,
    candidates: int,
    pool: str = "",
) -> Score:
    """The grid's `reference` score: its type, the reference, every seed's best match, and
    `pool`, what names the reference pool it was matched against (a rerun skips the grid
    while the pool is the same)."""
    webster = Webster.NONE
    for kind in TYPE_ORDER:
        showing = [m for m in matches if m.webster is kind]
        needed = min(params.template_min_seeds, n_seeds) if kind is Webster.TEMPLATE_VERBATIM else 1
        if len(showing) >= needed:
            webster = kind
            break
    chosen = [m for m in matches if m.webster is webster] or list(matches)
    best: dict[str, Any] | None = None
    if chosen:
        votes = Counter(m.reference_id for m in chosen)
        top = max(votes.values())
        nearest = min((m for m in chosen if votes[m.reference_id] == top), key=lambda m: m.distance)
        reference = references[nearest.reference_id]
        best = {
            **reference.describe(),
            "linked": nearest.linked,
            "distance": round(nearest.distance, 6),
            "carlini": round(nearest.carlini, 6),
            "seeds": top,
            "region_tiles": list(nearest.region_tiles),
        }
    shown = {m.reference_id for m in matches}
    values = {
        "n_seeds": n_seeds,
        "webster": webster.value,
        "matched_seeds": sum(m.webster is webster for m in matches)
        if webster is not Webster.NONE
        else 0,
        "reference": best,
        "seeds": [m.to_dict() for m in matches],
        "references": {str(i): references[i].describe() for i in sorted(shown)},
        "linked_references": linked,
        "candidates": candidates,
        "region_grid": TiledL2().region_grid,
        "pool": pool,
    }
    return Score(
        grid_id=grid_id,
        metric=REFERENCE_METRIC,
        params=params.as_dict(),
        version=MATCH_VERSION,
        values=values,
    )


def rebased_match(score: Score, grid_id: int, references: dict[int, Reference]) -> Score | None:
    """The `reference` score of another project (a merged shard) for `grid_id` here, its
    references named by this project's: `references` maps the other project's ids to
    them. None when the score names a reference the map lacks, or is malformed."""
    values = score.values
    try:
        seeds = [
            {**seed, "reference_id": references[int(seed["reference_id"])].id}
            for seed in values.get("seeds") or []
        ]
        shown = [references[int(key)] for key in values.get("references") or {}]
        best = values.get("reference")
        if best is not None:
            best = {**best, **references[int(best["id"])].describe()}
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    rebased = {
        **values,
        "seeds": seeds,
        "references": {str(r.id): r.describe() for r in sorted(shown, key=lambda r: r.id)},
        "reference": best,
    }
    return replace(score, grid_id=grid_id, values=rebased)
