"""Calibration: refit the active thresholds on human labels (docs/design.md, "Calibration and agreement").

Two fits, in order:
1. the memorization thresholds that compare one signal with a number (`tau_mem` on the
   pixel clique share, `tau_sem` on CLIP similarity, `tau_wen` on Wen's noise magnitude)
   by ROC and precision-recall on memorized-vs-not, choosing the operating point by F1,
   Youden's J or a precision the user names;
2. the category thresholds (`tau_global`, `tau_region`) by grid search on macro-F1 over
   the four categories, evaluated through the categorizer itself.
Every signal stored is also ranked by how well it separates memorized from not (AUC,
TPR at 1% FPR), with seeded bootstrap 95% intervals. Thin or one-sided labels give
warnings and leave thresholds as they were; they never raise.

This module is pure: the caller hands it arrays of signal values and labels, and a
function that runs the categorizer on one labelled grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import product
from typing import Any

import numpy as np
from memgrid.core.errors import InputError
from memgrid.core.taxonomy import Category
from memgrid.core.thresholds import SPECS

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
ROC_KEYS = ("tau_mem", "tau_sem", "tau_wen")
TEMPLATES_LEFT_OUT = " (template-only grids left out)"
SEARCH_KEYS = ("tau_global", "tau_region")
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

MIN_LABELS = 30  # fewer labelled grids than this: the fit is shown but warned about
MIN_PER_CLASS = 5  # fewer memorized (or not memorized) grids than this: one-sided
MIN_PER_CATEGORY = 3
FIT_MIN_PER_CLASS = 2  # below this a ROC is undefined or meaningless: no fit at all
LOW_FPR = 0.01  # Wen et al. report TPR at 1% FPR
DEFAULT_BOOTSTRAPS = 1000
DEFAULT_SEED = 0
DEFAULT_SAMPLE_LIMIT = 2000  # labelled grids run through the categorizer per candidate set
MAX_BOOTSTRAP_BINS = 256
SEARCH_CANDIDATES = 12  # values tried per category threshold (plus the current one)
ROC_POINTS = 101  # points kept of each ROC curve for plots
HISTOGRAM_BINS = 20


# ---------------------------------------------------------------- objectives


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


def objective_values(
    true_positives: np.ndarray,
    false_positives: np.ndarray,
    positives: np.ndarray | float,
    negatives: np.ndarray | float,
    objective: Objective,
) -> np.ndarray:
    """The objective at each operating point (higher is better; -inf where not allowed).

    Arrays may carry leading axes (bootstrap resamples); the points run along the last.
    """
    tp = np.asarray(true_positives, dtype=float)
    fp = np.asarray(false_positives, dtype=float)
    positives = np.asarray(positives, dtype=float)[..., None]
    negatives = np.asarray(negatives, dtype=float)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        if objective.kind == "f1":
            values = 2.0 * tp / (tp + fp + positives)
        elif objective.kind == "youden":
            values = tp / positives - fp / negatives
        else:
            precision = tp / (tp + fp)
            reached = precision >= (objective.target or 1.0) - 1e-12
            values = np.where(reached, tp / positives, -np.inf)
    return np.where(np.isfinite(values), values, -np.inf)


def best_point(values: np.ndarray) -> np.ndarray:
    """Index of the best operating point along the last axis (first, i.e. strictest, on ties)."""
    return np.argmax(values, axis=-1)


# ---------------------------------------------------------------- one signal


@dataclass(frozen=True)
class SignalFit:
    """How well one signal separates memorized from not memorized, and where to cut it."""

    signal: str
    labels: int
    positives: int
    negatives: int
    auc: float | None = None
    auc_interval: tuple[float, float] | None = None
    average_precision: float | None = None
    tpr_at_low_fpr: float | None = None
    tpr_interval: tuple[float, float] | None = None
    threshold: float | None = None  # fires when value >= threshold
    threshold_interval: tuple[float, float] | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    roc: list[tuple[float, float]] = field(default_factory=list)
    note: str = ""

    @property
    def fitted(self) -> bool:
        return self.threshold is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "labels": self.labels,
            "positives": self.positives,
            "negatives": self.negatives,
            "auc": self.auc,
            "auc_interval": _pair(self.auc_interval),
            "average_precision": self.average_precision,
            "tpr_at_1pct_fpr": self.tpr_at_low_fpr,
            "tpr_interval": _pair(self.tpr_interval),
            "threshold": self.threshold,
            "threshold_interval": _pair(self.threshold_interval),
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "roc": [[round(x, 5), round(y, 5)] for x, y in self.roc],
            "note": self.note,
        }


def fit_signal(
    signal: str,
    values: np.ndarray,
    memorized: np.ndarray,
    objective: Objective,
    *,
    seed: int = DEFAULT_SEED,
    bootstraps: int = DEFAULT_BOOTSTRAPS,
) -> SignalFit:
    """ROC/PR of one signal (scikit-learn), the objective's threshold, bootstrap intervals.

    `values` may hold NaN where the signal is missing; those grids are left out.
    """
    finite = np.isfinite(values)
    scores, truth = np.asarray(values, float)[finite], np.asarray(memorized, bool)[finite]
    positives, negatives = int(truth.sum()), int((~truth).sum())
    base = SignalFit(signal, labels=int(finite.sum()), positives=positives, negatives=negatives)
    if min(positives, negatives) < FIT_MIN_PER_CLASS:
        return replace(
            base,
            note=f"needs at least {FIT_MIN_PER_CLASS} memorized and {FIT_MIN_PER_CLASS} "
            f"not memorized grids with this signal (has {positives} and {negatives})",
        )
    from sklearn.metrics import auc as area_under
    from sklearn.metrics import average_precision_score, roc_curve

    fpr, tpr, thresholds = roc_curve(truth, scores, drop_intermediate=False)
    tp, fp = tpr * positives, fpr * negatives
    scored = objective_values(tp, fp, positives, negatives, objective)
    chosen = int(best_point(scored))
    note = ""
    if not np.isfinite(scored[chosen]):
        note = (
            f"precision {objective.target:g} is not reached at any threshold; kept the most precise"
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            precision_at = np.where(tp + fp > 0, tp / (tp + fp), -np.inf)
        chosen = int(np.argmax(precision_at))
    threshold = _cut_between(thresholds, chosen)
    predicted_positive = tp[chosen] + fp[chosen]
    precision = float(tp[chosen] / predicted_positive) if predicted_positive else None
    recall = float(tp[chosen] / positives)
    f1 = 2 * tp[chosen] / (tp[chosen] + fp[chosen] + positives)
    auc = float(area_under(fpr, tpr))  # what roc_auc_score computes, from the curve in hand
    tpr_at_low_fpr = float(tpr[fpr <= LOW_FPR].max())
    auc_interval, tpr_interval, threshold_interval = _bootstrap_signal(
        scores, truth, objective, (auc, tpr_at_low_fpr), seed=seed, bootstraps=bootstraps
    )
    return replace(
        base,
        auc=auc,
        auc_interval=auc_interval,
        average_precision=float(average_precision_score(truth, scores)),
        tpr_at_low_fpr=tpr_at_low_fpr,
        tpr_interval=tpr_interval,
        threshold=threshold,
        threshold_interval=threshold_interval,
        precision=precision,
        recall=recall,
        f1=float(f1),
        roc=_thin_curve(fpr, tpr),
        note=note,
    )


def _cut_between(descending_thresholds: np.ndarray, index: int) -> float:
    """A threshold halfway between the chosen score and the next lower one.

    Halfway, so the cut keeps the same grids on each side whether a rule compares with
    `>=` or `>`, and a count-based rule (clique of k seeds) rounds to the chosen count.
    """
    values = descending_thresholds
    if index == 0:  # nothing predicted memorized: cut just above the largest score
        return float(np.nextafter(values[1], np.inf))
    if index + 1 < len(values):
        return float((values[index] + values[index + 1]) / 2.0)
    return float(values[index])


def _thin_curve(fpr: np.ndarray, tpr: np.ndarray) -> list[tuple[float, float]]:
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), ROC_POINTS)).round().astype(int))
    return [(float(fpr[i]), float(tpr[i])) for i in keep]


def _bootstrap_signal(
    scores: np.ndarray,
    truth: np.ndarray,
    objective: Objective,
    exact: tuple[float, float],
    *,
    seed: int,
    bootstraps: int,
) -> tuple[tuple[float, float] | None, ...]:
    """Percentile 95% intervals of AUC, TPR at 1% FPR and the fitted threshold.

    A resample of grids only changes how many positives and negatives fall at each score,
    so it is drawn directly as multinomial counts over (class, score bin) cells: exact
    when there are at most MAX_BOOTSTRAP_BINS distinct scores. Beyond that the bins are
    quantiles, and the AUC and TPR intervals are shifted by the binning's bias on the full
    data (`exact` minus binned), which keeps 100,000 grids to a few hundredths of a second.
    """
    if bootstraps <= 0:
        return None, None, None
    distinct = np.unique(scores)
    if len(distinct) > MAX_BOOTSTRAP_BINS:
        quantiles = np.linspace(0.0, 1.0, MAX_BOOTSTRAP_BINS, endpoint=False)
        edges = np.unique(np.quantile(scores, quantiles))
    else:
        edges = distinct
    bins = np.searchsorted(edges, scores, side="right") - 1
    counts = np.concatenate(
        [
            np.bincount(bins[truth], minlength=len(edges)),
            np.bincount(bins[~truth], minlength=len(edges)),
        ]
    )
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(scores), counts / counts.sum(), size=bootstraps)
    full_auc, full_tpr, _ = _binned_statistics(counts[None, :], edges, objective)
    auc, tpr_low, threshold = _binned_statistics(draws, edges, objective)
    return (
        percentile_interval(auc + (exact[0] - full_auc[0])),
        percentile_interval(tpr_low + (exact[1] - full_tpr[0])),
        percentile_interval(threshold),
    )


def _binned_statistics(
    counts: np.ndarray, edges: np.ndarray, objective: Objective
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUC, TPR at 1% FPR and the objective's cut for rows of (positive | negative) bin counts."""
    bins = len(edges)
    pos = counts[:, :bins][:, ::-1].astype(float)  # highest score first, as ROC thresholds run
    neg = counts[:, bins:][:, ::-1].astype(float)
    start = np.zeros((counts.shape[0], 1))
    tp = np.concatenate([start, np.cumsum(pos, axis=1)], axis=1)
    fp = np.concatenate([start, np.cumsum(neg, axis=1)], axis=1)
    positives, negatives = tp[:, -1], fp[:, -1]
    undefined = (positives == 0) | (negatives == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        negatives_below = negatives[:, None] - fp[:, 1:]
        auc = (pos * (negatives_below + 0.5 * neg)).sum(axis=1) / (positives * negatives)
        tpr, fpr = tp / positives[:, None], fp / negatives[:, None]
    tpr_low = np.where(fpr <= LOW_FPR, tpr, -np.inf).max(axis=1)
    chosen = best_point(objective_values(tp, fp, positives, negatives, objective))
    # Halfway to the next lower score, as `_cut_between` does for the point estimate.
    descending = edges[::-1]
    halfway = (descending + np.concatenate([descending[1:], descending[-1:]])) / 2.0
    cuts = np.concatenate([[np.nan], halfway])[chosen]
    nan = np.full(counts.shape[0], np.nan)
    return (
        np.where(undefined, nan, auc),
        np.where(undefined, nan, tpr_low),
        np.where(undefined, nan, cuts),
    )


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float] | None:
    """The central `level` percentile interval of bootstrap samples (NaN ignored)."""
    finite = np.asarray(samples, float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return None
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


# ---------------------------------------------------------------- categories


def confusion(human: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Counts with human categories in rows and predicted ones in columns (CATEGORIES order)."""
    size = len(CATEGORIES)
    cells = np.asarray(human, int) * size + np.asarray(predicted, int)
    return np.bincount(cells, minlength=size * size).reshape(size, size)


def class_scores(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and the macro-F1 of confusion matrices.

    Leading axes (bootstrap resamples) are kept. Macro-F1 averages the classes that have
    human labels; a class never predicted and never labelled does not count against it.
    """
    matrix = np.asarray(matrix, float)
    hits = np.diagonal(matrix, axis1=-2, axis2=-1)
    labelled = matrix.sum(axis=-1)
    predicted = matrix.sum(axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, hits / predicted, np.where(labelled > 0, 0.0, np.nan))
        recall = np.where(labelled > 0, hits / labelled, np.nan)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        f1 = np.where(labelled > 0, f1, np.nan)
        present = labelled > 0
        macro = np.where(present, f1, 0.0).sum(axis=-1) / present.sum(axis=-1)
        accuracy = hits.sum(axis=-1) / matrix.sum(axis=(-2, -1))
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "macro_f1": macro,
        "accuracy": accuracy,
    }


@dataclass(frozen=True)
class CategoryEvaluation:
    """A confusion matrix over the four categories with per-class scores and intervals."""

    matrix: list[list[int]]
    precision: dict[str, float | None]
    recall: dict[str, float | None]
    f1: dict[str, float | None]
    macro_f1: float | None
    macro_f1_interval: tuple[float, float] | None
    accuracy: float | None
    precision_intervals: dict[str, tuple[float, float] | None]
    recall_intervals: dict[str, tuple[float, float] | None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "categories": [c.value for c in CATEGORIES],
            "matrix": self.matrix,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "macro_f1": self.macro_f1,
            "macro_f1_interval": _pair(self.macro_f1_interval),
            "accuracy": self.accuracy,
            "precision_intervals": {k: _pair(v) for k, v in self.precision_intervals.items()},
            "recall_intervals": {k: _pair(v) for k, v in self.recall_intervals.items()},
        }


def evaluate_categories(
    human: np.ndarray,
    predicted: np.ndarray,
    *,
    seed: int = DEFAULT_SEED,
    bootstraps: int = DEFAULT_BOOTSTRAPS,
) -> CategoryEvaluation:
    """Confusion matrix, per-class precision/recall and macro-F1 with bootstrap intervals.

    Resampling grids only reshuffles the 16 (human, predicted) cells, so a resample is a
    multinomial draw over them: exact, and cheap at any number of grids.
    """
    matrix = confusion(human, predicted)
    scores = class_scores(matrix)
    total = int(matrix.sum())
    if bootstraps > 0 and total > 0:
        rng = np.random.default_rng(seed)
        flat = matrix.reshape(-1).astype(float)
        draws = rng.multinomial(total, flat / flat.sum(), size=bootstraps)
        resampled = class_scores(draws.reshape(bootstraps, *matrix.shape))
    else:
        resampled = None

    def per_class(name: str) -> dict[str, float | None]:
        return {c.value: _number(scores[name][i]) for i, c in enumerate(CATEGORIES)}

    def intervals(name: str) -> dict[str, tuple[float, float] | None]:
        if resampled is None:
            return {c.value: None for c in CATEGORIES}
        return {
            c.value: percentile_interval(resampled[name][:, i]) if matrix[i].sum() else None
            for i, c in enumerate(CATEGORIES)
        }

    return CategoryEvaluation(
        matrix=matrix.tolist(),
        precision=per_class("precision"),
        recall=per_class("recall"),
        f1=per_class("f1"),
        macro_f1=_number(scores["macro_f1"]) if total else None,
        macro_f1_interval=percentile_interval(resampled["macro_f1"]) if resampled else None,
        accuracy=_number(scores["accuracy"]) if total else None,
        precision_intervals=intervals("precision"),
        recall_intervals=intervals("recall"),
    )


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


# ---------------------------------------------------------------- the whole run


@dataclass(frozen=True)
class LabelledGrids:
    """The labelled grids of a calibration, column by column.

    `labels` are category codes (CATEGORY_CODE); `signals` maps "metric:key" to one value
    per grid (NaN where the grid lacks it); `template_only` marks grids whose annotators
    placed every memorized feature on tiles (a template), which tau_mem's whole-image
    clique cannot be expected to catch.
    """

    grid_ids: np.ndarray
    labels: np.ndarray
    signals: Mapping[str, np.ndarray]
    template_only: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.grid_ids)

    @property
    def memorized(self) -> np.ndarray:
        return self.labels != NONE_CODE

    def subset(self, mask: np.ndarray) -> LabelledGrids:
        return LabelledGrids(
            grid_ids=self.grid_ids[mask],
            labels=self.labels[mask],
            signals={name: values[mask] for name, values in self.signals.items()},
            template_only=None if self.template_only is None else self.template_only[mask],
        )


@dataclass(frozen=True)
class Histogram:
    """Counts of one signal per human category on shared bins, for plots."""

    signal: str
    edges: list[float]
    counts: dict[str, list[int]]

    def to_dict(self) -> dict[str, Any]:
        return {"signal": self.signal, "edges": self.edges, "counts": self.counts}


def signal_histogram(
    signal: str, values: np.ndarray, labels: np.ndarray, bins: int = HISTOGRAM_BINS
) -> Histogram:
    finite = np.isfinite(values)
    if not finite.any():
        return Histogram(signal, [], {})
    low, high = float(values[finite].min()), float(values[finite].max())
    if high <= low:
        high = low + 1e-9
    edges = np.linspace(low, high, bins + 1)
    counts = {}
    for code, category in enumerate(CATEGORIES):
        chosen = values[finite & (labels == code)]
        if chosen.size:
            counts[category.value] = np.histogram(chosen, bins=edges)[0].tolist()
    return Histogram(signal, edges.tolist(), counts)


@dataclass(frozen=True)
class CalibrationResult:
    """What one calibration run found: stored whole as the run's metrics."""

    objective: str
    label_count: int
    category_counts: dict[str, int]
    current: dict[str, float]
    fitted: dict[str, float]
    signals: list[SignalFit]
    threshold_fits: dict[str, str]  # key -> the signal (or "search") it was fitted on
    threshold_intervals: dict[str, tuple[float, float] | None]  # bootstrap 95%, ROC keys
    best_signal: str | None
    before: CategoryEvaluation | None
    after: CategoryEvaluation | None
    search: CategorySearch | None
    sample_size: int
    histograms: list[Histogram]
    warnings: list[str]
    seed: int
    bootstraps: int
    model: str | None = None

    @property
    def changes(self) -> dict[str, tuple[float | None, float]]:
        """Keys whose value the fit changed: key -> (current, fitted)."""
        return {
            key: (self.current.get(key), value)
            for key, value in self.fitted.items()
            if self.current.get(key) is None
            or not math.isclose(self.current[key], value, rel_tol=1e-9, abs_tol=1e-12)
        }

    def signal(self, name: str) -> SignalFit | None:
        return next((fit for fit in self.signals if fit.signal == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "objective": self.objective,
            "label_count": self.label_count,
            "category_counts": self.category_counts,
            "current": self.current,
            "fitted": self.fitted,
            "changes": {k: list(v) for k, v in self.changes.items()},
            "threshold_fits": self.threshold_fits,
            "threshold_intervals": {k: _pair(v) for k, v in self.threshold_intervals.items()},
            "signals": [fit.to_dict() for fit in self.signals],
            "best_signal": self.best_signal,
            "before": self.before.to_dict() if self.before else None,
            "after": self.after.to_dict() if self.after else None,
            "search": self.search.to_dict() if self.search else None,
            "sample_size": self.sample_size,
            "histograms": [h.to_dict() for h in self.histograms],
            "warnings": self.warnings,
            "seed": self.seed,
            "bootstraps": self.bootstraps,
        }


def label_warnings(data: LabelledGrids) -> list[str]:
    """Warnings about too few or one-sided labels (never errors)."""
    count = len(data)
    memorized = int(data.memorized.sum())
    warnings = []
    if count == 0:
        return ["no labelled grids: nothing to calibrate on; thresholds unchanged"]
    if count < MIN_LABELS:
        warnings.append(
            f"only {count} labelled grid(s): fits on fewer than {MIN_LABELS} are unreliable"
        )
    if min(memorized, count - memorized) < MIN_PER_CLASS:
        warnings.append(
            f"labels are one-sided: {memorized} memorized vs {count - memorized} not memorized "
            f"(want at least {MIN_PER_CLASS} of each); memorization thresholds may stay unchanged"
        )
    thin = [
        c.value
        for code, c in enumerate(CATEGORIES)
        if 0 < int((data.labels == code).sum()) < MIN_PER_CATEGORY
    ]
    if thin:
        warnings.append(
            f"fewer than {MIN_PER_CATEGORY} labels for {', '.join(thin)}: per-class scores "
            "for them are noisy"
        )
    return warnings


def stratified_sample(labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Indices of at most `limit` grids, each category kept in proportion (seeded, sorted)."""
    count = len(labels)
    if count <= limit:
        return np.arange(count)
    rng = np.random.default_rng(seed)
    chosen = []
    for code in np.unique(labels):
        members = np.flatnonzero(labels == code)
        take = max(1, round(limit * len(members) / count))
        chosen.append(rng.choice(members, size=min(take, len(members)), replace=False))
    return np.sort(np.concatenate(chosen))


def calibrate(
    data: LabelledGrids,
    current: Mapping[str, float],
    objective: Objective,
    categorize_one: CategorizeOne | None = None,
    *,
    seed: int = DEFAULT_SEED,
    bootstraps: int = DEFAULT_BOOTSTRAPS,
    sample_limit: int = DEFAULT_SAMPLE_LIMIT,
    model: str | None = None,
) -> CalibrationResult:
    """Fit the thresholds of `current` on the labelled grids (see the module docstring).

    Keys whose signal has too few labels keep their current value. `categorize_one` runs
    the categorizer on one labelled grid; without it the category thresholds are not
    searched and no confusion matrices are made.
    """
    warnings = label_warnings(data)
    memorized = data.memorized
    signals = [
        fit_signal(name, values, memorized, objective, seed=seed, bootstraps=bootstraps)
        for name, values in sorted(data.signals.items())
    ]
    fitted = dict(current)
    threshold_fits: dict[str, str] = {}
    threshold_intervals: dict[str, tuple[float, float] | None] = {}
    for key in ROC_KEYS:
        name = THRESHOLD_SIGNALS[key]
        if name not in data.signals:
            continue
        own_fit = _fit_for_key(key, data, objective, seed, bootstraps)
        fit = own_fit or next(f for f in signals if f.signal == name)
        if fit.fitted:
            spec = SPECS[key]
            fitted[key] = min(max(float(fit.threshold), spec.low), spec.high)  # type: ignore[arg-type]
            threshold_fits[key] = name + (TEMPLATES_LEFT_OUT if own_fit else "")
            threshold_intervals[key] = fit.threshold_interval
            if fit.note:
                warnings.append(f"{key}: {fit.note}")
        elif fit.note:
            warnings.append(f"{key} unchanged: {name} {fit.note}")
    ranked = [fit for fit in signals if fit.auc is not None]
    best_signal = (
        max(ranked, key=lambda f: (f.auc, f.tpr_at_low_fpr or 0.0)).signal if ranked else None
    )

    before = after = search = None
    sample = stratified_sample(data.labels, sample_limit, seed)
    if categorize_one is not None and len(data):
        human = data.labels[sample]
        oracle = CategoryOracle(categorize_one, sample, data.signals)
        before = evaluate_categories(
            human, oracle.predict(current), seed=seed, bootstraps=bootstraps
        )
        keys = [k for k in SEARCH_KEYS if k in fitted and THRESHOLD_SIGNALS[k] in data.signals]
        if keys:
            candidates = {
                key: search_candidates(
                    key, fitted[key], data.signals[THRESHOLD_SIGNALS[key]][sample], human
                )
                for key in keys
            }
            search = search_category_thresholds(oracle, human, fitted, candidates)
            fitted.update(search.best)
            threshold_fits.update({key: "macro-F1 search" for key in keys})
        after = evaluate_categories(human, oracle.predict(fitted), seed=seed, bootstraps=bootstraps)
        if len(sample) < len(data):
            warnings.append(
                f"category thresholds and confusion matrices use a stratified sample of "
                f"{len(sample)} of {len(data)} labelled grids (seed {seed})"
            )
    histograms = [
        signal_histogram(name, values, data.labels) for name, values in sorted(data.signals.items())
    ]
    return CalibrationResult(
        objective=str(objective),
        label_count=len(data),
        category_counts={c.value: int((data.labels == i).sum()) for i, c in enumerate(CATEGORIES)},
        current=dict(current),
        fitted=fitted,
        signals=signals,
        threshold_fits=threshold_fits,
        threshold_intervals=threshold_intervals,
        best_signal=best_signal,
        before=before,
        after=after,
        search=search,
        sample_size=len(sample) if categorize_one is not None else 0,
        histograms=histograms,
        warnings=warnings,
        seed=seed,
        bootstraps=bootstraps,
        model=model,
    )


def _fit_for_key(
    key: str, data: LabelledGrids, objective: Objective, seed: int, bootstraps: int
) -> SignalFit | None:
    """tau_mem's own fit leaves out template-only positives; other keys use the shared fit."""
    if key != "tau_mem" or data.template_only is None or not data.template_only.any():
        return None
    keep = ~(data.template_only & data.memorized)
    subset = data.subset(keep)
    name = THRESHOLD_SIGNALS[key]
    return fit_signal(
        name, subset.signals[name], subset.memorized, objective, seed=seed, bootstraps=bootstraps
    )


# ---------------------------------------------------------------- helpers


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _pair(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else [float(interval[0]), float(interval[1])]
