"""One calibration run: every fit, the category search and the report it stores."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from memgrid.core.calibration.common import (
    CATEGORIES,
    DEFAULT_BOOTSTRAPS,
    DEFAULT_SAMPLE_LIMIT,
    DEFAULT_SEED,
    NONE_CODE,
    THRESHOLD_SIGNALS,
    Objective,
    interval_list,
)
from memgrid.core.calibration.evaluate import CategoryEvaluation, evaluate_categories
from memgrid.core.calibration.fit import LOW_FPR_MIN_NEGATIVES, SignalFit, fit_signal
from memgrid.core.calibration.search import (
    CategorizeOne,
    CategoryOracle,
    CategorySearch,
    search_candidates,
    search_category_thresholds,
)
from memgrid.core.thresholds import SPECS

ROC_KEYS = ("tau_mem", "tau_sem", "tau_wen")
SEARCH_KEYS = ("tau_global", "tau_region")
TEMPLATES_LEFT_OUT = " (template-only grids left out)"
MIN_LABELS = 30  # fewer labelled grids than this: the fit is shown but warned about
MIN_PER_CLASS = 5  # fewer memorized (or not memorized) grids than this: one-sided
MIN_PER_CATEGORY = 3
HISTOGRAM_BINS = 20


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
class WeightFit:
    """The combined score's weights fitted by the caller: values, what each was fitted on, warnings."""

    values: dict[str, float]
    fitted_on: dict[str, str]
    warnings: list[str]


# Fits the combined score's weights on the labelled grids under the other fitted thresholds
# (the evidence x depends on them, and the weights apply with them once accepted).
FitWeights = Callable[[Mapping[str, float]], WeightFit]


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

    @property
    def refusal(self) -> str | None:
        """Why the fitted set must not be accepted: it labels fewer labelled grids right.

        A handful of labels can pull a fit somewhere the labels themselves disagree with;
        whatever the fit did, accepting it must never make the proposals worse on the very
        labels it was fitted on (docs/design.md, "Calibration and agreement").
        """
        if self.before is None or self.after is None or not self.changes:
            return None
        before, after = self.before.right, self.after.right
        if after >= before:
            return None
        return (
            f"the fitted thresholds label {after} of {self.sample_size} labelled grids right, "
            f"the current ones {before}"
        )

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
            "refused": self.refusal,
            "threshold_fits": self.threshold_fits,
            "threshold_intervals": {
                k: interval_list(v) for k, v in self.threshold_intervals.items()
            },
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
        # 3 and 3 is thin, not one-sided: say which it is.
        sides = (memorized, count - memorized)
        thin = min(sides) > 0 and max(sides) < MIN_PER_CLASS
        what = "too few on each side" if thin else "one-sided"
        warnings.append(
            f"labels are {what}: {memorized} memorized vs {count - memorized} not memorized "
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


def low_fpr_warnings(signals: list[SignalFit]) -> list[str]:
    """A warning when TPR at 1% FPR rests on too few not-memorized grids to mean that."""
    thin = [
        f"{fit.signal} ({fit.negatives})"
        for fit in signals
        if fit.tpr_at_low_fpr is not None and fit.negatives < LOW_FPR_MIN_NEGATIVES
    ]
    if not thin:
        return []
    return [
        f"TPR at 1% FPR rests on fewer than {LOW_FPR_MIN_NEGATIVES} not-memorized grids for "
        f"{', '.join(thin)}: 1% of them is under one grid, so it is TPR with no false "
        "positive at all; label more not-memorized grids before quoting it"
    ]


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
    fit_weights: FitWeights | None = None,
) -> CalibrationResult:
    """Fit the thresholds of `current` on the labelled grids (see the module docstring).

    Keys whose signal has too few labels keep their current value. `categorize_one` runs
    the categorizer on one labelled grid; without it the category thresholds are not
    searched and no confusion matrices are made. `fit_weights` fits the combined score's
    weights once the other thresholds are fitted, before the "after" evaluation, so that
    evaluation (and the refusal it may lead to) is of the whole set that would be accepted.
    """
    warnings = label_warnings(data)
    memorized = data.memorized
    signals = [
        fit_signal(name, values, memorized, objective, seed=seed, bootstraps=bootstraps)
        for name, values in sorted(data.signals.items())
    ]
    warnings += low_fpr_warnings(signals)
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

    before = after = search = oracle = None
    sample = stratified_sample(data.labels, sample_limit, seed)
    human = data.labels[sample]
    if categorize_one is not None and len(data):
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
    if fit_weights is not None and len(data):
        weights = fit_weights(fitted)
        fitted.update(weights.values)
        threshold_fits.update(weights.fitted_on)
        warnings += weights.warnings
    if oracle is not None:
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
