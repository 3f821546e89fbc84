"""The categorizer on grids whose truth is known by construction (docs/design.md, "The categorizer")."""

from __future__ import annotations

from typing import Any

import pytest

from memgrid.core.attribution import ClipEvidence, attribute
from memgrid.core.categorizer import categorize
from memgrid.core.records import Entity, Reason, Score
from memgrid.core.taxonomy import Category, Webster
from memgrid.core.thresholds import Thresholds

SEEDS = 8
GRID = 8
V0 = Thresholds.v0()
MONA_LISA = Entity("Mona Lisa", "work", ("the smiling woman painted by da Vinci",))


def pixel_score(metric: str, clique: int, *, seeds: int = SEEDS, **extra: Any) -> Score:
    threshold = {"tiled-l2": 0.15, "phash": 10 / 64, "sscd": 0.5}[metric]
    values = {
        "n_seeds": seeds,
        "clique_size": clique,
        "clique_share": clique / seeds,
        "cluster_share": clique / seeds if clique >= 3 else 0.0,
        "median_similarity": 0.9 if clique == seeds else 0.3,
        "threshold": threshold,
        **extra,
    }
    return Score(
        grid_id=1, metric=metric, params={"threshold": threshold}, version="1", values=values
    )


def tiled_l2(
    clique: int, tiles: tuple[int, ...] = (), *, seeds: int = SEEDS, **extra: Any
) -> Score:
    """A tiled-l2 score whose consistent tiles are exactly `tiles` (all 64 for a copy)."""
    heatmap = [[1.0 if r * GRID + c in tiles else 0.1 for c in range(GRID)] for r in range(GRID)]
    rows = [t // GRID for t in tiles]
    columns = [t % GRID for t in tiles]
    bbox = [min(rows), min(columns), max(rows), max(columns)] if tiles else None
    score = pixel_score(
        "tiled-l2",
        clique,
        seeds=seeds,
        extent=len(tiles) / GRID**2,
        region_tiles=list(tiles),
        region_bbox=bbox,
        region_grid=GRID,
        **extra,
    )
    return Score(**{**score.__dict__, "heatmap": heatmap})


def clip(median: float) -> Score:
    values = {
        "n_seeds": SEEDS,
        "clique_share": 1.0 if median >= 0.9 else 0.125,
        "cluster_share": 0.0,
        "median_similarity": median,
        "threshold": 0.9,
    }
    return Score(grid_id=1, metric="clip", params={}, version="1", values=values)


def clip_missing() -> Score:
    return Score(
        grid_id=1,
        metric="clip",
        params={},
        version="1",
        values={},
        available=False,
        note="no CLIP weights given for ViT-B-32",
    )


ALL_TILES = tuple(range(GRID * GRID))
WATERMARK = (62, 63)  # bottom-right corner: two tiles
COPY = [tiled_l2(SEEDS, ALL_TILES), pixel_score("phash", SEEDS), clip_missing()]


def fired(reasons: tuple[Reason, ...]) -> list[str]:
    return [r.signal for r in reasons if r.fired]


def texts(reasons: tuple[Reason, ...]) -> str:
    return "\n".join(r.text for r in reasons)


class TestWholeImageCopy:
    def test_prompt_naming_a_quoted_title_is_explicit(self) -> None:
        result = categorize(COPY, V0, attribute('a framed print of "Starry Night" on a wall'))
        assert result.category is Category.EXPLICIT
        assert result.webster is Webster.MATCHING_VERBATIM
        (feature,) = result.features
        assert (feature.category, feature.name, feature.tiles) == (
            Category.EXPLICIT,
            "copy of Starry Night",
            (),
        )
        assert {"tiled-l2", "phash", "prompt"} <= set(fired(result.reasons))
        assert "tiled-l2: 8/8 seeds near-identical (clique share 1.00 ≥ 0.38)" in texts(
            result.reasons
        )
        assert "extent 1.00 ≥ 0.90" in texts(result.reasons)
        assert "'Starry Night' (work, quoted title)" in texts(result.reasons)

    def test_descriptive_cue_is_implicit(self) -> None:
        result = categorize(COPY, V0, attribute("the smiling woman painted by da Vinci"))
        assert result.category is Category.IMPLICIT
        assert result.features[0].category is Category.IMPLICIT
        assert "singles out a work: 'the smiling woman painted by'" in texts(result.reasons)

    def test_untyped_description_singles_out_the_copy(self) -> None:
        result = categorize(COPY, V0, attribute("the most famous record sleeve of the decade"))
        assert result.category is Category.IMPLICIT

    def test_description_of_a_person_does_not_ask_for_the_photo(self) -> None:
        result = categorize(COPY, V0, attribute("the president who freed the slaves"))
        assert result.category is Category.UNINTENDED
        assert [(f.category, f.name) for f in result.features] == [
            (Category.UNINTENDED, "verbatim copy of one image"),
            (Category.IMPLICIT, "likeness of the president who"),
        ]

    def test_lexicon_alias_is_implicit(self) -> None:
        prompt = "the smiling woman painted by da Vinci, oil on wood"
        result = categorize(COPY, V0, attribute(prompt, [MONA_LISA]))
        assert result.category is Category.IMPLICIT
        assert result.features[0].name == "copy of Mona Lisa"

    def test_generic_prompt_is_unintended_matching_verbatim(self) -> None:
        result = categorize(COPY, V0, attribute("a photo of a living room with a sofa"))
        assert result.category is Category.UNINTENDED
        assert result.webster is Webster.MATCHING_VERBATIM
        assert [f.name for f in result.features] == ["verbatim copy of one image"]
        assert "no specific work" in texts(result.reasons)

    def test_named_person_is_expected_but_the_photo_is_not(self) -> None:
        people = [Entity("Ann Graham Lotz", "person")]
        result = categorize(COPY, V0, attribute("Living in the Light with Ann Graham Lotz", people))
        assert result.category is Category.UNINTENDED
        assert [(f.category, f.name) for f in result.features] == [
            (Category.UNINTENDED, "verbatim copy of one image"),
            (Category.EXPLICIT, "likeness of Ann Graham Lotz"),
        ]

    def test_a_partial_clique_is_still_a_copy(self) -> None:
        # 4 of 16 seeds copy one image: per-tile agreement stays low, the clique says copy.
        scores = [tiled_l2(4, (), seeds=16), clip(0.7)]
        result = categorize(scores, V0, attribute("a photo of a beach"))
        assert result.category is Category.UNINTENDED
        assert result.webster is Webster.MATCHING_VERBATIM
        assert "4/16 seeds near-identical (clique share 0.25 ≥ 0.19)" in texts(result.reasons)

    def test_a_shifted_copy_caught_only_by_phash_is_a_copy(self) -> None:
        scores = [tiled_l2(1, ()), pixel_score("phash", 7)]
        result = categorize(scores, V0, attribute("a photo of a beach"))
        assert result.webster is Webster.MATCHING_VERBATIM
        assert "phash" in fired(result.reasons) and "tiled-l2" not in fired(result.reasons)


class TestAttributionOnRealCaptions:
    """Item 7: the categories real LAION-style captions should get (realgrids-dev's cases)."""

    def test_a_title_naming_the_poster_is_explicit(self) -> None:
        prompt = "Captain Marvel Exclusive Ccxp Poster Released Online By Marvel"
        result = categorize(COPY, V0, attribute(prompt))
        assert result.category is Category.EXPLICIT
        assert "(work, the prompt is its title)" in texts(result.reasons)
        assert "names were read from word rarity (wordfreq), not capitals, a guess" in texts(
            result.reasons
        )

    def test_a_headline_about_a_game_does_not_ask_for_its_key_art(self) -> None:
        prompt = "<i>The Long Dark</i> Gets First Trailer, Steam Early Access"
        assert categorize(COPY, V0, attribute(prompt)).category is Category.UNINTENDED

    def test_an_unknown_prompt_gives_a_guess_and_says_so(self) -> None:
        result = categorize(COPY, V0, attribute(""))
        assert result.category is Category.UNINTENDED
        assert "prompt unknown" in texts(result.reasons) and "guess" in texts(result.reasons)

    def test_without_clip_a_template_goes_to_a_brand_before_a_person(self) -> None:
        lexicon = [Entity("Serena Williams", "person"), Entity("Nike", "brand")]
        prompt = "Serena Williams serving in a shirt with the Nike logo"
        result = categorize([tiled_l2(1, WATERMARK)], V0, attribute(prompt, lexicon))
        assert result.features[0].name == "fixed region: Nike"
        assert "a guess" in texts(result.reasons)


def keypoints(clique: int, area: float, box: list[float]) -> Score:
    """A keypoint clique of `clique` seeds whose matches span `area` of the picture in `box`."""
    values = {
        "n_seeds": SEEDS,
        "clique_size": clique,
        "clique_share": clique / SEEDS,
        "cluster_share": clique / SEEDS,
        "median_similarity": 0.55,
        "threshold": 0.5,
        "matched_area": area,
        "matched_box": box,
    }
    return Score(grid_id=1, metric="keypoints", params={}, version="5", values=values)


class TestKeypointMarks:
    """Keypoints that match in every seed but only on a small part of it: a mark, not a copy."""

    VARYING = (tiled_l2(1, ()), pixel_score("phash", 1), clip_missing())

    def test_matches_on_a_small_part_of_the_picture_are_a_template(self) -> None:
        # The demo's stock watermark: x 0.66-0.98, y 0.86-0.97 of the seed.
        scores = [*self.VARYING, keypoints(5, 0.02, [0.66, 0.86, 0.98, 0.97])]
        result = categorize(scores, V0, attribute("a mountain landscape at sunrise"))
        assert result.webster is Webster.TEMPLATE_VERBATIM
        (feature,) = result.features
        assert feature.category is Category.UNINTENDED
        assert feature.tiles == (53, 54, 55, 61, 62, 63)  # rows 6-7, columns 5-7
        reason = next(r for r in result.reasons if r.signal == "keypoints")
        assert "span 2% of the image" in reason.text and "rows 6-7, columns 5-7" in reason.text

    def test_matches_across_the_picture_are_a_copy(self) -> None:
        scores = [*self.VARYING, keypoints(5, 0.3, [0.1, 0.1, 0.8, 0.7])]
        result = categorize(scores, V0, attribute("a mountain landscape at sunrise"))
        assert result.webster is Webster.MATCHING_VERBATIM
        assert result.features[0].tiles == ()

    def test_a_region_the_map_found_keeps_its_tiles(self) -> None:
        scores = [tiled_l2(1, WATERMARK), pixel_score("phash", 1), clip_missing()]
        scores.append(keypoints(5, 0.02, [0.0, 0.0, 0.2, 0.2]))
        result = categorize(scores, V0, attribute("a mountain landscape at sunrise"))
        assert result.features[0].tiles == WATERMARK

    def test_a_pixel_copy_stays_a_copy_whatever_the_keypoints_span(self) -> None:
        scores = [*COPY, keypoints(SEEDS, 0.02, [0.66, 0.86, 0.98, 0.97])]
        result = categorize(scores, V0, attribute("a mountain landscape at sunrise"))
        assert result.webster is Webster.MATCHING_VERBATIM


class TestTemplate:
    def test_fixed_region_with_generic_prompt_is_unintended_template(self) -> None:
        scores = [tiled_l2(1, WATERMARK), pixel_score("phash", 1), clip(0.7)]
        result = categorize(scores, V0, attribute("a mountain lake at sunrise"))
        assert result.category is Category.UNINTENDED
        assert result.webster is Webster.TEMPLATE_VERBATIM
        (feature,) = result.features
        assert feature.tiles == WATERMARK
        assert feature.category is Category.UNINTENDED
        region_reason = next(r for r in result.reasons if "fixed region at" in r.text)
        assert region_reason.fired and region_reason.signal == "tiled-l2"
        assert "rows 7, columns 6-7" not in region_reason.text
        assert "row 7, columns 6-7" in region_reason.text

    def test_single_tile_is_not_a_template(self) -> None:
        result = categorize([tiled_l2(1, (0,)), clip(0.7)], V0, attribute("a mountain lake"))
        assert result.category is Category.NONE
        assert result.webster is Webster.NONE

    def test_region_named_by_the_prompt_is_explicit_from_words_alone(self) -> None:
        lexicon = [Entity("Nike", "brand")]
        scores = [tiled_l2(1, (27, 28, 35, 36)), clip_missing()]
        result = categorize(scores, V0, attribute("a running shoe with the Nike logo", lexicon))
        assert result.category is Category.EXPLICIT
        assert result.features[0].tiles == (27, 28, 35, 36)
        assert "CLIP cannot check the crop" in texts(result.reasons)

    def test_clip_evidence_decides_what_the_region_is(self) -> None:
        lexicon = [Entity("Nike", "brand"), Entity("Getty Images", "brand", ("getty watermark",))]
        evidence = ClipEvidence(
            available=True,
            prompt_similarity=0.12,
            entry_similarities=((lexicon[0], 0.15), (lexicon[1], 0.33)),
        )
        prompt = "a running shoe with the Nike logo"
        result = categorize(
            [tiled_l2(1, WATERMARK), clip(0.8)], V0, attribute(prompt, lexicon, evidence)
        )
        # The prompt names Nike, but the fixed region looks like a watermark it never asked for.
        assert result.category is Category.UNINTENDED
        assert result.features[0].name == "fixed region: Getty Images"
        assert "CLIP matches the region to Getty Images (0.33 ≥ 0.28)" in texts(result.reasons)

    def test_region_that_does_not_match_the_prompt_is_unintended(self) -> None:
        evidence = ClipEvidence(available=True, prompt_similarity=0.1)
        result = categorize(
            [tiled_l2(1, WATERMARK)], V0, attribute("Barack Obama at a rally", clip=evidence)
        )
        assert result.category is Category.UNINTENDED
        assert "prompt-to-region similarity 0.10 < 0.28" in texts(result.reasons)


class TestFreeVariationAndSemantics:
    def test_free_variation_is_none(self) -> None:
        scores = [tiled_l2(1, ()), pixel_score("phash", 1), clip(0.78)]
        result = categorize(scores, V0, attribute("a dog playing in the snow"))
        assert result.category is Category.NONE
        assert result.features == ()
        assert result.webster is Webster.NONE
        assert fired(result.reasons) == []
        assert "1/8 seeds near-identical (clique share 0.12 < 0.38)" in texts(result.reasons)
        assert "median similarity 0.78 < 0.95" in texts(result.reasons)
        assert result.margin is not None and result.margin < 0

    def test_clip_unavailable_says_the_semantic_rule_was_not_applied(self) -> None:
        scores = [tiled_l2(1, ()), clip_missing()]
        result = categorize(scores, V0, attribute("a portrait of a woman"))
        assert result.category is Category.NONE
        (reason,) = [r for r in result.reasons if r.signal == "clip"]
        assert not reason.fired
        assert "no CLIP weights" in reason.text
        assert "semantic rule (4) not applied" in reason.text

    def test_clip_not_scored_says_so_too(self) -> None:
        result = categorize([tiled_l2(1, ())], V0, attribute("a portrait of a woman"))
        assert "clip: not scored; the semantic rule (4) not applied" in texts(result.reasons)

    @pytest.mark.parametrize(
        ("prompt", "category"),
        [
            ("a portrait of Frida Kahlo in a garden", Category.EXPLICIT),
            ("the president who freed the slaves", Category.IMPLICIT),
            ("a portrait of a woman in a garden", Category.UNINTENDED),
        ],
    )
    def test_semantic_only(self, prompt: str, category: Category) -> None:
        scores = [tiled_l2(1, ()), clip(0.97)]
        result = categorize(scores, V0, attribute(prompt))
        assert result.category is category
        assert result.webster is None  # not a verbatim copy: no Webster type
        assert "same identity or concept in every seed while pixels vary" in texts(result.reasons)
        assert fired(result.reasons)[0] == "clip"

    def test_features_co_occur_and_the_most_serious_is_primary(self) -> None:
        # A named person recurs (explicit) and a fixed watermark (unintended) too.
        lexicon = [Entity("Barack Obama", "person")]
        scores = [tiled_l2(1, WATERMARK), clip(0.97)]
        evidence = ClipEvidence(available=True, prompt_similarity=0.1)
        result = categorize(scores, V0, attribute("Barack Obama at a rally", lexicon, evidence))
        assert sorted(f.category.value for f in result.features) == ["explicit", "unintended"]
        assert result.category is Category.UNINTENDED


class TestThresholdPlumbing:
    def test_stricter_thresholds_change_the_decision(self) -> None:
        scores = [tiled_l2(4, (), seeds=16)]
        strict = Thresholds.from_values({"tau_mem": 0.5})
        result = categorize(scores, strict, attribute("a beach"))
        assert result.category is Category.NONE
        assert "(clique share 0.25 < 0.50)" in texts(result.reasons)

    def test_two_seeds_are_too_small_to_judge(self) -> None:
        # Item 2: one pair is no grid; every grid-level rule needs >= min_seeds seeds.
        two = [tiled_l2(2, ALL_TILES, seeds=2), pixel_score("phash", 2, seeds=2)]
        result = categorize(two, V0, attribute("a beach"))
        assert result.category is Category.NONE
        (reason,) = [r for r in result.reasons if r.signal == "grid"]
        assert "only 2 seeds (1 pair): too small to judge" in reason.text
        assert "the clique and region rules need >= 3" in reason.text
        assert not reason.fired

    def test_three_seeds_need_a_strict_majority(self) -> None:
        two_of_three = [tiled_l2(2, (), seeds=3)]
        result = categorize(two_of_three, V0, attribute("a beach"))
        assert result.category is Category.UNINTENDED
        assert "2/3 seeds near-identical (clique share 0.67 ≥ 0.67)" in texts(result.reasons)
        two_of_four = categorize([tiled_l2(2, (), seeds=4)], V0, attribute("a beach"))
        assert two_of_four.category is Category.NONE

    def test_two_adjacent_tiles_of_a_small_grid_are_no_template(self) -> None:
        # The old false alarm: 2 seeds, two similar tiles made "half the pairs" agree.
        result = categorize([tiled_l2(1, WATERMARK, seeds=2)], V0, attribute("a lake"))
        assert result.category is Category.NONE
        assert result.webster is Webster.NONE

    def test_the_robust_clique_is_read_and_carlinis_reported(self) -> None:
        score = tiled_l2(2, (), robust_clique_size=8)
        result = categorize([score], V0, attribute("a beach"))
        assert result.webster is Webster.MATCHING_VERBATIM
        assert "8/8 seeds near-identical at the robust tile distance" in texts(result.reasons)
        assert "2/8 by Carlini's largest tile" in texts(result.reasons)

    def test_a_score_made_at_another_pair_threshold_is_flagged(self) -> None:
        score = tiled_l2(1, (), threshold=0.2)
        result = categorize([score], V0, attribute("a beach"))
        assert "scored with pair threshold 0.2, this set expects 0.15" in texts(result.reasons)

    def test_wen_without_a_threshold_is_reported_not_applied(self) -> None:
        values = {"first_step": 3.9, "all_steps": 3.2, "n_seeds": SEEDS}
        wen = Score(grid_id=1, metric="wen", params={}, version="1", values=values)
        result = categorize([tiled_l2(1, ()), wen], V0, attribute("a beach"))
        reason = next(r for r in result.reasons if r.signal == "wen")
        assert not reason.fired and "no tau_wen" in reason.text
        assert reason.value == 3.9  # the first step: what calibration fits tau_wen on
        with_tau = categorize([wen], Thresholds.from_values({"tau_wen": 3.0}), attribute("a"))
        (reason,) = [r for r in with_tau.reasons if r.signal == "wen"]
        assert reason.fired and "3.9 ≥ 3" in reason.text
        assert with_tau.category is Category.NONE  # reported, not decisive in v0

    def test_the_proposal_carries_the_combined_score_and_margin(self) -> None:
        result = categorize(COPY, V0, attribute("a beach"))
        proposal = result.proposal(grid_id=7, threshold_set_id=3)
        assert (proposal.grid_id, proposal.threshold_set_id) == (7, 3)
        assert proposal.category is Category.UNINTENDED
        assert result.combined is not None
        assert proposal.score == pytest.approx(result.combined.probability)
        assert proposal.margin == pytest.approx(result.combined.probability - 0.5)
        assert proposal.score > 0.95

    def test_reasons_show_each_signals_contribution(self) -> None:
        result = categorize(COPY, V0, attribute("a beach"))
        (reason,) = [r for r in result.reasons if r.signal == "combined"]
        assert reason.fired and reason.threshold == 0.5
        assert "combined: memorized, score" in reason.text
        assert (
            "bias -4.0; copy +8.0, layout +4.7, matches n/a, region +8.0, semantic n/a"
            in reason.text
        )

    def test_fitted_weights_change_the_decision(self) -> None:
        # A template of two tiles sits exactly at the v0 cut; a fit that trusts regions less
        # (a project whose templates were mostly by design) turns it down.
        scores = [tiled_l2(1, WATERMARK)]
        assert categorize(scores, V0, attribute("a lake")).category is Category.UNINTENDED
        fitted = Thresholds.from_values({"w_region": 2.0})
        assert categorize(scores, fitted, attribute("a lake")).category is Category.NONE
