"""The categorizer: a pure function from a grid's signals to a proposed label with reasons.

docs/design.md, "The categorizer", version 0, in order:
1. no pixel-level consistency above tau_mem and no semantic consistency above tau_sem: none;
2. pixel-level consistency over the whole image (a near-duplicate clique, or a tiled-l2
   extent >= tau_global): explicit if the prompt names the work, implicit if it singles it
   out without naming it, else unintended (a verbatim training image; Webster MV);
3. pixel-level consistency on a region only (a template): the region's feature is
   explicit/implicit when the prompt names/implies it, else unintended (Webster TV);
4. semantic consistency only (CLIP; pixels vary): explicit if named, implicit if implied,
   else unintended.
Several features may hold at once; the primary category is the most serious of them.
Every decision leaves a Reason naming the signal, its value and its threshold, and a
signal that could not run leaves a Reason (fired=False) saying which rule was not applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from memgrid.core.attribution import Attribution, Cue, EntityMention
from memgrid.core.records import Entity, Proposal, Reason, Score
from memgrid.core.taxonomy import Category, Feature, Webster, most_serious
from memgrid.core.thresholds import Thresholds

# Whole-image near-duplicate metrics, strictest first (each reason is listed in this order).
PIXEL_METRICS = ("tiled-l2", "sscd", "phash")
REGION_METRIC = "tiled-l2"
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
# Entity types whose *image* a pixel copy can be: a painting, poster, cover, logo.
IMAGE_TYPES = ("work", "brand")
TYPED = ("person", "work", "brand", "place")


@dataclass(frozen=True)
class Check:
    """One comparison of a signal's value with its threshold (fired when value >= threshold)."""

    signal: str
    value: float
    threshold: float

    @property
    def fired(self) -> bool:
        return self.value >= self.threshold

    @property
    def margin(self) -> float:
        return self.value - self.threshold

    @property
    def relation(self) -> str:
        return "≥" if self.fired else "<"


@dataclass(frozen=True)
class Categorization:
    """The categorizer's answer; `proposal()` makes the stored record."""

    category: Category
    features: tuple[Feature, ...]
    reasons: tuple[Reason, ...]
    webster: Webster | None
    score: float | None = None  # the value of the check nearest to deciding the other way
    margin: float | None = None  # its signed distance from its threshold (>= 0: it fired)

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


@dataclass(frozen=True)
class _Attributed:
    """A feature's category, its short name, and the reason the prompt gives for it."""

    category: Category
    name: str
    reason: str


def categorize(
    signals: Iterable[Score] | Mapping[str, Score],
    thresholds: Thresholds,
    attribution: Attribution,
) -> Categorization:
    """Propose a category, features, reasons and a Webster type for one grid (docs/design.md, "The categorizer")."""
    scores = _latest_by_metric(signals.values() if isinstance(signals, Mapping) else signals)
    reasons: list[Reason] = []
    checks: list[Check] = []

    clique_checks = [
        check
        for metric in PIXEL_METRICS
        if (check := _clique_check(scores.get(metric), thresholds, reasons)) is not None
    ]
    checks += clique_checks
    region_score = _available(scores.get(REGION_METRIC), REGION_METRIC, reasons, required=True)
    extent_check = region_check = None
    region_tiles: tuple[int, ...] = ()
    if region_score is not None:
        extent_check, region_check, region_tiles = _region_checks(region_score, thresholds)

    whole = any(c.fired for c in clique_checks) or bool(extent_check and extent_check.fired)
    template = not whole and bool(region_check and region_check.fired and region_tiles)
    if extent_check is not None and region_check is not None and region_score is not None:
        reasons.append(_region_reason(region_score, extent_check, region_check, whole))
        checks.append(extent_check if whole or not region_tiles else region_check)

    semantic_check = _semantic_check(scores.get(SEMANTIC_METRIC), thresholds, reasons)
    semantic = bool(semantic_check and semantic_check.fired)
    if semantic_check is not None:
        checks.append(semantic_check)
        reasons.append(_semantic_reason(semantic_check, whole))
    _generation_reason(scores.get(GENERATION_METRIC), thresholds, reasons)

    features: list[Feature] = []
    if whole:
        features += _whole_image_features(attribution, thresholds, reasons)
    elif template:
        attributed = _region_attribution(attribution, thresholds)
        features.append(Feature(attributed.category, attributed.name, region_tiles))
        reasons.append(Reason("prompt", attributed.reason))
    if semantic and not whole:
        attributed = _semantic_attribution(attribution, thresholds)
        features.append(Feature(attributed.category, attributed.name))
        reasons.append(Reason("prompt", attributed.reason))
    if features:
        clip_reported = any(r.signal == SEMANTIC_METRIC and not r.fired for r in reasons)
        reasons += _attribution_notes(attribution, clip_reported)

    category = most_serious([f.category for f in features]) if features else Category.NONE
    deciding = max(checks, key=lambda c: c.margin) if checks else None
    return Categorization(
        category=category,
        features=tuple(features),
        reasons=tuple(reasons),
        webster=_webster(whole, template, semantic),
        score=deciding.value if deciding else None,
        margin=deciding.margin if deciding else None,
    )


# ---------------------------------------------------------------- signals


def _latest_by_metric(scores: Iterable[Score]) -> dict[str, Score]:
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
    """Largest near-duplicate clique against the share (and count) tau_mem asks for."""
    if score is None or _available(score, score.metric, reasons) is None:
        return None
    values = score.values
    seeds = int(values["n_seeds"])
    clique = int(values.get("clique_size", round(float(values["clique_share"]) * seeds)))
    required = thresholds.required_clique(seeds)
    # clique >= required exactly when clique/seeds >= required/seeds: the check fires by count.
    check = Check(score.metric, clique / seeds, required / seeds)
    text = (
        f"{score.metric}: {clique}/{seeds} seeds near-identical "
        f"(clique share {check.value:.2f} {check.relation} {check.threshold:.2f})"
    )
    reasons.append(Reason(score.metric, text, check.value, check.threshold, check.fired))
    expected = thresholds.pair_threshold(score.metric)
    scored_at = values.get("threshold")
    if expected is not None and scored_at is not None and abs(float(scored_at) - expected) > 1e-9:
        reasons.append(
            Reason(
                score.metric,
                f"{score.metric}: scored with pair threshold {float(scored_at):g}, this set "
                f"expects {expected:g}; rescore to apply it",
                float(scored_at),
                expected,
                fired=False,
            )
        )
    return check


def _region_checks(score: Score, thresholds: Thresholds) -> tuple[Check, Check, tuple[int, ...]]:
    """Extent of consistent tiles against tau_global, and the largest region against tau_region."""
    values = score.values
    grid = int(values.get("region_grid") or len(score.heatmap or []) or 8)
    tiles = tuple(int(tile) for tile in values.get("region_tiles") or ())
    extent = Check(REGION_METRIC, float(values.get("extent", 0.0)), thresholds.tau_global)
    region = Check(REGION_METRIC, len(tiles) / (grid * grid), thresholds.tau_region)
    return extent, region, tiles


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


def _webster(whole: bool, template: bool, semantic: bool) -> Webster | None:
    """Webster's types describe verbatim copies; semantic-only memorization has none."""
    if whole:
        return Webster.MATCHING_VERBATIM
    if template:
        return Webster.TEMPLATE_VERBATIM
    return None if semantic else Webster.NONE


# ---------------------------------------------------------------- attribution


def _quoted(text: str) -> str:
    return f"'{text}'"


def _describe_mention(mention: EntityMention) -> str:
    kind = mention.type or "type unknown"
    how = {"lexicon": "lexicon", "quoted": "quoted title", "capitalised": "capitalised"}
    same = mention.entry is None or mention.entry.name == mention.text
    text = _quoted(mention.text) if same else f"{_quoted(mention.text)} = {mention.label}"
    return f"{text} ({kind}, {how.get(mention.source, mention.source)})"


def _describe_cue(cue: Cue) -> str:
    kind = f"a {cue.type}" if cue.type else "one thing"
    entry = f" ({cue.entry.name})" if cue.entry else ""
    return f"{kind}: {_quoted(cue.text)}{entry}"


def _by_entry(
    attribution: Attribution, entry: Entity, similarity: float, thresholds: Thresholds, what: str
) -> _Attributed:
    """Attribute a crop that CLIP matched to a lexicon entry, by how the prompt refers to it."""
    match = f"CLIP matches the {what} to {entry.name} ({similarity:.2f} ≥ {thresholds.tau_text_image:.2f})"
    reference = attribution.mentions_entry(entry)
    if reference == "named":
        return _Attributed(Category.EXPLICIT, entry.name, f"prompt names {entry.name}; {match}")
    if reference == "implied":
        return _Attributed(
            Category.IMPLICIT, entry.name, f"prompt implies {entry.name} without naming it; {match}"
        )
    return _Attributed(
        Category.UNINTENDED, entry.name, f"prompt neither names nor implies {entry.name}; {match}"
    )


def _whole_image_features(
    attribution: Attribution, thresholds: Thresholds, reasons: list[Reason]
) -> list[Feature]:
    """Rule 2: a copy is asked for only when the prompt names or singles out an image (a work)."""
    best = (
        attribution.clip.best_entry(thresholds.tau_text_image)
        if attribution.clip.available
        else None
    )
    if best is not None and best[0].type in IMAGE_TYPES:
        attributed = _by_entry(attribution, best[0], best[1], thresholds, "copy")
        name = f"copy of {attributed.name}" if attributed.category.memorized else attributed.name
        reasons.append(Reason("prompt", attributed.reason))
        if attributed.category is not Category.UNINTENDED:
            return [Feature(attributed.category, name)]
        return [Feature(Category.UNINTENDED, f"verbatim copy resembling {best[0].name}")]
    named_works = attribution.named(*IMAGE_TYPES)
    # A description that singles out a thing of no known type ("the most famous record
    # sleeve ...") most likely singles out the image that recurs; a person or place does not.
    implied_works = attribution.implied(*IMAGE_TYPES, None)
    if named_works:
        mention = named_works[0]
        reasons.append(Reason("prompt", f"prompt names the work {_describe_mention(mention)}"))
        return [Feature(Category.EXPLICIT, f"copy of {mention.label}")]
    if implied_works:
        cue = implied_works[0]
        reasons.append(
            Reason("prompt", f"prompt singles out {_describe_cue(cue)} without naming it")
        )
        label = cue.entry.name if cue.entry else cue.text
        return [Feature(Category.IMPLICIT, f"copy of {label}")]
    reasons.append(Reason("prompt", _no_work_words(attribution)))
    features = [Feature(Category.UNINTENDED, "verbatim copy of one image")]
    # The person the prompt asks for is expected; the same photo of them is not (docs/design.md, "The taxonomy").
    named_people, implied_people = attribution.named("person"), attribution.implied("person")
    if named_people:
        features.append(Feature(Category.EXPLICIT, f"likeness of {named_people[0].label}"))
    elif implied_people:
        cue = implied_people[0]
        label = cue.entry.name if cue.entry else cue.text
        features.append(Feature(Category.IMPLICIT, f"likeness of {label}"))
    return features


def _no_work_words(attribution: Attribution) -> str:
    others = [_describe_mention(m) for m in attribution.entities]
    if others:
        return (
            "prompt names no work or brand (only " + ", ".join(others) + "): the copy is "
            "unintended; list a name in entities.txt as a work if it is one"
        )
    return "prompt names and implies no specific work: the copy is unintended"


def _region_attribution(attribution: Attribution, thresholds: Thresholds) -> _Attributed:
    """Rule 3: the fixed region is asked for only when the prompt names or implies it."""
    clip = attribution.clip
    if clip.available:
        best = clip.best_entry(thresholds.tau_text_image)
        if best is not None:
            attributed = _by_entry(attribution, best[0], best[1], thresholds, "region")
            return _Attributed(
                attributed.category, f"fixed region: {attributed.name}", attributed.reason
            )
        similarity = clip.prompt_similarity if clip.prompt_similarity is not None else -1.0
        prompt_match = Check("clip", similarity, thresholds.tau_text_image)
        words = f"prompt-to-region similarity {similarity:.2f} {prompt_match.relation} {prompt_match.threshold:.2f}"
        if prompt_match.fired and attribution.entities:
            mention = attribution.entities[0]
            return _Attributed(
                Category.EXPLICIT,
                f"fixed region: {mention.label}",
                f"prompt names {_describe_mention(mention)} and the region shows it ({words})",
            )
        if prompt_match.fired and attribution.cues:
            cue = attribution.cues[0]
            return _Attributed(
                Category.IMPLICIT,
                "fixed region: what the prompt describes",
                f"prompt singles out {_describe_cue(cue)} and the region shows it ({words})",
            )
        return _Attributed(
            Category.UNINTENDED,
            "fixed region not asked for (watermark, background or product?)",
            f"the prompt does not name or imply the fixed region ({words})",
        )
    named = attribution.named(*TYPED)
    implied = attribution.implied(*TYPED)
    if named:
        mention = named[0]
        return _Attributed(
            Category.EXPLICIT,
            f"fixed region: {mention.label}",
            f"prompt names {_describe_mention(mention)}; taken as the fixed region from the "
            "words alone (CLIP cannot check the crop)",
        )
    if implied:
        cue = implied[0]
        return _Attributed(
            Category.IMPLICIT,
            "fixed region: what the prompt describes",
            f"prompt singles out {_describe_cue(cue)}; taken as the fixed region from the "
            "words alone (CLIP cannot check the crop)",
        )
    return _Attributed(
        Category.UNINTENDED,
        "fixed region not asked for (watermark, background or product?)",
        "prompt names and implies nothing the fixed region could be: a template nobody asked for",
    )


def _semantic_attribution(attribution: Attribution, thresholds: Thresholds) -> _Attributed:
    """Rule 4: sameness of identity or concept is asked for when the prompt names or implies it."""
    clip = attribution.clip
    best = clip.best_entry(thresholds.tau_text_image) if clip.available else None
    if best is not None:
        attributed = _by_entry(attribution, best[0], best[1], thresholds, "seeds")
        return _Attributed(
            attributed.category, f"same {best[0].type}: {attributed.name}", attributed.reason
        )
    if attribution.entities:
        mention = attribution.entities[0]
        return _Attributed(
            Category.EXPLICIT,
            f"same {mention.type or 'subject'}: {mention.label}",
            f"prompt names {_describe_mention(mention)}",
        )
    if attribution.cues:
        cue = attribution.cues[0]
        label = cue.entry.name if cue.entry else cue.text
        return _Attributed(
            Category.IMPLICIT,
            f"same {cue.type or 'subject'}: {label}",
            f"prompt singles out {_describe_cue(cue)} without naming it",
        )
    return _Attributed(
        Category.UNINTENDED,
        "same identity or concept in every seed",
        "prompt names and implies nothing specific, yet every seed shows the same subject",
    )


def _attribution_notes(attribution: Attribution, clip_reported: bool) -> list[Reason]:
    """What limited the attribution, so the annotator knows how far to trust it."""
    notes = []
    if not attribution.clip.available:
        # When the clip signal already said why it is missing, do not say it twice.
        why = "CLIP unavailable" if clip_reported else attribution.clip.note
        notes.append(
            Reason(
                SEMANTIC_METRIC,
                f"prompt attributed from its words alone; CLIP crop checks not applied ({why})",
                fired=False,
            )
        )
    if attribution.title_case:
        notes.append(
            Reason(
                "prompt",
                "prompt is in title case or capitals: capitalised words were not read as names",
                fired=False,
            )
        )
    return notes
