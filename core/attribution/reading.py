"""`attribute`: every finder run over one prompt, overlaps settled by priority."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from memgrid.core.attribution.cues import description_cues
from memgrid.core.attribution.lexicon import lexicon_matches
from memgrid.core.attribution.model import (
    NO_CLIP,
    Attribution,
    ClipEvidence,
    Cue,
    EntityMention,
    longest_first,
    overlaps,
    without_overlaps,
)
from memgrid.core.attribution.names import capitalised_spans, quoted_titles
from memgrid.core.attribution.titles import by_line_works, rare_names, title_of_picture
from memgrid.core.attribution.words import is_title_case, noun_type
from memgrid.core.display_text import without_terminal_sequences
from memgrid.core.records import Entity


def attribute(
    prompt: str, lexicon: Sequence[Entity] = (), clip: ClipEvidence = NO_CLIP
) -> Attribution:
    """Find the named entities and implication cues of a prompt. An escape sequence's
    payload (an OSC window title) is not words of the prompt: it is read as spaces."""
    text = without_terminal_sequences(prompt)
    lexicon_mentions, alias_cues = lexicon_matches(text, lexicon)
    title_case = is_title_case(text)
    # Title Case carries no capitalisation signal: word rarity finds the names instead, and
    # a title-case prompt with an image noun is the title of that picture.
    capitalised = rare_names(text) if title_case else capitalised_spans(text)
    title = title_of_picture(text) if title_case else None
    # Priority on overlaps: the lexicon knows types (its names, then its descriptions), a
    # quote marks a title, capitalisation is the weakest hint, generic cues come last.
    lexicon_names = without_overlaps(longest_first(lexicon_mentions))
    taken = [(m.start, m.end) for m in lexicon_names]
    lexicon_cues = without_overlaps(
        [c for c in longest_first(alias_cues) if not overlaps(c, taken)]
    )
    taken += [(c.start, c.end) for c in lexicon_cues]
    titles = [*quoted_titles(text), *([title] if title else [])]
    quoted = [m for m in longest_first(titles) if not overlaps(m, taken)]
    taken += [(m.start, m.end) for m in quoted]
    descriptions = [c for c in longest_first(description_cues(text)) if not overlaps(c, taken)]
    names, descriptions = _name_heads(
        text, [m for m in capitalised if not overlaps(m, taken)], descriptions
    )
    people = [name for name in names if name.type == "person"]
    names = [*by_line_works(text, people), *names]  # a work credited to its maker wins
    entities = [*lexicon_names, *without_overlaps(quoted), *without_overlaps(longest_first(names))]
    cues = [*lexicon_cues, *without_overlaps(descriptions)]
    return Attribution(
        prompt=prompt,
        entities=tuple(sorted(entities, key=lambda m: m.start)),
        cues=tuple(sorted(cues, key=lambda c: c.start)),
        clip=clip,
        title_case=title_case,
    )


def _name_heads(
    prompt: str, names: list[EntityMention], cues: list[Cue]
) -> tuple[list[EntityMention], list[Cue]]:
    """Settle capitalised names that sit inside a description.

    When the name is the description's head ("the famous Mona Lisa painted by Leonardo"),
    the prompt names the thing: the name takes the description's type and the cue goes.
    When the description has its own typed noun ("the iconic Dutch painting"), the name is
    only a modifier and the cue stays.
    """
    dropped: set[int] = set()
    settled = []
    for name in names:
        heads = [
            index
            for index, cue in enumerate(cues)
            if overlaps(cue, [(name.start, name.end)])
            and not _typed_noun_outside(prompt, cue, name)
        ]
        dropped.update(heads)
        kind = name.type or next((cues[i].type for i in heads if cues[i].type), None)
        settled.append(replace(name, type=kind))
    return settled, [cue for index, cue in enumerate(cues) if index not in dropped]


def _typed_noun_outside(prompt: str, cue: Cue, name: EntityMention) -> bool:
    outside = prompt[cue.start : name.start] + " " + prompt[name.end : cue.end]
    return any(noun_type(word) for word in outside.split())
