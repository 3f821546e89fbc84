"""Seeds against references: MV for the prompt's own image, RV for another, TV for a region."""

from __future__ import annotations

import numpy as np
from PIL import Image

from memgrid.core.records import Reference
from memgrid.core.references.matching import Candidate, MatchParams, compare_seeds, grid_match
from memgrid.core.taxonomy import Webster
from tests.references.helpers import copied_seeds, training_image, varied_seeds


def reference(ref_id: int, key: str) -> Reference:
    return Reference(ref_id, f"images/{key}.png", key * 4, 256, 256, key=key, caption=f"a {key}")


def candidates(linked: bool) -> list[Candidate]:
    return [
        Candidate(reference(1, "barn"), training_image("barn"), linked=linked),
        Candidate(reference(2, "pier"), training_image("pier"), linked=False),
    ]


def seeds_of(images: list[Image.Image]) -> list[tuple[int, Image.Image]]:
    return list(enumerate(images))


def test_a_copy_of_the_linked_image_is_mv_and_of_another_rv() -> None:
    params = MatchParams()
    for linked, expected in (
        (True, Webster.MATCHING_VERBATIM),
        (False, Webster.RETRIEVAL_VERBATIM),
    ):
        matches = compare_seeds(seeds_of(copied_seeds("barn")), candidates(linked), params)
        assert {m.webster for m in matches} == {expected}
        assert {m.reference_id for m in matches} == {1}
        assert all(m.distance <= params.delta and m.carlini >= m.distance for m in matches)


def test_a_pairs_distance_does_not_depend_on_the_other_candidates() -> None:
    """Seeds and references are compared at 512 whatever their sizes: a large unrelated
    candidate in the batch must not change the working size of the others."""
    seeds = seeds_of(copied_seeds("barn")[:1])
    small = Candidate(reference(1, "barn"), training_image("barn").resize((200, 200)), True)
    large = Candidate(reference(2, "pier"), training_image("pier").resize((1024, 1024)), False)
    (alone,) = compare_seeds(seeds, [small], MatchParams())
    (beside,) = compare_seeds(seeds, [small, large], MatchParams())
    assert beside.reference_id == alone.reference_id == 1
    assert (beside.distance, beside.carlini) == (alone.distance, alone.carlini)


def test_varied_seeds_match_nothing_but_keep_the_nearest() -> None:
    matches = compare_seeds(seeds_of(varied_seeds("barn")), candidates(True), MatchParams())
    assert {m.webster for m in matches} == {Webster.NONE}
    assert all(m.distance > 0.15 for m in matches)
    score = grid_match(
        3, matches, {1: reference(1, "barn"), 2: reference(2, "pier")}, MatchParams(),
        n_seeds=4, linked=1, candidates=2,
    )  # fmt: skip
    assert score.values["webster"] == "N" and score.values["matched_seeds"] == 0
    assert score.values["reference"]["distance"] > 0.15


def template_seeds(count: int) -> list[Image.Image]:
    """The reference's top half in every seed, a different bottom half each."""
    top = np.asarray(training_image("barn"))[:128]
    seeds = []
    for image in varied_seeds("bottom", count):
        pixels = np.asarray(image).copy()
        pixels[:128] = top
        seeds.append(Image.fromarray(pixels))
    return seeds


def test_a_fixed_region_of_a_reference_is_tv_on_two_seeds() -> None:
    params = MatchParams()
    refs = {1: reference(1, "barn"), 2: reference(2, "pier")}
    matches = compare_seeds(seeds_of(template_seeds(3)), candidates(True), params)
    assert {m.webster for m in matches} == {Webster.TEMPLATE_VERBATIM}
    assert all(len(m.region_tiles) >= params.region_min_tiles for m in matches)
    assert all(max(m.region_tiles) < 32 for m in matches)  # the top half of the 8x8 map
    score = grid_match(4, matches, refs, params, n_seeds=3, linked=1, candidates=2)
    assert score.values["webster"] == "TV" and score.values["reference"]["key"] == "barn"
    one = grid_match(4, matches[:1], refs, params, n_seeds=3, linked=1, candidates=2)
    assert one.values["webster"] == "N"  # one seed's region is not a template


def test_grid_takes_the_most_serious_type_and_the_most_matched_reference() -> None:
    seeds = seeds_of([*copied_seeds("barn", 2), *varied_seeds("x", 2)])
    matches = compare_seeds(seeds, candidates(False), MatchParams())
    refs = {1: reference(1, "barn"), 2: reference(2, "pier")}
    score = grid_match(5, matches, refs, MatchParams(), n_seeds=4, linked=0, candidates=2)
    values = score.values
    assert values["webster"] == "RV" and values["matched_seeds"] == 2
    assert values["reference"]["key"] == "barn" and values["reference"]["seeds"] == 2
    assert [s["webster"] for s in values["seeds"]] == ["RV", "RV", "N", "N"]
    assert score.metric == "reference" and score.params["delta"] == 0.15
