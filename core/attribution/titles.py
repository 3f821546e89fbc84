"""Names in Title Case captions, prompts that are titles, and works named by their maker.

LAION captions are often headlines or titles ("Captain Marvel Exclusive Ccxp Poster Released
Online By Marvel"): every word is capitalised, so capitals cannot mark names. Word
frequencies can, without a model: name words are rare in ordinary English (wordfreq's Zipf
scale, log10 of uses per billion words: 'Lotz' 2.1, 'Snoopy' 2.8, 'Ccxp' 0) while title
words are common ('Released' 5.1, 'Exclusive' 4.6, 'Poster' 4.2). A name is a run around
a rare word, widened over neighbours that are names too ('Ann Graham Lotz': 'Ann' 4.4) but
not over furniture, typed nouns or common words.

A title-case prompt that holds an image noun (Poster, Cover, Painting, Print, ...) is itself
the title of that picture, and so names it. "Portrait of Tiger in black and white by Lukas
Holas" names a work too: an image noun credited to a named maker.
"""

from __future__ import annotations

import re
from functools import lru_cache

from memgrid.core.attribution.model import EntityMention
from memgrid.core.attribution.names import span_type
from memgrid.core.attribution.words import (
    DESCRIPTIVE_PROPER,
    FUNCTION_WORDS,
    STYLE_WORDS,
    is_capitalised,
    noun_type,
    words_of,
)

# A word rarer than this (Zipf; about 3 uses per million words) seeds a name.
RARE_ZIPF = 3.5
# A neighbour rarer than this (about 100 per million: first names, surnames) joins the name.
NAME_ZIPF = 5.0
# Nouns whose title is the title of one picture: a prompt that is such a title names it.
IMAGE_NOUNS = frozenset(
    [
        "painting",
        "portrait",
        "artwork",
        "poster",
        "cover",
        "print",
        "illustration",
        "photo",
        "photograph",
        "picture",
        "mural",
        "fresco",
        "wallpaper",
        "logo",
        "still",
        "drawing",
        "sketch",
    ]
)
# Words between an image noun and "by <maker>" ("Portrait of Tiger in black and white by").
BY_LINE_SPAN = 8
_MARKUP = re.compile(r"<[^<>\n]{1,20}>")
_CLAUSE_BREAK = re.compile(r"[,;:.!?()\[\]|]")


@lru_cache(maxsize=4096)
def zipf(word: str) -> float:
    """English Zipf frequency of a word; a missing wordfreq reads every word as common."""
    try:
        from wordfreq import zipf_frequency  # deferred: loads its word lists on first use
    except ImportError:
        return 8.0
    return float(zipf_frequency(word.lower(), "en"))


def without_markup(prompt: str) -> str:
    """HTML tags blanked out (same length, so offsets hold): captions keep <i>, <b>."""
    return _MARKUP.sub(lambda match: " " * len(match.group(0)), prompt)


def _is_name_word(word: str, limit: float) -> bool:
    lower = word.lower()
    if lower in FUNCTION_WORDS or lower in STYLE_WORDS or noun_type(lower):
        return False
    return word not in DESCRIPTIVE_PROPER and zipf(word) < limit


def rare_names(prompt: str) -> list[EntityMention]:
    """Names in a Title Case prompt: runs around a rare word (see the module docstring)."""
    text = without_markup(prompt)
    mentions = []
    for run in _runs(text):
        seeds = [
            i
            for i, (word, _, _) in enumerate(run)
            if not word.isdigit() and _is_name_word(word, RARE_ZIPF)
        ]
        covered = -1
        for seed in seeds:
            if seed <= covered:
                continue
            first = last = seed
            while first > 0 and _is_name_word(run[first - 1][0], NAME_ZIPF):
                first -= 1
            while last + 1 < len(run) and _is_name_word(run[last + 1][0], NAME_ZIPF):
                last += 1
            covered = last
            kept = run[first : last + 1]
            start, end = kept[0][1], kept[-1][2]
            mentions.append(
                EntityMention(prompt[start:end], start, end, "rare", span_type(text, kept))
            )
    return mentions


def _runs(text: str) -> list[list[tuple[str, int, int]]]:
    """Words in runs that punctuation breaks (a headline's clauses)."""
    runs: list[list[tuple[str, int, int]]] = [[]]
    previous_end = 0
    for word, start, end in words_of(text):
        if _CLAUSE_BREAK.search(text[previous_end:start]) and runs[-1]:
            runs.append([])
        runs[-1].append((word, start, end))
        previous_end = end
    return [run for run in runs if run]


def title_of_picture(prompt: str) -> EntityMention | None:
    """A title-case prompt with an image noun is that picture's title: the prompt names it."""
    text = without_markup(prompt)
    words = words_of(text)
    nouns = [w for w in words if w[0].lower() in IMAGE_NOUNS and is_capitalised(w[0])]
    if not nouns or not words:
        return None
    noun = nouns[0]
    first = words[0]
    if noun == first:  # "Portrait Of A Lady In Red": the title runs to the clause's end
        clause = next(run for run in _runs(text) if run[0][1] <= noun[1] <= run[-1][1])
        end = clause[-1][2]
    else:
        end = noun[2]
    kind = "brand" if noun[0].lower() == "logo" else "work"
    return EntityMention(prompt[first[1] : end], first[1], end, "title", kind)


def by_line_works(prompt: str, makers: list[EntityMention]) -> list[EntityMention]:
    """'<image noun> ... by <named maker>' in one clause names a work by that maker."""
    works = []
    for maker in makers:
        before = prompt[: maker.start]
        if not re.search(r"\bby\s+$", before, re.IGNORECASE):
            continue
        clause_start = max((m.end() for m in _CLAUSE_BREAK.finditer(before)), default=0)
        words = words_of(before[clause_start:])[-BY_LINE_SPAN - 1 :]
        noun = next((w for w in words if w[0].lower() in IMAGE_NOUNS), None)
        if noun is None:
            continue
        start = clause_start + noun[1]
        works.append(EntityMention(prompt[start : maker.end], start, maker.end, "by-line", "work"))
    return works
