"""What the calibration modules share and front ends name: signals, categories, objectives.

No numpy here: a front end can parse `--objective` or show a default without loading it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from memgrid.core.errors import InputError
from memgrid.core.taxonomy import Category

CATEGORIES: tuple[Category, ...] = tuple(Category)
CATEGORY_CODE = {category: code for code, category in enumerate(CATEGORIES)}
NONE_CODE = CATEGORY_CODE[Category.NONE]

# A derived signal: the largest near-duplicate clique share over the pixel metrics, which
# is what tau_mem compares (the categorizer fires when any pixel metric's clique does).
PIXEL_CLIQUE_SIGNAL = "pixel:clique_share"
# Which signal each threshold key compares, so a key is fitted on that signal's values.
THRESHOLD_SIGNALS = {
    "tau_mem": PIXEL_CLIQUE_SIGNAL,
    "tau_sem": "clip:median_similarity",
    "tau_wen": "wen:first_step",
    "tau_global": "tiled-l2:extent",
    "tau_region": "tiled-l2:region_share",
}
# Grid-level numbers that rise with memorization; every stored metric is ranked on these.
SIGNAL_KEYS = (
    "clique_share",
    "cluster_share",
    "median_similarity",
    "extent",
    "region_share",
    "first_step",
    "all_steps",
)

DEFAULT_BOOTSTRAPS = 1000
DEFAULT_SEED = 0
DEFAULT_SAMPLE_LIMIT = 2000  # labelled grids run through the categorizer per candidate set


@dataclass(frozen=True)
class Objective:
    """How to pick one operating point on a ROC/PR curve."""

    kind: str  # f1 | youden | precision
    target: float | None = None  # the precision to reach, for kind == "precision"

    def __str__(self) -> str:
        return f"precision:{self.target:g}" if self.kind == "precision" else self.kind


def parse_objective(text: str) -> Objective:
    """`f1`, `youden` or `precision:P` with 0 < P < 1; InputError otherwise."""
    cleaned = text.strip().lower()
    if cleaned in ("f1", "youden"):
        return Objective(cleaned)
    if cleaned.startswith("precision:"):
        try:
            target = float(cleaned.split(":", 1)[1])
        except ValueError:
            target = math.nan
        if 0.0 < target < 1.0:
            return Objective("precision", target)
        raise InputError("--objective", f"precision target must be in (0, 1), not {text!r}")
    raise InputError("--objective", f"unknown objective {text!r}; use f1, youden or precision:0.95")


def interval_list(interval: tuple[float, float] | None) -> list[float] | None:
    """An interval as JSON stores it: a two-item list, or None."""
    return None if interval is None else [float(interval[0]), float(interval[1])]
