"""Memorization rates per model and category, and how a mitigation moves them.

What a paper reports from a labelled set (docs/design.md, "Calibration and agreement"): of N
grids, how many show each primary category and each of Webster's replication types, with
bootstrap 95% intervals; and, for two models run on the same prompts (an original and its
mitigated version), the change in each rate with a paired bootstrap interval and McNemar's
test on the prompts that moved.

Pure: the caller hands in one code per grid (a category or Webster type, -1 where unknown)
and whether a human gave it. Every bootstrap here resamples grids (or prompt pairs) with
replacement; for categorical data that is the same as drawing the category counts from a
multinomial with the observed shares, which is what is drawn, so 100,000 grids cost as
little as 100.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from memgrid.core.calibration import (
    CATEGORIES,
    CATEGORY_CODE,
    DEFAULT_BOOTSTRAPS,
    DEFAULT_SEED,
)
from memgrid.core.calibration.fit import percentile_interval
from memgrid.core.errors import InputError
from memgrid.core.taxonomy import Category, Webster
from memgrid.core.text_files import parse_json, read_text

UNKNOWN = -1  # a grid whose code is not known (no label, no proposal, no Webster type)
WEBSTER_TYPES: tuple[Webster, ...] = tuple(Webster)
WEBSTER_CODE = {webster: code for code, webster in enumerate(WEBSTER_TYPES)}
LEVEL = 0.95


class Scheme(StrEnum):
    """Which code of a grid a figure reads."""

    CATEGORY = "category"  # the primary category
    WEBSTER = "webster"  # Webster's replication type


@dataclass(frozen=True)
class Figure:
    """One reported rate: the share of grids whose code in `scheme` is one of `codes`."""

    key: str
    title: str
    scheme: Scheme
    codes: tuple[int, ...]


def _category_figure(category: Category) -> Figure:
    return Figure(category.value, category.title, Scheme.CATEGORY, (CATEGORY_CODE[category],))


def _webster_figure(webster: Webster, title: str) -> Figure:
    return Figure(webster.value, title, Scheme.WEBSTER, (WEBSTER_CODE[webster],))


MEMORIZED = Figure(
    "memorized",
    "memorized (any category)",
    Scheme.CATEGORY,
    tuple(CATEGORY_CODE[c] for c in CATEGORIES if c.memorized),
)
FIGURES: tuple[Figure, ...] = (
    *(_category_figure(category) for category in CATEGORIES),
    MEMORIZED,
    _webster_figure(Webster.MATCHING_VERBATIM, "matching verbatim (MV)"),
    _webster_figure(Webster.TEMPLATE_VERBATIM, "template verbatim (TV)"),
    _webster_figure(Webster.RETRIEVAL_VERBATIM, "retrieval verbatim (RV)"),
)
FIGURE_BY_KEY = {figure.key: figure for figure in FIGURES}


@dataclass(frozen=True)
class Outcomes:
    """What is known of each grid, as codes (UNKNOWN where nothing is), and who said so.

    `category` indexes CATEGORIES and `webster` WEBSTER_TYPES; the `*_human` arrays are
    True where the code comes from the agreed human label rather than a proposal.
    """

    category: np.ndarray
    category_human: np.ndarray
    webster: np.ndarray
    webster_human: np.ndarray

    def __len__(self) -> int:
        return len(self.category)

    def take(self, index: np.ndarray) -> Outcomes:
        """The outcomes of some grids (a boolean mask or positions), in that order."""
        return Outcomes(
            self.category[index],
            self.category_human[index],
            self.webster[index],
            self.webster_human[index],
        )

    def codes(self, scheme: Scheme) -> tuple[np.ndarray, np.ndarray]:
        if scheme is Scheme.CATEGORY:
            return self.category, self.category_human
        return self.webster, self.webster_human

    def holds(self, figure: Figure) -> tuple[np.ndarray, np.ndarray]:
        """Per grid: whether the figure holds, and whether the grid's code is known at all."""
        codes, _ = self.codes(figure.scheme)
        return np.isin(codes, figure.codes), codes != UNKNOWN


def _interval(samples: np.ndarray) -> tuple[float, float] | None:
    return percentile_interval(samples, LEVEL)


def _pair(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else [round(interval[0], 6), round(interval[1], 6)]


def stable_seed(seed: int, *names: str) -> list[int]:
    """A seed for one part of a report, the same whatever else the report holds."""
    return [seed, *(zlib.crc32(name.encode()) for name in names)]


# ---------------------------------------------------------------- rates of one model


@dataclass(frozen=True)
class Rate:
    """`count` of `total` grids show the figure; `*_human` are those resolved by humans."""

    figure: str
    count: int
    total: int
    count_human: int
    total_human: int
    interval: tuple[float, float] | None  # bootstrap 95%, of the rate

    @property
    def rate(self) -> float | None:
        return self.count / self.total if self.total else None

    @property
    def human_share(self) -> float | None:
        """The share of the grids counted in `total` whose code a human gave."""
        return self.total_human / self.total if self.total else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "count": self.count,
            "total": self.total,
            "rate": self.rate,
            "interval": _pair(self.interval),
            "count_human": self.count_human,
            "total_human": self.total_human,
            "human_share": self.human_share,
        }


def rates(
    outcomes: Outcomes,
    *,
    seed: int | Sequence[int] = DEFAULT_SEED,
    bootstraps: int = DEFAULT_BOOTSTRAPS,
    figures: Sequence[Figure] = FIGURES,
) -> list[Rate]:
    """Count, rate and bootstrap interval of each figure over the grids whose code is known."""
    found: list[Rate] = []
    rng = np.random.default_rng(seed)
    draws_by_scheme: dict[Scheme, np.ndarray | None] = {}
    for figure in figures:
        codes, human = outcomes.codes(figure.scheme)
        known = codes != UNKNOWN
        total = int(known.sum())
        holds = np.isin(codes, figure.codes)
        if figure.scheme not in draws_by_scheme:
            draws_by_scheme[figure.scheme] = _resampled_counts(codes[known], bootstraps, rng)
        draws = draws_by_scheme[figure.scheme]
        interval = None
        if draws is not None and total:
            interval = _interval(draws[:, list(figure.codes)].sum(axis=1) / total)
        found.append(
            Rate(
                figure=figure.key,
                count=int(holds.sum()),
                total=total,
                count_human=int((holds & human).sum()),
                total_human=int((known & human).sum()),
                interval=interval,
            )
        )
    return found


def _resampled_counts(
    codes: np.ndarray, bootstraps: int, rng: np.random.Generator
) -> np.ndarray | None:
    """Counts per code in each bootstrap resample of the grids, shape (bootstraps, codes)."""
    if bootstraps <= 0 or len(codes) == 0:
        return None
    counts = np.bincount(codes, minlength=max(len(CATEGORIES), len(WEBSTER_TYPES)))
    return rng.multinomial(len(codes), counts / counts.sum(), size=bootstraps)


# ---------------------------------------------------------------- two models, same prompts


@dataclass(frozen=True)
class McNemar:
    """McNemar's test of equal rates on paired outcomes, from the discordant pairs.

    `a_only` pairs hold under A only, `b_only` under B only. `p_exact` is the two-sided
    exact (binomial) p-value, right for any count; `chi2` and `p_chi2` are the
    continuity-corrected statistic and its p-value (R's `mcnemar.test` default).
    """

    a_only: int
    b_only: int
    chi2: float | None
    p_chi2: float | None
    p_exact: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "a_only": self.a_only,
            "b_only": self.b_only,
            "chi2_corrected": self.chi2,
            "p_corrected": self.p_chi2,
            "p_exact": self.p_exact,
        }


def mcnemar(a_only: int, b_only: int) -> McNemar:
    """McNemar's test on the discordant counts; None values when no pair is discordant."""
    discordant = a_only + b_only
    if discordant == 0:
        return McNemar(a_only, b_only, None, None, None)
    chi2 = max(abs(a_only - b_only) - 1, 0) ** 2 / discordant
    return McNemar(
        a_only,
        b_only,
        chi2=chi2,
        p_chi2=math.erfc(math.sqrt(chi2 / 2.0)),  # chi-square, one degree of freedom
        p_exact=min(1.0, 2.0 * _binomial_half_cdf(min(a_only, b_only), discordant)),
    )


def _binomial_half_cdf(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), summed in log space so large n does not overflow."""
    steps = np.arange(k, dtype=float)
    log_terms = np.concatenate([[0.0], np.cumsum(np.log(n - steps) - np.log(steps + 1.0))])
    log_terms -= n * math.log(2.0)
    top = log_terms.max()
    return float(math.exp(top) * np.exp(log_terms - top).sum())


@dataclass(frozen=True)
class PairedChange:
    """How one figure differs between two models on the prompts both have a known code for.

    `change` is B's rate minus A's; `interval` its paired bootstrap 95% interval
    (prompts resampled, each keeping its two outcomes).
    """

    figure: str
    pairs: int
    pairs_human: int  # pairs where both codes come from human labels
    both: int
    a_only: int
    b_only: int
    interval: tuple[float, float] | None
    test: McNemar

    @property
    def rate_a(self) -> float | None:
        return (self.both + self.a_only) / self.pairs if self.pairs else None

    @property
    def rate_b(self) -> float | None:
        return (self.both + self.b_only) / self.pairs if self.pairs else None

    @property
    def change(self) -> float | None:
        return (self.b_only - self.a_only) / self.pairs if self.pairs else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "pairs": self.pairs,
            "pairs_human": self.pairs_human,
            "both": self.both,
            "a_only": self.a_only,
            "b_only": self.b_only,
            "rate_a": self.rate_a,
            "rate_b": self.rate_b,
            "change": self.change,
            "interval": _pair(self.interval),
            "mcnemar": self.test.to_dict(),
        }


def paired_changes(
    a: Outcomes,
    b: Outcomes,
    *,
    seed: int | Sequence[int] = DEFAULT_SEED,
    bootstraps: int = DEFAULT_BOOTSTRAPS,
    figures: Sequence[Figure] = FIGURES,
) -> list[PairedChange]:
    """Each figure's change from A to B; `a` and `b` hold the same prompts in the same order."""
    if len(a) != len(b):
        raise ValueError("paired outcomes must hold the same prompts")
    rng = np.random.default_rng(seed)
    found = []
    for figure in figures:
        holds_a, known_a = a.holds(figure)
        holds_b, known_b = b.holds(figure)
        known = known_a & known_b
        _, human_a = a.codes(figure.scheme)
        _, human_b = b.codes(figure.scheme)
        cells = np.array(
            [
                (holds_a & holds_b & known).sum(),
                (holds_a & ~holds_b & known).sum(),
                (~holds_a & holds_b & known).sum(),
                (~holds_a & ~holds_b & known).sum(),
            ]
        )
        pairs = int(cells.sum())
        interval = None
        if bootstraps > 0 and pairs:
            draws = rng.multinomial(pairs, cells / pairs, size=bootstraps)
            interval = _interval((draws[:, 2] - draws[:, 1]) / pairs)
        found.append(
            PairedChange(
                figure=figure.key,
                pairs=pairs,
                pairs_human=int((known & human_a & human_b).sum()),
                both=int(cells[0]),
                a_only=int(cells[1]),
                b_only=int(cells[2]),
                interval=interval,
                test=mcnemar(int(cells[1]), int(cells[2])),
            )
        )
    return found


def moved(a: Outcomes, b: Outcomes, figure: Figure = MEMORIZED) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the pairs where the figure holds under A only, and under B only."""
    holds_a, known_a = a.holds(figure)
    holds_b, known_b = b.holds(figure)
    known = known_a & known_b
    return np.flatnonzero(holds_a & ~holds_b & known), np.flatnonzero(~holds_a & holds_b & known)


def read_grid_list(path: Path) -> tuple[int, ...]:
    """The grid ids a saved report lists (its `grid_ids`), or a bare JSON list of ids."""
    found = parse_json(read_text(path), path)
    if isinstance(found, dict):
        if "grid_ids" not in found:
            raise InputError(
                path, 'no "grid_ids" (save one with `memgrid report --compare A B --json`)'
            )
        found = found["grid_ids"]
    if not isinstance(found, list) or not all(
        isinstance(grid_id, int) and not isinstance(grid_id, bool) for grid_id in found
    ):
        raise InputError(path, '"grid_ids" must be a list of grid ids (whole numbers)')
    if not found:
        raise InputError(path, "lists no grids (no prompt moved between the two models)")
    return tuple(dict.fromkeys(found))
