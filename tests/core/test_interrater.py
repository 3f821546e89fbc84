"""Agreement statistics against published worked examples, and the blind/shown comparison."""

from __future__ import annotations

import numpy as np
import pytest

from memgrid.core.interrater import (
    agreement_report,
    category_counts,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    pairwise_kappas,
    proposal_agreement,
)
from memgrid.core.records import LabelEvent
from memgrid.core.taxonomy import Category, LabelAction, LabelState

# Fleiss' kappa worked example (Wikipedia, "Fleiss' kappa", after Fleiss 1971): 10 subjects,
# 14 raters, 5 categories; published kappa 0.210 (P-bar 0.378, P-e 0.213).
FLEISS_TABLE = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers,
# 12 units, nominal values with missing ones; published alpha 0.743.
KRIPPENDORFF_DATA = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}


def ratings_from(rows: dict[str, list[int | None]]) -> dict[str, dict[int, str]]:
    return {
        observer: {unit: str(value) for unit, value in enumerate(values) if value is not None}
        for observer, values in rows.items()
    }


def test_fleiss_kappa_matches_the_published_example() -> None:
    assert fleiss_kappa(FLEISS_TABLE) == pytest.approx(0.210, abs=5e-4)
    assert fleiss_kappa(FLEISS_TABLE) == pytest.approx(0.2099307, abs=1e-6)


def test_krippendorff_alpha_matches_the_published_example() -> None:
    assert krippendorff_alpha(ratings_from(KRIPPENDORFF_DATA)) == pytest.approx(0.743, abs=5e-4)


def test_cohen_kappa_matches_the_textbook_example() -> None:
    """Wikipedia's Cohen's kappa example: 50 proposals, yes/yes 20, yes/no 5, no/yes 10, no/no 15."""
    first = ["yes"] * 25 + ["no"] * 25
    second = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(first, second) == pytest.approx(0.4)
    ratings = {
        "a": dict(enumerate(first)),
        "b": dict(enumerate(second)),
        "c": {index: label for index, label in enumerate(first) if index < 30},
    }
    pairs = {(p.annotator_a, p.annotator_b): p for p in pairwise_kappas(ratings)}
    assert pairs[("a", "b")].kappa == pytest.approx(0.4)
    assert pairs[("a", "b")].observed == pytest.approx(0.7)
    assert pairs[("a", "c")].items == 30 and pairs[("a", "c")].kappa == pytest.approx(1.0)


def test_fleiss_for_two_raters_equals_krippendorff_up_to_the_small_sample_term() -> None:
    """With two raters and no missing data, alpha = 1 - (1 - pi)(2N - 1)/(2N) (Krippendorff)."""
    rng = np.random.default_rng(3)
    first = rng.integers(0, 3, 60)
    second = np.where(rng.random(60) < 0.7, first, rng.integers(0, 3, 60))
    ratings = {
        "a": {i: str(v) for i, v in enumerate(first)},
        "b": {i: str(v) for i, v in enumerate(second)},
    }
    table, _ = category_counts(ratings)
    pi = fleiss_kappa(table)
    alpha = krippendorff_alpha(ratings)
    assert pi is not None and alpha is not None
    units = 60
    assert alpha == pytest.approx(1 - (1 - pi) * (2 * units - 1) / (2 * units), abs=1e-9)


def test_undefined_agreement_is_none_not_a_crash() -> None:
    same = {"a": {1: "none", 2: "none"}, "b": {1: "none", 2: "none"}}
    table, _ = category_counts(same)
    assert fleiss_kappa(table) is None
    assert krippendorff_alpha(same) is None
    assert cohen_kappa(["x"], ["x"]) is None
    assert krippendorff_alpha({"a": {1: "x"}}) is None
    with pytest.raises(ValueError):
        cohen_kappa(["a", "b"], ["a"])


def event(
    grid_id: int,
    annotator: str,
    category: Category,
    *,
    proposed: Category | None = None,
    shown: bool = True,
    event_id: int = 0,
) -> LabelEvent:
    return LabelEvent(
        id=event_id or grid_id * 10 + len(annotator),
        grid_id=grid_id,
        annotator=annotator,
        action=LabelAction.LABEL,
        state=LabelState.LABELLED,
        category=category,
        proposal_shown=shown,
        proposal_category=proposed,
    )


def test_blind_versus_shown_agreement_with_the_proposals() -> None:
    memorized, none = Category.UNINTENDED, Category.NONE
    events = [
        # Shown: the annotator follows the proposal every time.
        *(
            event(g, "ann", memorized if g % 2 else none, proposed=memorized if g % 2 else none)
            for g in range(1, 21)
        ),
        # Blind: agrees on half.
        *(
            event(g, "ann", memorized, proposed=memorized if g % 2 else none, shown=False)
            for g in range(21, 31)
        ),
        # No proposal recorded: not counted.
        event(40, "ann", none),
    ]
    blind, shown = proposal_agreement(events)
    assert (shown.labels, shown.agreed, shown.share) == (20, 20, 1.0)
    assert (blind.labels, blind.agreed, blind.share) == (10, 5, 0.5)
    report = agreement_report(events)
    assert report.anchoring == pytest.approx(0.5)
    assert any("at least two" in warning for warning in report.warnings)


def test_agreement_report_over_several_annotators() -> None:
    categories = list(Category)
    rng = np.random.default_rng(9)
    truth = rng.integers(0, 4, 40)
    events = []
    for annotator, noise in (("ana", 0.1), ("ben", 0.2), ("cy", 0.3)):
        for grid, code in enumerate(truth, start=1):
            label = code if rng.random() > noise else rng.integers(0, 4)
            events.append(event(grid, annotator, categories[label]))
    report = agreement_report(events)
    assert report.annotators == ["ana", "ben", "cy"]
    assert report.items_multi_rated == 40
    assert len(report.pairs) == 3
    assert report.fleiss_kappa is not None and 0.4 < report.fleiss_kappa < 1.0
    assert report.krippendorff_alpha == pytest.approx(report.fleiss_kappa, abs=0.01)
    as_dict = report.to_dict()
    assert as_dict["pairs"][0]["annotator_a"] == "ana"
