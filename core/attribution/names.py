"""Names in a prompt: quoted titles and capitalised spans, typed from the nouns around them."""

from __future__ import annotations

import re

from memgrid.core.attribution.model import EntityMention
from memgrid.core.attribution.words import (
    BRAND_NOUNS,
    DEPICTION_NOUNS,
    DESCRIPTIVE_PROPER,
    DETERMINERS,
    FUNCTION_WORDS,
    NAME_PARTICLES,
    PERSON_NOUNS,
    PERSON_TITLES,
    PLACE_NAME_WORDS,
    PLACE_NOUNS,
    STYLE_WORDS,
    WORK_NAME_WORDS,
    WORK_NOUNS,
    is_capitalised,
    starts_sentence,
    words_of,
)

_QUOTED = re.compile(
    r"\"(?P<straight>[^\"\n]+)\""
    r"|“(?P<curly>[^”\n]+)”"
    r"|‘(?P<single_curly>[^’\n]+)’"
    r"|«\s*(?P<guillemets>[^»\n]+?)\s*»"
    # Straight single quotes only as a pair around words, so apostrophes (Van Gogh's) are skipped.
    r"|(?<![\w'])'(?P<single>[^'\n\s][^'\n]*?[^'\n\s]|[^'\n\s])'(?![\w'])"
)


def quoted_titles(prompt: str) -> list[EntityMention]:
    """Quoted spans are titles of works ("Starry Night", “The Scream”)."""
    mentions = []
    for match in _QUOTED.finditer(prompt):
        group = next(name for name, value in match.groupdict().items() if value is not None)
        start, end = match.span(group)
        text = prompt[start:end]
        stripped = text.strip()
        if not any(ch.isalnum() for ch in stripped):
            continue
        start += len(text) - len(text.lstrip())
        mentions.append(EntityMention(stripped, start, start + len(stripped), "quoted", "work"))
    return mentions


def capitalised_spans(prompt: str) -> list[EntityMention]:
    """Runs of capitalised words (name particles and numbers inside) that name something.

    A run that starts a sentence is kept only when it still holds two capitalised words
    ("Barack Obama at a rally") or when leading furniture was stripped from it ("The Starry
    Night", "Portrait of Frida Kahlo"): one capitalised word at a sentence start is grammar.
    """
    mentions = []
    for run in _capitalised_runs(prompt):
        initial = starts_sentence(prompt, run[0][1])
        kept = list(run)
        while kept and _is_furniture(kept[0][0]):
            kept.pop(0)
        while kept and kept[-1][0] in NAME_PARTICLES:
            kept.pop()
        if len(kept) == 1 and kept[0][0] in DESCRIPTIVE_PROPER:
            continue
        capitalised = [word for word, _, _ in kept if is_capitalised(word)]
        if not capitalised or (initial and len(kept) == len(run) and len(capitalised) < 2):
            continue
        start, end = kept[0][1], kept[-1][2]
        text = prompt[start:end]
        for possessive in ("'s", "’s"):
            if text.endswith(possessive):
                text, end = text[: -len(possessive)], end - len(possessive)
        mentions.append(EntityMention(text, start, end, "capitalised", span_type(prompt, kept)))
    return mentions


def _is_furniture(word: str) -> bool:
    """A run's leading word that is grammar or style ("The", "Portrait", "of"), not a name."""
    return word.lower() in FUNCTION_WORDS | STYLE_WORDS or word in NAME_PARTICLES


def _capitalised_runs(prompt: str) -> list[list[tuple[str, int, int]]]:
    """Maximal runs of capitalised words, joined only by spaces, particles and numbers."""
    words = words_of(prompt)
    runs: list[list[tuple[str, int, int]]] = []
    run: list[tuple[str, int, int]] = []
    for index, (word, start, end) in enumerate(words):
        if run and prompt[run[-1][2] : start].strip(" \t"):
            runs.append(run)  # punctuation between the words ends the run
            run = []
        joins = bool(run) and (
            word.isdigit()
            or (word.lower() in NAME_PARTICLES and _next_is_capitalised(words, index))
        )
        opens_sentence = bool(run) and starts_sentence(prompt, start)
        if joins or (is_capitalised(word) and not opens_sentence):
            run.append((word, start, end))
        else:
            if run:
                runs.append(run)
            run = [(word, start, end)] if is_capitalised(word) else []
    if run:
        runs.append(run)
    return runs


def _next_is_capitalised(words: list[tuple[str, int, int]], index: int) -> bool:
    for word, _, _ in words[index + 1 :]:
        if word.lower() in NAME_PARTICLES:
            continue
        return is_capitalised(word)
    return False


def span_type(prompt: str, span: list[tuple[str, int, int]]) -> str | None:
    """Type a capitalised span from its own words and the nouns right around it."""
    names = [word for word, _, _ in span]
    following = words_of(prompt[span[-1][2] :])[:3]
    preceding = [w.lower() for w, _, _ in words_of(prompt[: span[0][1]])[-4:]]
    previous = [word for word in preceding if word not in NAME_PARTICLES][-2:]
    next_word = following[0][0].lower() if following else ""
    if next_word in BRAND_NOUNS or names[-1].lower() in BRAND_NOUNS:
        return "brand"  # "Nike logo"
    # "Frida Kahlo painting a portrait": a noun followed by a determiner is a verb.
    noun_follows = next_word in WORK_NOUNS and (
        len(following) < 2 or following[1][0].lower() not in DETERMINERS
    )
    if noun_follows or any(word in WORK_NAME_WORDS for word in names):
        return "work"  # "Mona Lisa painting", "The Joe Rogan Podcast"
    if next_word == "by" and len(following) >= 2 and is_capitalised(following[1][0]):
        return "work"  # "The Starry Night by Vincent van Gogh"
    if names[0].rstrip(".") in PERSON_TITLES or (previous and previous[-1] == "by"):
        return "person"  # "President Lincoln", "painted by Vermeer"
    if previous and previous[-1] in PERSON_NOUNS:
        return "person"  # "the actor Tom Hanks"
    if previous and previous[-1] in WORK_NOUNS - DEPICTION_NOUNS:
        return "work"  # "the film Jaws"; but "portrait Obama" says who is shown
    if any(word in PLACE_NAME_WORDS for word in names) or next_word in PLACE_NOUNS:
        return "place"
    return None
