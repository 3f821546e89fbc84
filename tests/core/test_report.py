"""Rates, bootstrap intervals, paired changes and McNemar's test (core/report.py)."""

from __future__ import annotations

import numpy as np
import pytest

from memgrid.core.calibration import CATEGORY_CODE
from memgrid.core.report import (
    FIGURES,
    MEMORIZED,
    UNKNOWN,
    WEBSTER_CODE,
    Outcomes,
    Scheme,
    mcnemar,
    moved,
    paired_changes,
    rates,
)
from memgrid.core.taxonomy import Category, Webster

EXPLICIT, IMPLICIT, UNINTENDED, NONE = (CATEGORY_CODE[c] for c in Category)
MV, TV, RV, NOT_REPLICATED = (WEBSTER_CODE[w] for w in Webster)


def outcomes(categories, webster=None, human=None, webster_human=None) -> Outcomes:
    categories = np.asarray(categories)
    webster = np.full(len(categories), UNKNOWN) if webster is None else np.asarray(webster)
    human = np.ones(len(categories), bool) if human is None else np.asarray(human, bool)
    webster_human = human if webster_human is None else np.asarray(webster_human, bool)
    return Outcomes(categories, human, webster, webster_human)


def by_figure(found):
    return {item.figure: item for item in found}


def test_counts_rates_and_the_human_share() -> None:
    found = by_figure(
        rates(
            outcomes(
                [EXPLICIT, EXPLICIT, UNINTENDED, NONE, NONE, NONE, UNKNOWN, IMPLICIT],
                webster=[
                    MV,
                    UNKNOWN,
                    TV,
                    NOT_REPLICATED,
                    NOT_REPLICATED,
                    NOT_REPLICATED,
                    UNKNOWN,
                    MV,
                ],
                human=[1, 0, 1, 1, 0, 1, 0, 1],
            ),
            bootstraps=200,
        )
    )
    explicit = found["explicit"]
    assert (explicit.count, explicit.total, explicit.count_human, explicit.total_human) == (
        2,
        7,
        1,
        5,
    )
    assert explicit.rate == pytest.approx(2 / 7)
    assert found["memorized"].count == 4 and found["none"].count == 3
    assert found["MV"].count == 2 and found["MV"].total == 6 and found["TV"].count == 1
    assert found["RV"].count == 0 and found["RV"].interval == (0.0, 0.0)
    for item in found.values():
        low, high = item.interval
        assert low <= item.rate <= high


def test_intervals_are_seeded_and_optional() -> None:
    data = outcomes(np.random.default_rng(3).integers(0, 4, 300))
    assert rates(data, seed=5) == rates(data, seed=5)
    assert rates(data, seed=5) != rates(data, seed=6)
    assert all(item.interval is None for item in rates(data, bootstraps=0))
    empty = by_figure(rates(outcomes([UNKNOWN, UNKNOWN])))
    assert empty["explicit"].total == 0 and empty["explicit"].rate is None
    assert empty["explicit"].interval is None


def test_rate_intervals_cover_the_truth_at_the_nominal_rate() -> None:
    """400 simulated label sets of 400 grids each: each figure's 95% interval holds the truth ~95%."""
    category_shares = np.array([0.08, 0.12, 0.2, 0.6])  # explicit, implicit, unintended, none
    webster_shares = np.array([0.15, 0.1, 0.05, 0.7])  # MV, TV, RV, N
    truth = {
        figure.key: (category_shares if figure.scheme is Scheme.CATEGORY else webster_shares)[
            list(figure.codes)
        ].sum()
        for figure in FIGURES
    }
    rng = np.random.default_rng(0)
    sets, grids = 400, 400
    covered = dict.fromkeys(truth, 0)
    for index in range(sets):
        data = outcomes(
            rng.choice(4, grids, p=category_shares),
            webster=rng.choice(4, grids, p=webster_shares),
            human=rng.random(grids) < 0.5,  # who labelled a grid does not move its rate
        )
        for item in rates(data, seed=index):
            low, high = item.interval
            covered[item.figure] += low <= truth[item.figure] <= high
    for figure, hits in covered.items():
        assert abs(hits / sets - 0.95) <= 0.03, (figure, hits / sets)


def test_paired_change_intervals_cover_the_truth_at_the_nominal_rate() -> None:
    """A mitigation that removes 15% of copies and adds 3%: the change is -0.12."""
    joint = np.array(
        [0.05, 0.15, 0.03, 0.77]
    )  # memorized under (A, B): both, A only, B only, neither
    true_change = joint[2] - joint[1]
    rng = np.random.default_rng(0)
    sets, prompts = 400, 400
    hits = 0
    for index in range(sets):
        cells = rng.choice(4, prompts, p=joint)
        under_a = outcomes(np.where(cells <= 1, UNINTENDED, NONE))
        under_b = outcomes(np.where((cells == 0) | (cells == 2), UNINTENDED, NONE))
        (change,) = paired_changes(under_a, under_b, seed=index, figures=(MEMORIZED,))
        low, high = change.interval
        hits += low <= true_change <= high
    assert abs(hits / sets - 0.95) <= 0.03, hits / sets


def test_paired_change_counts_and_moved_prompts() -> None:
    under_a = outcomes(
        [UNINTENDED, UNINTENDED, EXPLICIT, NONE, NONE, UNKNOWN, IMPLICIT],
        human=[1, 1, 1, 1, 0, 1, 1],
    )
    under_b = outcomes([NONE, UNINTENDED, NONE, NONE, EXPLICIT, UNINTENDED, IMPLICIT])
    changes = by_figure(paired_changes(under_a, under_b, bootstraps=100))
    memorized = changes["memorized"]
    assert (memorized.pairs, memorized.both, memorized.a_only, memorized.b_only) == (6, 2, 2, 1)
    assert memorized.pairs_human == 5
    assert memorized.rate_a == pytest.approx(4 / 6) and memorized.rate_b == pytest.approx(3 / 6)
    assert memorized.change == pytest.approx(-1 / 6)
    assert memorized.interval[0] <= memorized.change <= memorized.interval[1]
    unintended = changes["unintended"]
    assert (unintended.both, unintended.a_only, unintended.b_only) == (1, 1, 0)
    a_only, b_only = moved(under_a, under_b)
    assert list(a_only) == [0, 2] and list(b_only) == [4]
    with pytest.raises(ValueError):
        paired_changes(under_a, outcomes([NONE]))


def test_mcnemar_against_agresti_presidential_approval() -> None:
    """Agresti (1990), Categorical Data Analysis, p. 350: approval of the President in two
    surveys of the same 1,600 people: 794 approve both times, 150 approve then disapprove,
    86 disapprove then approve, 570 disapprove both times. R's `mcnemar.test` (continuity
    corrected) gives McNemar's chi-squared = 16.818, df = 1, p-value = 4.115e-05.
    """
    test = mcnemar(150, 86)
    assert test.chi2 == pytest.approx(16.818, abs=5e-4)
    assert test.p_chi2 == pytest.approx(4.115e-05, rel=1e-3)
    assert test.p_exact < test.p_chi2


def test_mcnemar_exact_on_a_small_table() -> None:
    # 11 pairs moved one way, 3 the other: P(X <= 3), X ~ Binomial(14, 1/2), is
    # (1 + 14 + 91 + 364) / 2**14 = 470 / 16384; two-sided, twice that.
    test = mcnemar(11, 3)
    assert test.p_exact == pytest.approx(2 * 470 / 16384)
    assert mcnemar(3, 11).p_exact == test.p_exact
    assert mcnemar(0, 5).p_exact == pytest.approx(2 / 32)
    assert mcnemar(7, 7).p_exact == 1.0 and mcnemar(7, 7).p_chi2 == 1.0
    nothing = mcnemar(0, 0)
    assert nothing.p_exact is None and nothing.chi2 is None


def test_mcnemar_exact_stays_finite_on_large_counts() -> None:
    assert mcnemar(50_000, 50_000).p_exact == 1.0
    assert mcnemar(51_000, 49_000).p_exact == pytest.approx(mcnemar(51_000, 49_000).p_chi2, rel=0.1)
    assert mcnemar(60_000, 40_000).p_exact == 0.0
