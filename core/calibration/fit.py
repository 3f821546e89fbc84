"""Fitting one signal: ROC and precision-recall on memorized vs not, the objective's cut,
and seeded bootstrap intervals (docs/design.md, "Calibration and agreement")."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from memgrid.core.calibration.common import (
    DEFAULT_BOOTSTRAPS,
    DEFAULT_SEED,
    Objective,
    interval_list,
)

FIT_MIN_PER_CLASS = 2  # below this a ROC is undefined or meaningless: no fit at all
LOW_FPR = 0.01  # Wen et al. report TPR at 1% FPR
# Below this many not-memorized grids, 1% FPR allows no false positive at all: TPR at 1%
# FPR is then TPR at zero FPR, and one grid moves it a long way.
LOW_FPR_MIN_NEGATIVES = round(1 / LOW_FPR)
MAX_BOOTSTRAP_BINS = 256
ROC_POINTS = 101  # points kept of each ROC curve for plots


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
            "auc_interval": interval_list(self.auc_interval),
            "average_precision": self.average_precision,
            "tpr_at_1pct_fpr": self.tpr_at_low_fpr,
            "tpr_interval": interval_list(self.tpr_interval),
            "threshold": self.threshold,
            "threshold_interval": interval_list(self.threshold_interval),
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
