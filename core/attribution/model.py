"""What attribution finds: named mentions, implication cues, CLIP evidence, and the result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from memgrid.core.records import Entity


@dataclass(frozen=True)
class EntityMention:
    """A span of the prompt that names something; offsets index the prompt string.

    `source` says how it was found: lexicon (an entry's name or capitalised alias),
    quoted (a quoted title) or capitalised (a capitalised span not at a sentence start).
    `type` is person, work, brand or place, or None when nothing tells.
    """

    text: str
    start: int
    end: int
    source: str
    type: str | None = None
    entry: Entity | None = None

    @property
    def label(self) -> str:
        return self.entry.name if self.entry else self.text


@dataclass(frozen=True)
class Cue:
    """A description that singles one thing out without naming it (an implication cue)."""

    text: str
    start: int
    end: int
    pattern: str  # famous | logo-of | who | agent | superlative | habitual | alias | paraphrase
    type: str | None = None
    entry: Entity | None = None


@dataclass(frozen=True)
class ClipEvidence:
    """CLIP similarities of the recurring crop to the prompt and to each lexicon entry."""

    available: bool
    note: str = ""
    prompt_similarity: float | None = None
    entry_similarities: tuple[tuple[Entity, float], ...] = ()

    @classmethod
    def unavailable(cls, why: str) -> ClipEvidence:
        return cls(available=False, note=why)

    def best_entry(self, threshold: float) -> tuple[Entity, float] | None:
        """The lexicon entry the crop resembles most, if it clears the threshold."""
        above = [pair for pair in self.entry_similarities if pair[1] >= threshold]
        return max(above, key=lambda pair: pair[1]) if above else None


NO_CLIP = ClipEvidence.unavailable("no CLIP weights")
Spanned = TypeVar("Spanned", EntityMention, Cue)


@dataclass(frozen=True)
class Attribution:
    """Everything the prompt says or implies about what might recur, with char offsets."""

    prompt: str
    entities: tuple[EntityMention, ...] = ()
    cues: tuple[Cue, ...] = ()
    clip: ClipEvidence = NO_CLIP
    title_case: bool = False  # capitalisation carried no signal and was ignored

    def named(self, *types: str | None) -> list[EntityMention]:
        """Mentions of the given types (all mentions when no type is given)."""
        return [m for m in self.entities if not types or m.type in types]

    def implied(self, *types: str | None) -> list[Cue]:
        """Cues of the given types (all cues when no type is given)."""
        return [c for c in self.cues if not types or c.type in types]

    @property
    def names_work(self) -> bool:
        return bool(self.named("work", "brand"))

    @property
    def implies_work(self) -> bool:
        return bool(self.implied("work", "brand"))

    @property
    def names_person(self) -> bool:
        return bool(self.named("person"))

    @property
    def names_brand(self) -> bool:
        return bool(self.named("brand"))

    @property
    def names_specific(self) -> bool:
        """True when the prompt names anything specific, typed or not."""
        return bool(self.entities)

    @property
    def implies_specific(self) -> bool:
        return bool(self.cues)

    def highlights(self) -> list[tuple[int, int, str]]:
        """(start, end, 'named' | 'implied') spans in prompt order, for the app to colour."""
        spans = [(m.start, m.end, "named") for m in self.entities]
        spans += [(c.start, c.end, "implied") for c in self.cues]
        return sorted(spans)

    def mentions_entry(self, entry: Entity) -> str | None:
        """'named' or 'implied' when the prompt refers to this lexicon entry, else None."""
        if any(m.entry == entry for m in self.entities):
            return "named"
        if any(c.entry == entry for c in self.cues):
            return "implied"
        return None


def longest_first(items: list[Spanned]) -> list[Spanned]:
    return sorted(items, key=lambda item: (item.start - item.end, item.start))


def overlaps(item: EntityMention | Cue, taken: list[tuple[int, int]]) -> bool:
    return any(item.start < end and start < item.end for start, end in taken)


def without_overlaps(items: list[Spanned]) -> list[Spanned]:
    """Keep items in priority order (list order), dropping any that overlap one kept earlier."""
    kept: list[Spanned] = []
    taken: list[tuple[int, int]] = []
    for item in items:
        if not overlaps(item, taken):
            kept.append(item)
            taken.append((item.start, item.end))
    return kept
