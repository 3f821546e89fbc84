"""The combined score (items 5 and 8): evidence, the v0 logistic model, and its fit."""

from __future__ import annotations

import numpy as np
import pytest

from memgrid.core.combined import (
    FEATURES,
    LAYOUT_THRESHOLD,
    PRIOR_SIGMA,
    V0_BIAS,
    V0_WEIGHT,
    combined_score,
    evidence,
    feature_row,
    fit_weights,
    weight_keys,
)
from memgrid.core.records import Score
from memgrid.core.thresholds import SPECS, Thresholds, validate_values

V0 = Thresholds.v0()


def score(
    metric: str, seeds: int = 8, clique: int = 1, median: float = 0.5, **extra: object
) -> Score:
    values = {
        "n_seeds": seeds,
        "clique_size": clique,
        "clique_share": clique / seeds,
        "median_similarity": median,
        **extra,
    }
    return Score(grid_id=1, metric=metric, params={}, version="1", values=values)


def by_metric(*scores: Score) -> dict[str, Score]:
    return {s.metric: s for s in scores}


def test_unrelated_seeds_give_no_evidence_and_a_low_score() -> None:
    scores = by_metric(score("phash", median=0.5), score("keypoints", median=0.1))
    combined = combined_score(scores, V0)
    assert all(e.x == 0 for e in combined.evidence)
    assert combined.probability < 0.05 and not combined.memorized


def test_phash_median_at_the_near_duplicate_level_decides_alone() -> None:
    # Item 5: the median pairwise pHash similarity is read by the decision.
    scores = by_metric(score("phash", median=LAYOUT_THRESHOLD))
    combined = combined_score(scores, V0)
    assert combined.evidence_for("layout").x == pytest.approx(1.0)
    assert combined.probability == pytest.approx(0.5)
    assert combined.memorized
    weaker = combined_score(by_metric(score("phash", median=0.75)), V0)
    assert not weaker.memorized


def test_part_way_signals_add_up() -> None:
    half_layout = 0.5 + (LAYOUT_THRESHOLD - 0.5) / 2
    scores = by_metric(score("phash", median=half_layout), score("keypoints", median=0.35))
    combined = combined_score(scores, V0)
    assert combined.evidence_for("layout").x == pytest.approx(0.5)
    assert combined.evidence_for("matches").x == pytest.approx(0.5)
    assert combined.probability == pytest.approx(0.5)


def test_clique_evidence_is_measured_against_the_size_aware_requirement() -> None:
    assert V0.required_clique(3) == 2  # a strict majority below 2 * min_clique
    assert V0.required_clique(4) == 3
    assert V0.required_clique(50) == 3  # MemBench
    assert V0.required_clique(500) == 10  # Carlini
    two_of_three = evidence(by_metric(score("phash", seeds=3, clique=2)), V0)
    assert two_of_three[0].x == pytest.approx(1.0)
    two_of_four = evidence(by_metric(score("phash", seeds=4, clique=2)), V0)
    assert two_of_four[0].x == pytest.approx(0.5)


def test_a_grid_below_min_seeds_has_no_evidence_and_says_why() -> None:
    found = evidence(by_metric(score("phash", seeds=2, clique=2, median=1.0)), V0)
    assert all(e.x == 0 and "only 2 seeds" in e.note for e in found)


def test_missing_signals_say_why() -> None:
    unavailable = Score(1, "clip", {}, "1", {}, available=False, note="no CLIP weights")
    found = {e.feature: e for e in evidence(by_metric(score("phash"), unavailable), V0)}
    assert "clip unavailable (no CLIP weights)" in found["semantic"].note
    assert "keypoints not scored" in found["matches"].note


def test_the_fit_learns_from_labels_and_stays_at_the_prior_without_them() -> None:
    rng = np.random.default_rng(0)
    memorized = rng.random(200) < 0.3
    rows = np.zeros((200, len(FEATURES)))
    # Memorized grids show layout evidence, the others do not; matches is pure noise.
    rows[:, FEATURES.index("layout")] = np.where(
        memorized, rng.uniform(0.6, 1.5, 200), rng.uniform(0, 0.4, 200)
    )
    rows[:, FEATURES.index("matches")] = rng.uniform(0, 0.8, 200)
    fitted = fit_weights(rows, memorized)
    assert fitted.converged and fitted.examples == 200
    assert fitted.weights["layout"] > fitted.weights["matches"]
    assert fitted.weights["semantic"] == pytest.approx(4.0)  # no evidence: the prior stands
    thresholds = Thresholds.from_values(fitted.values())
    predicted = [
        thresholds.bias + sum(thresholds.weight(f) * x for f, x in zip(FEATURES, row, strict=True))
        >= 0
        for row in rows
    ]
    assert np.mean(np.array(predicted) == memorized) > 0.9
    too_few = fit_weights(rows[:5], np.array([True, False, False, False, False]))
    assert too_few.values()["w_bias"] == V0.bias and too_few.held == weight_keys()


def penalised_gradient(rows: np.ndarray, memorized: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """The gradient of the fit's objective (log-likelihood plus the N(v0, sigma^2) prior)."""
    design = np.hstack([np.ones((len(rows), 1)), rows])
    probabilities = 1.0 / (1.0 + np.exp(-(design @ theta)))
    centre = np.array([V0_BIAS, *(V0_WEIGHT for _ in FEATURES)])
    return design.T @ (memorized - probabilities) - (theta - centre) / PRIOR_SIGMA**2


def test_a_handful_of_separable_labels_fits_to_the_maximum_not_off_to_infinity() -> None:
    # The demo's Webster labels in miniature: copies with strong copy and layout evidence,
    # templates with a little layout evidence, negatives with less or none. Separable, so
    # a full Newton step overshoots (the probabilities saturate) and oscillated for ever.
    copies = [[1.75, 1.455, 0, 2, 0]] * 9
    templates = [[0, x, 0, 0, 0] for x in (0.273, 0.273, 0.182, 0.227, 0.091, 0.273)]
    negatives = [[0, x, 0, 0, 0] for x in (0, 0.091, 0.045, 0, 0.091, 0.045)]
    rows = np.array(copies + templates + negatives)
    memorized = np.array([True] * 15 + [False] * 6)
    fitted = fit_weights(rows, memorized)
    assert fitted.converged
    theta = np.array([fitted.bias, *(fitted.weights[f] for f in FEATURES)])
    # The maximum of the penalised likelihood: zero gradient in every weight it moved.
    moved = np.array([key not in fitted.held for key in weight_keys()])
    assert np.abs(penalised_gradient(rows, memorized, theta)[moved]).max() < 1e-6
    assert -4 < fitted.bias < 0 and 4 < fitted.weights["layout"] < 8

    # Never worse than v0 on the labels it was fitted on.
    def right(bias: float, weights: dict[str, float]) -> int:
        logits = bias + rows @ np.array([weights[f] for f in FEATURES])
        return int(((logits >= 0) == memorized).sum())

    assert right(fitted.bias, fitted.weights) >= right(V0_BIAS, dict.fromkeys(FEATURES, V0_WEIGHT))
    # Nothing shows matches or semantic evidence: those weights are not fitted, and say so.
    assert set(fitted.held) == {"w_matches", "w_semantic"}
    assert fitted.weights["matches"] == fitted.weights["semantic"] == V0_WEIGHT
    # One grid showing an evidence is too few to move its weight.
    one_match = rows.copy()
    one_match[0, FEATURES.index("matches")] = 1.0
    assert "w_matches" in fit_weights(one_match, memorized).held


def test_weights_are_threshold_set_keys_with_sources() -> None:
    keys = {"w_bias", "tau_combined", *(f"w_{f}" for f in FEATURES)}
    assert keys <= set(SPECS)
    assert all("literature threshold" in SPECS[f"w_{f}"].source for f in FEATURES)
    assert validate_values({"w_copy": 2.5, "tau_combined": 0.7}, "t.toml") == {
        "w_copy": 2.5,
        "tau_combined": 0.7,
    }


def test_feature_row_orders_by_features() -> None:
    found = evidence(by_metric(score("phash", median=1.0)), V0)
    row = feature_row(found)
    assert len(row) == len(FEATURES) and row[FEATURES.index("layout")] == pytest.approx(
        1.4545, abs=1e-3
    )
