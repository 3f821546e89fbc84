"""The category thresholds' grid search on macro-F1, through the categorizer itself."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np

from memgrid.core.calibration.common import CATEGORY_CODE, THRESHOLD_SIGNALS
from memgrid.core.calibration.evaluate import class_scores, confusion
from memgrid.core.taxonomy import Category
from memgrid.core.thresholds import SPECS

SEARCH_CANDIDATES = 12  # values tried per category threshold (plus the current one)


# Runs the categorizer on labelled grid `index` (into the arrays given to `calibrate`)
# under the threshold values given, and returns its category.
CategorizeOne = Callable[[int, Mapping[str, float]], Category]


class CategoryOracle:
    """The categorizer on a sample of labelled grids, memoised by which checks fire.

    Within a search only the searched keys change, and the categorizer reads each of them
    only through `value >= threshold`; so a grid's category depends on the candidate only
    through those booleans, and each grid is categorized at most once per pattern.
    """

    def __init__(
        self,
        categorize_one: CategorizeOne,
        indices: np.ndarray,
        signals: Mapping[str, np.ndarray],
    ) -> None:
        self.categorize_one = categorize_one
        self.indices = indices
        self.signals = signals
        # (fixed values, varied keys) -> (sampled grid, pattern of fired checks) -> code
        self._tables: dict[tuple[Any, ...], np.ndarray] = {}
        self.calls = 0

    def predict(self, values: Mapping[str, float], keys: Sequence[str] = ()) -> np.ndarray:
        """Category codes of the sampled grids under `values` (keys varied in a search)."""
        fixed = tuple(sorted((k, v) for k, v in values.items() if k not in keys))
        table = self._tables.setdefault(
            (fixed, tuple(keys)), np.full((len(self.indices), 2 ** len(keys)), -1, dtype=int)
        )
        pattern = np.zeros(len(self.indices), dtype=int)
        for bit, key in enumerate(keys):
            pattern |= self._fires(key, values[key]).astype(int) << bit
        rows = np.arange(len(self.indices))
        for position in np.flatnonzero(table[rows, pattern] < 0):
            category = self.categorize_one(int(self.indices[position]), values)
            table[position, pattern[position]] = CATEGORY_CODE[category]
            self.calls += 1
        return table[rows, pattern]

    def _fires(self, key: str, threshold: float) -> np.ndarray:
        values = self.signals.get(THRESHOLD_SIGNALS[key])
        if values is None:
            return np.zeros(len(self.indices), dtype=bool)
        with np.errstate(invalid="ignore"):
            return values[self.indices] >= threshold


@dataclass(frozen=True)
class CategorySearch:
    """The macro-F1 grid search over the category thresholds."""

    keys: tuple[str, ...]
    candidates: dict[str, list[float]]
    evaluated: int
    best: dict[str, float]
    best_macro_f1: float | None
    categorizer_calls: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "keys": list(self.keys),
            "candidates": self.candidates,
            "evaluated": self.evaluated,
            "best": self.best,
            "best_macro_f1": self.best_macro_f1,
            "categorizer_calls": self.categorizer_calls,
        }


def search_candidates(
    key: str,
    current: float,
    signal_values: np.ndarray | None,
    labels: np.ndarray | None = None,
    count: int = SEARCH_CANDIDATES,
) -> list[float]:
    """Values to try for one threshold: the current one and cuts where the labels change.

    A cut between two neighbouring scores whose grids carry the same single label cannot
    beat a cut at either end of that run, so only cuts at label boundaries are tried
    (halfway between the two scores), thinned evenly to `count` when there are more.
    """
    spec = SPECS[key]
    values: set[float] = {float(current)}
    if signal_values is not None:
        finite = np.isfinite(signal_values)
        scores = np.asarray(signal_values, float)[finite]
        distinct, inverse = np.unique(scores, return_inverse=True)
        if distinct.size > 1:
            if labels is None:
                boundary = np.ones(distinct.size - 1, dtype=bool)
            else:
                # Per distinct score: its one label, or -1 where several labels share it.
                codes = np.asarray(labels)[finite]
                low = np.full(distinct.size, np.iinfo(int).max)
                high = np.full(distinct.size, -1)
                np.minimum.at(low, inverse, codes)
                np.maximum.at(high, inverse, codes)
                single = np.where(low == high, low, -1)
                boundary = (single[:-1] != single[1:]) | (single[:-1] < 0) | (single[1:] < 0)
            cuts = ((distinct[:-1] + distinct[1:]) / 2.0)[boundary]
            if cuts.size > count:
                cuts = cuts[np.unique(np.linspace(0, cuts.size - 1, count).round().astype(int))]
            values.update(float(v) for v in cuts)
    return sorted(min(max(v, spec.low), spec.high) for v in values)


def search_category_thresholds(
    oracle: CategoryOracle,
    human: np.ndarray,
    base: Mapping[str, float],
    candidates: Mapping[str, Sequence[float]],
) -> CategorySearch:
    """Try every combination of candidates; keep the best macro-F1, nearest `base` on ties."""
    keys = tuple(candidates)
    best_values, best_score, best_distance = dict(base), -math.inf, math.inf
    evaluated = 0
    for combination in product(*(candidates[key] for key in keys)):
        values = {**base, **dict(zip(keys, combination, strict=True))}
        predicted = oracle.predict(values, keys)
        macro = float(class_scores(confusion(human, predicted))["macro_f1"])
        evaluated += 1
        distance = sum(abs(values[k] - base[k]) for k in keys if k in base)
        if macro > best_score + 1e-12 or (
            abs(macro - best_score) <= 1e-12 and distance < best_distance
        ):
            best_values, best_score, best_distance = values, macro, distance
    return CategorySearch(
        keys=keys,
        candidates={key: list(map(float, candidates[key])) for key in keys},
        evaluated=evaluated,
        best={key: best_values[key] for key in keys},
        best_macro_f1=best_score if math.isfinite(best_score) else None,
        categorizer_calls=oracle.calls,
    )
