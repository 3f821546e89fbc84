"""The categorizer's category rules: which category a memorized feature gets from the prompt.

docs/design.md, "The categorizer": whole-image copies (rule 2), templates (rule 3) and
semantic sameness (rule 4) are explicit when the prompt names what recurs, implicit when
it singles it out without naming it, else unintended. CLIP, where available, says what
the recurring crop shows; without it the words decide, and the reasons say it is a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

from memgrid.core.attribution import Attribution, Cue, EntityMention
from memgrid.core.records import Entity, Reason
from memgrid.core.taxonomy import Category, Feature
from memgrid.core.thresholds import Thresholds

SEMANTIC_METRIC = "clip"
# Entity types whose *image* a pixel copy can be: a painting, poster, cover, logo.
IMAGE_TYPES = ("work", "brand")
TYPED = ("person", "work", "brand", "place")


@dataclass(frozen=True)
class Attributed:
    """A feature's category, its short name, and the reason the prompt gives for it."""

    category: Category
    name: str
    reason: str


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


def _quoted(text: str) -> str:
    return f"'{text}'"


def _describe_mention(mention: EntityMention) -> str:
    kind = mention.type or "type unknown"
    how = {
        "lexicon": "lexicon",
        "quoted": "quoted title",
        "capitalised": "capitalised",
        "rare": "rare words in title case",
        "title": "the prompt is its title",
        "by-line": "credited to its maker",
    }
    same = mention.entry is None or mention.entry.name == mention.text
    text = _quoted(mention.text) if same else f"{_quoted(mention.text)} = {mention.label}"
    return f"{text} ({kind}, {how.get(mention.source, mention.source)})"


def _describe_cue(cue: Cue) -> str:
    kind = f"a {cue.type}" if cue.type else "one thing"
    entry = f" ({cue.entry.name})" if cue.entry else ""
    return f"{kind}: {_quoted(cue.text)}{entry}"


def _by_entry(
    attribution: Attribution, entry: Entity, similarity: float, thresholds: Thresholds, what: str
) -> Attributed:
    """Attribute a crop that CLIP matched to a lexicon entry, by how the prompt refers to it."""
    match = f"CLIP matches the {what} to {entry.name} ({similarity:.2f} ≥ {thresholds.tau_text_image:.2f})"
    reference = attribution.mentions_entry(entry)
    if reference == "named":
        return Attributed(Category.EXPLICIT, entry.name, f"prompt names {entry.name}; {match}")
    if reference == "implied":
        return Attributed(
            Category.IMPLICIT, entry.name, f"prompt implies {entry.name} without naming it; {match}"
        )
    return Attributed(
        Category.UNINTENDED, entry.name, f"prompt neither names nor implies {entry.name}; {match}"
    )


def whole_image_features(
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


def region_attribution(attribution: Attribution, thresholds: Thresholds) -> Attributed:
    """Rule 3: the fixed region is asked for only when the prompt names or implies it."""
    clip = attribution.clip
    if clip.available:
        best = clip.best_entry(thresholds.tau_text_image)
        if best is not None:
            attributed = _by_entry(attribution, best[0], best[1], thresholds, "region")
            return Attributed(
                attributed.category, f"fixed region: {attributed.name}", attributed.reason
            )
        similarity = clip.prompt_similarity if clip.prompt_similarity is not None else -1.0
        prompt_match = Check("clip", similarity, thresholds.tau_text_image)
        words = f"prompt-to-region similarity {similarity:.2f} {prompt_match.relation} {prompt_match.threshold:.2f}"
        if prompt_match.fired and attribution.entities:
            mention = preferred(list(attribution.entities), "brand", "work")
            return Attributed(
                Category.EXPLICIT,
                f"fixed region: {mention.label}",
                f"prompt names {_describe_mention(mention)} and the region shows it ({words})",
            )
        if prompt_match.fired and attribution.cues:
            cue = attribution.cues[0]
            return Attributed(
                Category.IMPLICIT,
                "fixed region: what the prompt describes",
                f"prompt singles out {_describe_cue(cue)} and the region shows it ({words})",
            )
        return Attributed(
            Category.UNINTENDED,
            "fixed region not asked for (watermark, background or product?)",
            f"the prompt does not name or imply the fixed region ({words})",
        )
    named = attribution.named(*TYPED)
    implied = attribution.implied(*TYPED)
    if named:
        # A fixed region is most often a logo or a picture, rarely a person or a place.
        mention = preferred(named, "brand", "work")
        return Attributed(
            Category.EXPLICIT,
            f"fixed region: {mention.label}",
            f"prompt names {_describe_mention(mention)}; taken as the fixed region from the "
            "words alone (CLIP cannot check the crop)",
        )
    if implied:
        cue = implied[0]
        return Attributed(
            Category.IMPLICIT,
            "fixed region: what the prompt describes",
            f"prompt singles out {_describe_cue(cue)}; taken as the fixed region from the "
            "words alone (CLIP cannot check the crop)",
        )
    return Attributed(
        Category.UNINTENDED,
        "fixed region not asked for (watermark, background or product?)",
        "prompt names and implies nothing the fixed region could be: a template nobody asked for",
    )


def semantic_attribution(attribution: Attribution, thresholds: Thresholds) -> Attributed:
    """Rule 4: sameness of identity or concept is asked for when the prompt names or implies it."""
    clip = attribution.clip
    best = clip.best_entry(thresholds.tau_text_image) if clip.available else None
    if best is not None:
        attributed = _by_entry(attribution, best[0], best[1], thresholds, "seeds")
        return Attributed(
            attributed.category, f"same {best[0].type}: {attributed.name}", attributed.reason
        )
    if attribution.entities:
        # Sameness of identity while pixels vary is a person or character before a work.
        mention = preferred(list(attribution.entities), "person", None, "brand", "work")
        return Attributed(
            Category.EXPLICIT,
            f"same {mention.type or 'subject'}: {mention.label}",
            f"prompt names {_describe_mention(mention)}",
        )
    if attribution.cues:
        cue = attribution.cues[0]
        label = cue.entry.name if cue.entry else cue.text
        return Attributed(
            Category.IMPLICIT,
            f"same {cue.type or 'subject'}: {label}",
            f"prompt singles out {_describe_cue(cue)} without naming it",
        )
    return Attributed(
        Category.UNINTENDED,
        "same identity or concept in every seed",
        "prompt names and implies nothing specific, yet every seed shows the same subject",
    )


def attribution_notes(attribution: Attribution, clip_reported: bool) -> list[Reason]:
    """What limited the attribution, so the annotator knows how far to trust it."""
    notes = []
    if not attribution.clip.available:
        # When the clip signal already said why it is missing, do not say it twice.
        why = "CLIP unavailable" if clip_reported else attribution.clip.note
        notes.append(
            Reason(
                SEMANTIC_METRIC,
                f"prompt attributed from its words alone, a guess; CLIP crop checks not "
                f"applied ({why})",
                fired=False,
            )
        )
    if attribution.title_case:
        notes.append(
            Reason(
                "prompt",
                "prompt is in title case or capitals: names were read from word rarity "
                "(wordfreq), not capitals, a guess",
                fired=False,
            )
        )
    if not attribution.prompt.strip():
        notes.append(
            Reason(
                "prompt",
                "prompt unknown: nothing can name or imply what recurs, so the category is a "
                "guess (unintended unless an annotator knows the prompt)",
                fired=False,
            )
        )
    return notes


def preferred(mentions: list[EntityMention], *types: str | None) -> EntityMention:
    """The first mention of the most preferred type, else the first mention."""
    for kind in types:
        for mention in mentions:
            if mention.type == kind:
                return mention
    return mentions[0]
