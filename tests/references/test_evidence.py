"""The categorizer reads the reference match: Webster's type from evidence, and the category."""

from __future__ import annotations

from typing import Any

from memgrid.core.attribution import attribute
from memgrid.core.categorizer import categorize
from memgrid.core.records import Score
from memgrid.core.taxonomy import Category, Webster
from memgrid.core.thresholds import Thresholds
from tests.core.test_categorizer import tiled_l2

V0 = Thresholds.v0()
BARN = {"id": 4, "key": "L123", "url": "http://x/barn.jpg", "caption": "a red barn at dusk"}


def reference_score(webster: str, matched: int = 2, **reference: Any) -> Score:
    best = {**BARN, "distance": 0.04, "carlini": 0.2, "linked": webster == "MV", **reference}
    values = {
        "n_seeds": 8,
        "webster": webster,
        "matched_seeds": matched,
        "reference": best,
        "seeds": [],
        "candidates": 3,
    }
    return Score(grid_id=1, metric="reference", params={"delta": 0.15}, version="1", values=values)


def test_a_varied_grid_copying_its_own_training_image_in_two_seeds_is_mv() -> None:
    # The seeds do not agree with each other (no clique), yet two of them copy the image.
    result = categorize([tiled_l2(1), reference_score("MV")], V0, attribute("a red barn at dusk"))
    assert result.webster is Webster.MATCHING_VERBATIM
    assert result.category is Category.UNINTENDED
    text = next(r.text for r in result.reasons if r.signal == "reference")
    assert "2/8 seeds copy the prompt's own training image" in text
    assert "key L123" in text and "http://x/barn.jpg" in text and "'a red barn at dusk'" in text
    assert "0.040" in text


def test_another_pool_image_is_rv_and_a_named_work_stays_explicit() -> None:
    unnamed = categorize([tiled_l2(1), reference_score("RV")], V0, attribute("a farm at dusk"))
    assert unnamed.webster is Webster.RETRIEVAL_VERBATIM
    assert unnamed.category is Category.UNINTENDED
    named = categorize(
        [tiled_l2(1), reference_score("RV")], V0, attribute('a print of "Barn at Dusk" by Ann Lee')
    )
    assert named.webster is Webster.RETRIEVAL_VERBATIM and named.category is Category.EXPLICIT


def test_a_region_match_is_tv_with_the_reference_tiles() -> None:
    score = reference_score("TV", region_tiles=[0, 1, 8, 9])
    result = categorize([tiled_l2(1), score], V0, attribute("a farm at dusk"))
    assert result.webster is Webster.TEMPLATE_VERBATIM
    assert result.features[0].tiles == (0, 1, 8, 9)
    assert result.category is Category.UNINTENDED


def test_no_match_leaves_the_decision_to_the_consistency_signals() -> None:
    result = categorize([tiled_l2(1), reference_score("N", 0)], V0, attribute("a farm"))
    assert result.category is Category.NONE and result.webster is Webster.NONE
    reason = next(r for r in result.reasons if r.signal == "reference")
    assert not reason.fired and "nearest key L123" in reason.text
