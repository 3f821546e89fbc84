"""Calibration against labels drawn from known score distributions, and its edge cases."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score, roc_curve

from memgrid.core.calibration import (
    CATEGORIES,
    CATEGORY_CODE,
    NONE_CODE,
    PIXEL_CLIQUE_SIGNAL,
    Objective,
    parse_objective,
)
from memgrid.core.calibration.evaluate import evaluate_categories
from memgrid.core.calibration.fit import _binned_statistics, fit_signal
from memgrid.core.calibration.run import LabelledGrids, calibrate, stratified_sample
from memgrid.core.calibration.search import CategoryOracle
from memgrid.core.errors import InputError
from memgrid.core.taxonomy import Category
from memgrid.core.thresholds import v0_values

# Not memorized ~ N(0, 1), memorized ~ N(SHIFT, 1), equal numbers: the optima are known.
SHIFT = 2.0
PER_CLASS = 20_000
CUTS = np.linspace(-2.0, 4.0, 60_001)


def gaussian_labels(seed: int = 1, per_class: int = PER_CLASS) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = np.concatenate([rng.normal(0.0, 1.0, per_class), rng.normal(SHIFT, 1.0, per_class)])
    memorized = np.concatenate([np.zeros(per_class, bool), np.ones(per_class, bool)])
    return scores, memorized


def true_rates(cut: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Population TPR and FPR of `score >= cut`."""
    return norm.sf(np.asarray(cut) - SHIFT), norm.sf(np.asarray(cut))


def true_f1(cut: np.ndarray | float) -> np.ndarray:
    tpr, fpr = true_rates(cut)  # equal prevalence: F1 = 2 TPR / (TPR + FPR + 1)
    return 2 * tpr / (tpr + fpr + 1)


def test_youden_threshold_lands_on_the_density_crossing() -> None:
    scores, memorized = gaussian_labels()
    fit = fit_signal("s", scores, memorized, Objective("youden"), bootstraps=0)
    tpr, fpr = true_rates(CUTS)
    optimum = CUTS[np.argmax(tpr - fpr)]  # SHIFT / 2 for equal variances
    assert optimum == pytest.approx(SHIFT / 2, abs=1e-3)
    # Tolerance: 0.1 score units (the sampling error of the empirical J optimum at 20,000 a
    # class is about 0.03).
    assert fit.threshold == pytest.approx(optimum, abs=0.1)


def test_f1_threshold_reaches_the_population_optimum() -> None:
    scores, memorized = gaussian_labels()
    fit = fit_signal("s", scores, memorized, Objective("f1"), bootstraps=0)
    f1 = true_f1(CUTS)
    optimum = CUTS[np.argmax(f1)]
    # F1 is flat near its optimum, so the tolerance is on the F1 reached (within 0.003 of
    # the best possible) and, looser, on the cut itself (0.15 score units).
    assert float(true_f1(fit.threshold)) >= f1.max() - 0.003
    assert fit.threshold == pytest.approx(optimum, abs=0.15)


def test_target_precision_threshold_is_the_lowest_cut_that_reaches_it() -> None:
    scores, memorized = gaussian_labels()
    fit = fit_signal("s", scores, memorized, parse_objective("precision:0.95"), bootstraps=0)
    tpr, fpr = true_rates(CUTS)
    optimum = CUTS[np.argmax(tpr / (tpr + fpr) >= 0.95)]
    assert fit.precision is not None and fit.precision >= 0.95
    assert fit.threshold == pytest.approx(optimum, abs=0.1)


def test_auc_and_tpr_at_one_percent_fpr_match_the_population_values() -> None:
    scores, memorized = gaussian_labels()
    fit = fit_signal("s", scores, memorized, Objective("f1"), seed=3, bootstraps=400)
    true_auc = norm.cdf(SHIFT / np.sqrt(2))
    true_tpr = norm.sf(norm.isf(0.01) - SHIFT)
    assert fit.auc == pytest.approx(true_auc, abs=0.01)
    assert fit.tpr_at_low_fpr == pytest.approx(true_tpr, abs=0.03)
    assert fit.auc_interval is not None and fit.tpr_interval is not None
    assert fit.auc_interval[0] < true_auc < fit.auc_interval[1]
    assert fit.auc_interval[1] - fit.auc_interval[0] < 0.02
    assert fit.tpr_interval[0] < fit.tpr_at_low_fpr < fit.tpr_interval[1]


def test_seeded_bootstrap_is_reproducible_and_the_seed_matters() -> None:
    scores, memorized = gaussian_labels(seed=5, per_class=300)
    first = fit_signal("s", scores, memorized, Objective("f1"), seed=11, bootstraps=500)
    again = fit_signal("s", scores, memorized, Objective("f1"), seed=11, bootstraps=500)
    other = fit_signal("s", scores, memorized, Objective("f1"), seed=12, bootstraps=500)
    assert first.auc_interval == again.auc_interval
    assert first.threshold_interval == again.threshold_interval
    assert first.auc_interval != other.auc_interval


def test_bootstrap_statistics_on_the_full_counts_equal_scikit_learns() -> None:
    """The multinomial bootstrap evaluates AUC from bin counts: exact with few distinct scores."""
    rng = np.random.default_rng(2)
    scores = rng.integers(0, 40, 500) / 8.0  # many ties
    memorized = rng.random(500) < 1 / (1 + np.exp(-(scores - 2.5)))
    edges = np.unique(scores)
    bins = np.searchsorted(edges, scores, side="right") - 1
    counts = np.concatenate(
        [
            np.bincount(bins[memorized], minlength=len(edges)),
            np.bincount(bins[~memorized], minlength=len(edges)),
        ]
    )
    auc, tpr_low, _ = _binned_statistics(counts[None, :], edges, Objective("f1"))
    fpr, tpr, _ = roc_curve(memorized, scores)
    assert auc[0] == pytest.approx(roc_auc_score(memorized, scores), abs=1e-12)
    fit = fit_signal("s", scores, memorized, Objective("f1"), bootstraps=0)
    assert fit.auc == pytest.approx(roc_auc_score(memorized, scores), abs=1e-12)
    assert tpr_low[0] == pytest.approx(tpr[fpr <= 0.01].max(), abs=1e-12)


def test_parse_objective() -> None:
    assert parse_objective("F1") == Objective("f1")
    assert parse_objective("youden") == Objective("youden")
    assert parse_objective("precision:0.9") == Objective("precision", 0.9)
    assert str(parse_objective("precision:0.95")) == "precision:0.95"
    for bad in ("recall", "precision:1.5", "precision:x", "precision:"):
        with pytest.raises(InputError):
            parse_objective(bad)


def labelled(
    labels: list[Category],
    signals: Mapping[str, list[float]],
    template_only: list[bool] | None = None,
) -> LabelledGrids:
    return LabelledGrids(
        grid_ids=np.arange(1, len(labels) + 1),
        labels=np.array([CATEGORY_CODE[c] for c in labels]),
        signals={name: np.array(values, float) for name, values in signals.items()},
        template_only=None if template_only is None else np.array(template_only),
    )


def test_too_few_and_one_sided_labels_warn_and_keep_the_thresholds() -> None:
    current = v0_values()
    data = labelled([Category.UNINTENDED] * 4, {PIXEL_CLIQUE_SIGNAL: [1.0, 1.0, 0.9, 0.8]})
    result = calibrate(data, current, Objective("f1"), bootstraps=100)
    assert result.fitted == current
    assert not result.changes
    text = " ".join(result.warnings)
    assert "only 4 labelled" in text
    assert "one-sided" in text
    assert "tau_mem unchanged" in text
    fit = result.signal(PIXEL_CLIQUE_SIGNAL)
    assert fit is not None and fit.auc is None and "needs at least" in fit.note


def test_three_and_three_labels_are_thin_not_one_sided() -> None:
    labels = [Category.UNINTENDED] * 3 + [Category.NONE] * 3
    data = labelled(labels, {PIXEL_CLIQUE_SIGNAL: [1.0, 1.0, 0.9, 0.1, 0.2, 0.1]})
    text = " ".join(calibrate(data, v0_values(), Objective("f1"), bootstraps=10).warnings)
    assert "labels are too few on each side: 3 memorized vs 3 not memorized" in text
    assert "one-sided" not in text


def test_no_labels_at_all_is_a_warning_not_a_crash() -> None:
    data = labelled([], {PIXEL_CLIQUE_SIGNAL: []})
    result = calibrate(data, v0_values(), Objective("youden"), lambda index, values: Category.NONE)
    assert result.label_count == 0
    assert result.warnings[0].startswith("no labelled grids")
    assert result.fitted == v0_values()
    assert result.to_dict()["before"] is None  # nothing to compare


@pytest.mark.parametrize(("negatives", "warned"), [(99, True), (100, False)])
def test_tpr_at_one_percent_fpr_on_fewer_than_100_negatives_is_warned_about(
    negatives: int, warned: bool
) -> None:
    rng = np.random.default_rng(3)
    labels = [Category.UNINTENDED] * 40 + [Category.NONE] * negatives
    values = np.concatenate([rng.normal(2, 1, 40), rng.normal(0, 1, negatives)]).tolist()
    result = calibrate(
        labelled(labels, {PIXEL_CLIQUE_SIGNAL: values}), v0_values(), Objective("f1")
    )
    found = [w for w in result.warnings if "TPR at 1% FPR" in w]
    if warned:
        assert found == [
            f"TPR at 1% FPR rests on fewer than 100 not-memorized grids for "
            f"{PIXEL_CLIQUE_SIGNAL} (99): 1% of them is under one grid, so it is TPR with no "
            "false positive at all; label more not-memorized grids before quoting it"
        ]
    else:
        assert found == []


def test_tau_mem_is_fitted_without_template_only_positives() -> None:
    """Templates (memorized on tiles only) have no whole-image clique; they must not pull tau_mem down."""
    copies = [Category.UNINTENDED] * 10
    templates = [Category.UNINTENDED] * 8
    varied = [Category.NONE] * 12
    clique = [1.0] * 6 + [0.75] * 4 + [0.125] * 8 + [0.125] * 10 + [0.25] * 2
    data = labelled(
        copies + templates + varied,
        {PIXEL_CLIQUE_SIGNAL: clique},
        template_only=[False] * 10 + [True] * 8 + [False] * 12,
    )
    result = calibrate(data, v0_values(), Objective("f1"), bootstraps=0)
    assert 0.25 < result.fitted["tau_mem"] < 0.75
    assert "template-only" in result.threshold_fits["tau_mem"]


def rule_categorizer(extents: np.ndarray, regions: np.ndarray, calls: list[int]):
    """A stand-in categorizer with the real one's shape: a copy by extent, a template by region."""

    def categorize_one(index: int, values: Mapping[str, float]) -> Category:
        calls.append(index)
        if extents[index] >= values["tau_global"]:
            return Category.UNINTENDED
        if regions[index] >= values["tau_region"]:
            return Category.EXPLICIT
        return Category.NONE

    return categorize_one


def test_category_search_finds_the_separating_thresholds() -> None:
    rng = np.random.default_rng(4)
    extents = np.concatenate([rng.uniform(0.65, 1.0, 30), rng.uniform(0.0, 0.5, 60)])
    regions = np.concatenate([extents[:30], rng.uniform(0.2, 0.5, 30), rng.uniform(0.0, 0.1, 30)])
    truth = [Category.UNINTENDED] * 30 + [Category.EXPLICIT] * 30 + [Category.NONE] * 30
    data = labelled(truth, {"tiled-l2:extent": extents, "tiled-l2:region_share": regions})
    calls: list[int] = []
    current = {**v0_values(), "tau_global": 0.9, "tau_region": 0.6}
    result = calibrate(
        data, current, Objective("f1"), rule_categorizer(extents, regions, calls), bootstraps=200
    )
    assert result.before is not None and result.after is not None and result.search is not None
    assert result.before.macro_f1 is not None and result.before.macro_f1 < 0.9
    assert result.after.macro_f1 == pytest.approx(1.0)
    assert 0.5 < result.fitted["tau_global"] <= 0.65
    assert 0.1 < result.fitted["tau_region"] <= 0.2
    # Memoised by which checks fire: at most one call per grid and pattern (4 of them).
    assert result.search.categorizer_calls <= 4 * len(truth) < len(calls) * 10
    assert result.search.evaluated > 20


def test_oracle_memo_reuses_categorizations() -> None:
    extents = np.array([0.95, 0.2, 0.1])
    regions = np.array([0.9, 0.3, 0.0])
    calls: list[int] = []
    oracle = CategoryOracle(
        rule_categorizer(extents, regions, calls),
        np.arange(3),
        {"tiled-l2:extent": extents, "tiled-l2:region_share": regions},
    )
    keys = ("tau_global", "tau_region")
    base = {"tau_global": 0.9, "tau_region": 0.25}
    first = oracle.predict(base, keys)
    second = oracle.predict({"tau_global": 0.8, "tau_region": 0.26}, keys)  # same pattern
    assert (
        first.tolist()
        == second.tolist()
        == [
            CATEGORY_CODE[Category.UNINTENDED],
            CATEGORY_CODE[Category.EXPLICIT],
            NONE_CODE,
        ]
    )
    assert len(calls) == 3


def test_confusion_scores_match_scikit_learn() -> None:
    rng = np.random.default_rng(8)
    human = rng.integers(0, 4, 400)
    predicted = np.where(rng.random(400) < 0.7, human, rng.integers(0, 4, 400))
    evaluation = evaluate_categories(human, predicted, bootstraps=200, seed=1)
    precision, recall, f1, _ = precision_recall_fscore_support(
        human, predicted, labels=list(range(4)), zero_division=0
    )
    for index, category in enumerate(CATEGORIES):
        assert evaluation.precision[category.value] == pytest.approx(precision[index])
        assert evaluation.recall[category.value] == pytest.approx(recall[index])
        assert evaluation.f1[category.value] == pytest.approx(f1[index])
        low, high = evaluation.recall_intervals[category.value]  # type: ignore[misc]
        assert low <= recall[index] <= high
    assert evaluation.macro_f1 == pytest.approx(f1.mean())
    assert np.array(evaluation.matrix).sum() == 400
    again = evaluate_categories(human, predicted, bootstraps=200, seed=1)
    assert again.macro_f1_interval == evaluation.macro_f1_interval


def test_stratified_sample_keeps_every_category_and_is_seeded() -> None:
    labels = np.array([0] * 900 + [1] * 90 + [3] * 10)
    sample = stratified_sample(labels, 100, seed=3)
    assert len(sample) == 100
    assert sorted(np.bincount(labels[sample], minlength=4).tolist()) == [0, 1, 9, 90]
    assert stratified_sample(labels, 100, seed=3).tolist() == sample.tolist()
    assert stratified_sample(labels, 5000, seed=3).tolist() == list(range(1000))


def test_best_signal_is_the_one_that_separates_best() -> None:
    rng = np.random.default_rng(6)
    truth = [Category.UNINTENDED] * 200 + [Category.NONE] * 200
    good = np.concatenate([rng.normal(3, 1, 200), rng.normal(0, 1, 200)])
    weak = np.concatenate([rng.normal(0.5, 1, 200), rng.normal(0, 1, 200)])
    data = labelled(truth, {"a:good": good, "b:weak": weak})
    result = calibrate(data, v0_values(), Objective("youden"), bootstraps=0)
    assert result.best_signal == "a:good"
    summary = result.to_dict()
    assert {h["signal"] for h in summary["histograms"]} == {"a:good", "b:weak"}
    assert sum(sum(c) for c in summary["histograms"][0]["counts"].values()) == 400
