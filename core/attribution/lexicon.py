"""The user's lexicon (entities.txt): parsing, and finding its names and descriptions in a prompt."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from memgrid.core.attribution.model import Cue, EntityMention
from memgrid.core.attribution.words import ENTITY_TYPES, FUNCTION_WORDS, NAME_PARTICLES, words_of
from memgrid.core.display_text import has_control_characters
from memgrid.core.errors import InputError
from memgrid.core.records import Entity
from memgrid.core.text_files import read_text

# ---------------------------------------------------------------- lexicon file


def parse_lexicon(text: str, source: str | Path) -> list[Entity]:
    """Parse an `entities.txt` (format in the module docstring); malformed lines raise InputError."""
    entries: dict[str, Entity] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = [part.strip() for part in line.split("|")]
        location = f"line {number}"
        if len(fields) not in (2, 3):
            raise InputError(
                source, "expected 'name | type' or 'name | type | alias; alias'", location
            )
        name, kind = fields[0], fields[1].lower()
        if not name:
            raise InputError(source, "the name is empty", location)
        if has_control_characters(line):  # shown in every highlight legend and report
            raise InputError(source, f"{line!r} holds control characters", location)
        if kind not in ENTITY_TYPES:
            raise InputError(
                source, f"type {fields[1]!r} is not one of {', '.join(ENTITY_TYPES)}", location
            )
        aliases = (
            tuple(a.strip() for a in fields[2].split(";") if a.strip()) if len(fields) == 3 else ()
        )
        if name.lower() in entries:
            raise InputError(source, f"{name!r} is listed twice", location)
        entries[name.lower()] = Entity(name=name, type=kind, aliases=aliases)
    return list(entries.values())


def read_lexicon(path: Path) -> list[Entity]:
    return parse_lexicon(read_text(path), path)


# ---------------------------------------------------------------- finders


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    """A phrase matched case-insensitively, on word boundaries, with any run of spaces."""
    words = [re.escape(word) for word in phrase.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


def lexicon_matches(
    prompt: str, lexicon: Sequence[Entity]
) -> tuple[list[EntityMention], list[Cue]]:
    """Names and capitalised aliases name an entry; descriptive aliases imply it."""
    mentions: list[EntityMention] = []
    cues: list[Cue] = []
    for entry in lexicon:
        for phrase in (entry.name, *entry.aliases):
            if not phrase.strip():
                continue
            is_name = phrase == entry.name or phrase[0].isupper()
            matches = [
                (m.group(0), m.start(), m.end()) for m in _phrase_pattern(phrase).finditer(prompt)
            ]
            if is_name:
                mentions += [EntityMention(*span, "lexicon", entry.type, entry) for span in matches]
            elif matches:
                cues += [Cue(*span, "alias", entry.type, entry) for span in matches]
            elif (paraphrase := _paraphrase(prompt, phrase)) is not None:
                cues.append(
                    Cue(prompt[slice(*paraphrase)], *paraphrase, "paraphrase", entry.type, entry)
                )
    return mentions, cues


_STEM_SUFFIXES = ("ing", "ed", "es", "s", "e")
# A paraphrase may reorder and pad the alias's words, up to this many times its length.
PARAPHRASE_SPREAD = 1.5


def _stem(word: str) -> str:
    """A crude stem so 'smiling', 'smiles' and 'smile' compare equal."""
    word = word.lower().removesuffix("'s").removesuffix("’s")
    for suffix in _STEM_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _paraphrase(prompt: str, alias: str) -> tuple[int, int] | None:
    """The shortest span holding every content word of a descriptive alias (by stem), if short.

    "a smiling woman, painted by Leonardo da Vinci" paraphrases "the smiling woman painted
    by da Vinci": same content words, reordered or padded within a span not much longer.
    """
    wanted = {
        _stem(word)
        for word, _, _ in words_of(alias)
        if word.lower() not in FUNCTION_WORDS | NAME_PARTICLES
    }
    if len(wanted) < 2:
        return None  # one word is a keyword, not a description
    hits = [
        (start, end, _stem(word)) for word, start, end in words_of(prompt) if _stem(word) in wanted
    ]
    best: tuple[int, int] | None = None
    for index, (start, _, _) in enumerate(hits):
        seen: set[str] = set()
        for _, end, stem in hits[index:]:
            seen.add(stem)
            if seen == wanted:
                if best is None or end - start < best[1] - best[0]:
                    best = (start, end)
                break
    if best is None or best[1] - best[0] > PARAPHRASE_SPREAD * len(alias):
        return None
    return best
