"""The categorizer: a pure function from a grid's signals to a proposed label with reasons.

docs/design.md, "The categorizer". The combined score (core.combined: one logistic model
over every signal) decides memorized or not. Readable rules on top say what kind and
which category:
1. the combined score is below tau_combined: none;
2. pixel-level consistency over the whole image (a near-duplicate clique of tiled-l2,
   sscd, phash or keypoints, a tiled-l2 extent >= tau_global, or pHash / keypoint medians
   at a near-duplicate level): explicit if the prompt names the work, implicit if it
   singles it out, else unintended (a verbatim training image; Webster MV);
3. pixel-level consistency on a region only (a template): explicit/implicit when the prompt
   names/implies it, else unintended (Webster TV);
4. semantic consistency only (CLIP; pixels vary): explicit if named, implicit if implied,
   else unintended.
A reference match (a seed within Carlini's delta of a training image, core.references)
makes the grid memorized whatever the rest says, and sets Webster's type: MV, RV or TV.
When the score says memorized but no single rule holds (signals part-way add up), the kind
is that of the strongest contribution. Grids with fewer than `min_seeds` seeds are reported
as too small to judge. Every check leaves a Reason naming its signal, value and threshold.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from memgrid.core.attribution import Attribution
from memgrid.core.categorizer_rules import (
    Check,
    attribution_notes,
    region_attribution,
    semantic_attribution,
    whole_image_features,
)
from memgrid.core.combined import (
    COPY_METRICS,
    MATCH_METRIC,
    CombinedScore,
    clique_size,
    combine,
    evidence,
    seeds_of,
)
from memgrid.core.records import Proposal, Reason, Score
from memgrid.core.references.evidence import reference_evidence
from memgrid.core.references.matching import REFERENCE_METRIC
from memgrid.core.taxonomy import Category, Feature, Webster, most_serious
from memgrid.core.thresholds import Thresholds

# Whole-image near-duplicate metrics, strictest first (each reason is listed in this order).
PIXEL_METRICS = COPY_METRICS
REGION_METRIC = "tiled-l2"
REGION_GRID = 8  # the region map's tiles a side, where no tiled-l2 score says otherwise
SEMANTIC_METRIC = "clip"
GENERATION_METRIC = "wen"
# What each rule needs, for the reasons that say a rule was not applied.
RULE_NEEDS = {
    REGION_METRIC: "the whole-image extent and template rules (2, 3)",
    SEMANTIC_METRIC: "the semantic rule (4)",
    GENERATION_METRIC: "the generation-time signal",
}
# Wen et al.'s magnitude after the first step: measured the same way for triaged and fully
# generated grids, so one threshold fits both; calibration fits tau_wen on this same value.
WEN_VALUE_KEYS = ("first_step", "all_steps")
# Evidence features that describe a copy of the whole image (core.combined.FEATURES).
WHOLE_FEATURES = ("copy", "layout", "matches")
KIND_OF_FEATURE = {
    "copy": "whole",
    "layout": "whole",
    "matches": "whole",
    "region": "template",
    "semantic": "semantic",
}
# Keypoint matches whose inliers span less than this share of the picture (the median pair
# of the clique, by their bounding box) are a fixed mark recurring, a watermark or a logo,
# not the picture: on realgrids-dev the near-verbatim copies' matches span 17-35% of the
# seed (a drawn picture whose detail sits in one part, 10%), the demo's watermarks and
# logos 1-2% (their text and outline). Rule 3 then reads the place they span.
LOCAL_MATCH_AREA = 0.05
FEATURE_WORDS = {
    "layout": "pHash or gradient-layout median similarity at a near-duplicate level",
    "matches": "keypoint matches in most pairs",
}


@dataclass(frozen=True)
class Categorization:
    """The categorizer's answer; `proposal()` makes the stored record."""

    category: Category
    features: tuple[Feature, ...]
    reasons: tuple[Reason, ...]
    webster: Webster | None
    score: float | None = None  # the combined score (probability of memorized)
    margin: float | None = None  # its signed distance from tau_combined (>= 0: memorized)
    combined: CombinedScore | None = None

    def proposal(self, grid_id: int, threshold_set_id: int) -> Proposal:
        return Proposal(
            grid_id=grid_id,
            threshold_set_id=threshold_set_id,
            category=self.category,
            features=self.features,
            reasons=self.reasons,
            webster=self.webster,
            score=self.score,
            margin=self.margin,
        )


@dataclass
class _Rules:
    """Which readable rules hold, and the region they found."""

    whole: bool = False
    template: bool = False
    semantic: bool = False
    tiles: tuple[int, ...] = ()


def categorize(
    signals: Iterable[Score] | Mapping[str, Score],
    thresholds: Thresholds,
    attribution: Attribution,
) -> Categorization:
    """Propose a category, features, reasons and a Webster type for one grid (docs/design.md, "The categorizer")."""
    scores = latest_by_metric(signals.values() if isinstance(signals, Mapping) else signals)
    reasons: list[Reason] = []
    seeds = seeds_of(scores)
    small = seeds is not None and thresholds.too_small(seeds)
    rules = _Rules()
    if small:
        reasons += _too_small(scores, seeds or 0, thresholds)
    else:
        rules = _apply_rules(scores, thresholds, reasons)
    _generation_reason(scores.get(GENERATION_METRIC), thresholds, reasons)
    # A seed within delta of a training image is a copy whatever the seeds' consistency says.
    match = reference_evidence(scores.get(REFERENCE_METRIC), reasons)
    combined = combine(evidence(scores, thresholds, seeds), thresholds)
    reasons.append(_combined_reason(combined))

    features: list[Feature] = []
    kind = _kind(rules, combined, reasons) if combined.memorized else None
    if match is not None and (kind is None or match.kind == "whole"):
        kind = match.kind
        rules.tiles = rules.tiles or match.tiles
    if kind == "whole":
        features += whole_image_features(attribution, thresholds, reasons)
    elif kind == "template":
        attributed = region_attribution(attribution, thresholds)
        features.append(Feature(attributed.category, attributed.name, rules.tiles))
        reasons.append(Reason("prompt", attributed.reason))
    if (combined.memorized and rules.semantic and kind != "whole") or kind == "semantic":
        attributed = semantic_attribution(attribution, thresholds)
        features.append(Feature(attributed.category, attributed.name))
        reasons.append(Reason("prompt", attributed.reason))
    if features:
        clip_reported = any(r.signal == SEMANTIC_METRIC and not r.fired for r in reasons)
        reasons += attribution_notes(attribution, clip_reported)

    category = most_serious([f.category for f in features]) if features else Category.NONE
    return Categorization(
        category=category,
        features=tuple(features),
        reasons=tuple(reasons),
        webster=match.webster if match is not None else _webster(kind, bool(features)),
        score=combined.probability,
        margin=combined.margin,
        combined=combined,
    )


def _apply_rules(scores: dict[str, Score], thresholds: Thresholds, reasons: list[Reason]) -> _Rules:
    """The readable checks (cliques, region, semantic), each leaving its reason."""
    rules = _Rules()
    clique_checks = [
        check
        for metric in PIXEL_METRICS
        if (check := _clique_check(scores.get(metric), thresholds, reasons)) is not None
    ]
    region_score = _available(scores.get(REGION_METRIC), REGION_METRIC, reasons, required=True)
    extent_check = region_check = None
    if region_score is not None:
        extent_check, region_check, rules.tiles = _region_checks(region_score, thresholds)
    mark_tiles = _local_match_tiles(scores, region_score)
    whole_checks = [c for c in clique_checks if not (c.signal == MATCH_METRIC and mark_tiles)]
    rules.whole = any(c.fired for c in whole_checks) or bool(extent_check and extent_check.fired)
    region_found = bool(region_check and region_check.fired and rules.tiles)
    mark_found = any(c.fired and c.signal == MATCH_METRIC for c in clique_checks) and mark_tiles
    rules.template = not rules.whole and bool(region_found or mark_found)
    if not region_found and mark_found:
        rules.tiles = mark_tiles
    if extent_check is not None and region_check is not None and region_score is not None:
        reasons.append(_region_reason(region_score, extent_check, region_check, rules.whole))
    semantic_check = _semantic_check(scores.get(SEMANTIC_METRIC), thresholds, reasons)
    if semantic_check is not None:
        rules.semantic = semantic_check.fired
        reasons.append(_semantic_reason(semantic_check, rules.whole))
    return rules


def _kind(rules: _Rules, combined: CombinedScore, reasons: list[Reason]) -> str | None:
    """What recurs, for a grid the combined score calls memorized: the rules, else the signals."""
    whole_evidence = [
        feature for feature in WHOLE_FEATURES if combined.evidence_for(feature).x >= 1.0
    ]
    if rules.whole:
        return "whole"
    if whole_evidence and not rules.template:
        words = "; ".join(FEATURE_WORDS.get(f, f) for f in whole_evidence)
        reasons.append(Reason("combined", f"a copy of one image by its layout ({words})"))
        return "whole"
    if rules.template:
        return "template"
    if rules.semantic:
        return "semantic"
    strongest = combined.strongest()
    if strongest is None:
        return None
    reasons.append(
        Reason(
            "combined",
            f"no single rule holds; the signals add up, most of it from {strongest} "
            f"(read as {KIND_OF_FEATURE[strongest]})",
            fired=False,
        )
    )
    return KIND_OF_FEATURE[strongest]


def _too_small(scores: dict[str, Score], seeds: int, thresholds: Thresholds) -> list[Reason]:
    """Grid-level rules need min_seeds seeds; say which ones a small grid leaves out."""
    rules = []
    if any(m in scores for m in PIXEL_METRICS):
        rules.append("clique")
    if REGION_METRIC in scores:
        rules.append("region")
    if SEMANTIC_METRIC in scores:
        rules.append("semantic")
    names = " and ".join(rules) or "grid-level"
    pairs = seeds * (seeds - 1) // 2
    return [
        Reason(
            "grid",
            f"only {seeds} seeds ({pairs} pair{'s' if pairs != 1 else ''}): too small to judge; "
            f"the {names} rule{'s' if len(rules) > 1 else ''} need{'' if len(rules) > 1 else 's'} "
            f">= {thresholds.min_seeds}",
            float(seeds),
            float(thresholds.min_seeds),
            fired=False,
        )
    ]


def _combined_reason(combined: CombinedScore) -> Reason:
    parts = [
        f"{e.feature} {value:+.1f}" if e.value is not None else f"{e.feature} n/a"
        for e, (_, value) in zip(combined.evidence, combined.contributions, strict=True)
    ]
    verdict = "memorized" if combined.memorized else "not memorized"
    text = (
        f"combined: {verdict}, score {combined.probability:.2f} "
        f"{'≥' if combined.memorized else '<'} {combined.threshold:.2f} "
        f"(bias {combined.bias:+.1f}; {', '.join(parts)})"
    )
    return Reason("combined", text, combined.probability, combined.threshold, combined.memorized)


# ---------------------------------------------------------------- signals


def latest_by_metric(scores: Iterable[Score]) -> dict[str, Score]:
    """One score per metric: the latest available one, else the latest (it says why not)."""
    chosen: dict[str, Score] = {}
    for score in scores:
        current = chosen.get(score.metric)
        if current is None or score.available or not current.available:
            chosen[score.metric] = score
    return chosen


def _available(
    score: Score | None, metric: str, reasons: list[Reason], required: bool = False
) -> Score | None:
    """The score if it can be read; otherwise a reason saying which rule it leaves out."""
    needs = RULE_NEEDS.get(metric, f"the {metric} near-duplicate check")
    if score is None:
        if required:
            reasons.append(
                Reason(metric, f"{metric}: not scored; {needs} not applied", fired=False)
            )
        return None
    if not score.available:
        why = score.note or "unavailable"
        reasons.append(
            Reason(metric, f"{metric}: unavailable ({why}); {needs} not applied", fired=False)
        )
        return None
    return score


def _clique_check(
    score: Score | None, thresholds: Thresholds, reasons: list[Reason]
) -> Check | None:
    """Largest near-duplicate clique against the count required_clique asks for."""
    if score is None or _available(score, score.metric, reasons) is None:
        return None
    values = score.values
    seeds = int(values["n_seeds"])
    clique = clique_size(score)
    required = thresholds.required_clique(seeds)
    # clique >= required exactly when clique/seeds >= required/seeds: the check fires by count.
    check = Check(score.metric, clique / seeds, required / seeds)
    robust = " at the robust tile distance" if "robust_clique_size" in values else ""
    text = (
        f"{score.metric}: {clique}/{seeds} seeds near-identical{robust} "
        f"(clique share {check.value:.2f} {check.relation} {check.threshold:.2f})"
    )
    carlini = values.get("clique_size")
    if robust and carlini is not None and int(carlini) != clique:
        text += f"; {int(carlini)}/{seeds} by Carlini's largest tile"
    area = _local_match_area(score)
    if check.fired and area is not None:
        where = _bbox_words(_box_tiles(values["matched_box"], REGION_GRID)[1])
        text += (
            f", but the matches span {area:.0%} of the image (< {LOCAL_MATCH_AREA:.0%}) at "
            f"{where}: a fixed mark, not the whole picture"
        )
    reasons.append(Reason(score.metric, text, check.value, check.threshold, check.fired))
    _rescore_reason(score, "threshold", thresholds.pair_threshold(score.metric), reasons)
    if score.metric == REGION_METRIC:
        _rescore_reason(score, "tile_delta", thresholds.tile_delta, reasons)
    return check


def _rescore_reason(score: Score, key: str, expected: float | None, reasons: list[Reason]) -> None:
    """A score made at another threshold than the set expects asks for a rescore."""
    scored_at = score.values.get(key)
    if expected is None or scored_at is None or abs(float(scored_at) - expected) <= 1e-9:
        return
    what = "pair threshold" if key == "threshold" else key
    reasons.append(
        Reason(
            score.metric,
            f"{score.metric}: scored with {what} {float(scored_at):g}, this set "
            f"expects {expected:g}; rescore to apply it",
            float(scored_at),
            expected,
            fired=False,
        )
    )


def _region_checks(score: Score, thresholds: Thresholds) -> tuple[Check, Check, tuple[int, ...]]:
    """Extent of consistent tiles against tau_global, and the largest region against tau_region."""
    values = score.values
    grid = int(values.get("region_grid") or len(score.heatmap or []) or 8)
    tiles = tuple(int(tile) for tile in values.get("region_tiles") or ())
    extent = Check(REGION_METRIC, float(values.get("extent", 0.0)), thresholds.tau_global)
    region = Check(REGION_METRIC, len(tiles) / (grid * grid), thresholds.tau_region)
    return extent, region, tiles


def _local_match_area(score: Score | None) -> float | None:
    """The share of the picture a keypoint clique's matches span, when it is a local mark."""
    if score is None or score.metric != MATCH_METRIC or not score.available:
        return None
    area, box = score.values.get("matched_area"), score.values.get("matched_box")
    if area is None or not isinstance(box, list | tuple) or len(box) != 4:
        return None
    return float(area) if float(area) < LOCAL_MATCH_AREA else None


def _local_match_tiles(scores: dict[str, Score], region_score: Score | None) -> tuple[int, ...]:
    """The region-map tiles a keypoint clique's local matches cover (none if not local)."""
    score = scores.get(MATCH_METRIC)
    if _local_match_area(score) is None or score is None:
        return ()
    grid = int((region_score.values.get("region_grid") if region_score else None) or REGION_GRID)
    return _box_tiles(score.values["matched_box"], grid)[0]


def _box_tiles(box: Sequence[float], grid: int) -> tuple[tuple[int, ...], list[int]]:
    """A box [x0, y0, x1, y1] in shares of the side as the tiles of a grid x grid map it
    covers, and their inclusive [row0, col0, row1, col1]."""
    x0, y0, x1, y1 = (min(max(float(v), 0.0), 1.0) for v in box)
    column0, row0 = min(int(x0 * grid), grid - 1), min(int(y0 * grid), grid - 1)
    column1 = max(column0, min(math.ceil(x1 * grid) - 1, grid - 1))
    row1 = max(row0, min(math.ceil(y1 * grid) - 1, grid - 1))
    tiles = tuple(
        row * grid + column
        for row in range(row0, row1 + 1)
        for column in range(column0, column1 + 1)
    )
    return tiles, [row0, column0, row1, column1]


def _region_reason(score: Score, extent: Check, region: Check, whole: bool) -> Reason:
    if extent.fired:
        text = (
            f"tiled-l2: consistent over {extent.value:.0%} of the image "
            f"(extent {extent.value:.2f} ≥ {extent.threshold:.2f}): a copy of one image"
        )
        return Reason(REGION_METRIC, text, extent.value, extent.threshold)
    where = _bbox_words(score.values.get("region_bbox"))
    if region.fired and not whole:
        text = (
            f"tiled-l2: a fixed region at {where} ({region.value:.0%} of the image "
            f"≥ {region.threshold:.0%}) while the rest varies "
            f"(extent {extent.value:.2f} < {extent.threshold:.2f})"
        )
        return Reason(REGION_METRIC, text, region.value, region.threshold)
    if region.fired:
        text = f"tiled-l2: most consistent at {where} (extent {extent.value:.2f} < {extent.threshold:.2f})"
        return Reason(REGION_METRIC, text, extent.value, extent.threshold, fired=False)
    text = (
        f"tiled-l2: no fixed region (largest {region.value:.0%} of the image "
        f"< {region.threshold:.0%}; extent {extent.value:.2f} < {extent.threshold:.2f})"
    )
    return Reason(REGION_METRIC, text, region.value, region.threshold, fired=False)


def _bbox_words(bbox: object) -> str:
    if not isinstance(bbox, list | tuple) or len(bbox) != 4:
        return "one place"
    row0, column0, row1, column1 = (int(v) for v in bbox)
    rows = f"row {row0}" if row0 == row1 else f"rows {row0}-{row1}"
    columns = f"column {column0}" if column0 == column1 else f"columns {column0}-{column1}"
    return f"{rows}, {columns}"


def _semantic_check(
    score: Score | None, thresholds: Thresholds, reasons: list[Reason]
) -> Check | None:
    score = _available(score, SEMANTIC_METRIC, reasons, required=True)
    if score is None:
        return None
    return Check(SEMANTIC_METRIC, float(score.values["median_similarity"]), thresholds.tau_sem)


def _semantic_reason(check: Check, whole: bool) -> Reason:
    comparison = f"median similarity {check.value:.2f} {check.relation} {check.threshold:.2f}"
    if not check.fired:
        text = f"clip: seeds differ in content ({comparison})"
    elif whole:
        text = f"clip: seeds alike in content ({comparison}), as a copy implies"
    else:
        text = f"clip: same identity or concept in every seed while pixels vary ({comparison})"
    return Reason(SEMANTIC_METRIC, text, check.value, check.threshold, check.fired)


def _generation_reason(score: Score | None, thresholds: Thresholds, reasons: list[Reason]) -> None:
    """Wen et al.'s noise magnitude: reported, never decisive in v0 (no literature threshold)."""
    score = _available(score, GENERATION_METRIC, reasons)
    if score is None:
        return
    magnitude = next((score.values[k] for k in WEN_VALUE_KEYS if k in score.values), None)
    if thresholds.tau_wen is None or magnitude is None:
        reasons.append(
            Reason(
                GENERATION_METRIC,
                "wen: scored, but this threshold set has no tau_wen; the generation-time "
                "signal was not applied",
                None if magnitude is None else float(magnitude),
                fired=False,
            )
        )
        return
    check = Check(GENERATION_METRIC, float(magnitude), thresholds.tau_wen)
    reasons.append(
        Reason(
            GENERATION_METRIC,
            f"wen: text-conditional noise magnitude {check.value:.3g} {check.relation} "
            f"{check.threshold:.3g} (reported; the v0 rules do not decide on it)",
            check.value,
            check.threshold,
            check.fired,
        )
    )


def _webster(kind: str | None, memorized: bool) -> Webster | None:
    """Webster's types describe verbatim copies; semantic-only memorization has none."""
    if kind == "whole":
        return Webster.MATCHING_VERBATIM
    if kind == "template":
        return Webster.TEMPLATE_VERBATIM
    return None if memorized else Webster.NONE
