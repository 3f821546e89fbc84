"""Prompt attribution: what in a prompt could explain the content that recurs across seeds.

Three kinds of evidence (docs/design.md, "Signals"): named entities (capitalised spans that do not
start a sentence, quoted titles, entries of the user's lexicon), implication cues (definite
descriptions that single one thing out: "the famous painting of ...", "the logo of ...",
"the president who ...", "the smiling woman painted by ..."; lexicon aliases written as
descriptions), and, with CLIP weights, how well the recurring region matches the prompt and
each lexicon entry. The categorizer turns "named" into explicit and "implied" into implicit.

The lexicon file (`entities.txt`), one entry a line, fields separated by `|`:

    # name | type | aliases separated by ';'
    Mona Lisa | work | La Gioconda; the smiling woman painted by da Vinci
    Nike | brand | the swoosh
    Barack Obama | person
    Eiffel Tower | place | the iron lady of Paris

`type` is one of person, work, brand, place; aliases are optional. An alias written with a
capital first letter is another name (the prompt *names* the entry when it says it); an
alias written in lower case is a description (the prompt *implies* the entry). Names and
aliases match case-insensitively on word boundaries. Blank lines and `#` comments are
ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
from memgrid.core.errors import InputError
from memgrid.core.records import Entity
from memgrid.core.text_files import read_text

ENTITY_TYPES = ("person", "work", "brand", "place")


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Nouns that type a span or a description. Kept small and literal: a wrong type is worse
# than no type, since an unknown type only ever leads to the more cautious category.
WORK_NOUNS = _wordset(
    "painting paintings portrait artwork sculpture statue photo photograph picture poster "
    "cover album book novel film movie poem song fresco mural print illustration "
    "podcast show series magazine comic meme still scene"
)
BRAND_NOUNS = _wordset("logo logos emblem trademark brand mascot wordmark")
PERSON_NOUNS = _wordset(
    "president actor actress singer queen king prince princess pope emperor empress "
    "musician rapper athlete footballer player politician artist painter author writer "
    "scientist inventor leader chancellor minister senator celebrity star man woman boy "
    "girl person lady gentleman"
)
PLACE_NOUNS = _wordset(
    "tower bridge building landmark monument palace castle cathedral church temple mosque "
    "skyscraper statue mountain river lake city square street park stadium museum"
)
# Capitalised words that type the span they sit in ("Golden Gate Bridge", "Joe Rogan Podcast").
PLACE_NAME_WORDS = _wordset(
    "Tower Bridge Palace Castle Cathedral Church Temple Mosque Mountain Mount River Lake "
    "Square Street Park Stadium Museum Island Falls Canyon Gate"
)
WORK_NAME_WORDS = _wordset(
    "Podcast Show Album Book Magazine Series Edition Poster Painting Movie Film Novel "
    "Guide Volume Vol Episode Season"
)
PERSON_TITLES = _wordset(
    "President Mr Mrs Ms Dr Queen King Prince Princess Pope Saint St Sir Lady Lord "
    "Senator Chancellor General"
)
# Lower-case particles allowed inside a name ("Statue of Liberty", "Leonardo da Vinci").
NAME_PARTICLES = _wordset("of the da de di del della du van von der den la le")
# Capitalised words that are sentence furniture, never a name on their own.
FUNCTION_WORDS = _wordset(
    "a an the this that these those in on at of for to with and or but by from as is are "
    "it its my your our their his her i"
)
# Capitalised adjectives of origin or period that describe rather than name ("a Dutch painting").
DESCRIPTIVE_PROPER = _wordset(
    "American African Arabic Asian Australian British Canadian Chinese Danish Dutch "
    "English European French German Greek Indian Irish Italian Japanese Korean Latin "
    "Mexican Norwegian Persian Polish Portuguese Roman Russian Scottish Spanish Swedish "
    "Swiss Thai Turkish Welsh Victorian Baroque Gothic Renaissance Impressionist "
    "Christmas Halloween Easter"
)
DETERMINERS = _wordset("a an the his her their its my your our some this that these those")
# Words that open image prompts ("Portrait of ...", "Oil painting of ..."), not names.
STYLE_WORDS = _wordset(
    "portrait photo photograph picture painting drawing illustration image close closeup "
    "digital oil watercolor sketch render poster beautiful cinematic professional detailed"
)
# Nouns that say what is shown rather than which work it is ("portrait Obama").
DEPICTION_NOUNS = _wordset("portrait photo photograph picture")
FAMOUS_WORDS = (
    r"famous|iconic|well[- ]known|world[- ]famous|renowned|legendary|celebrated|infamous|"
    r"original|official|viral"
)
AGENT_VERBS = (
    r"painted|drawn|sculpted|photographed|illustrated|designed|directed|written|composed|"
    r"sung|performed|created|built"
)
SUPERLATIVES = r"first|last|only|tallest|largest|biggest|oldest|most\s+\w+"


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
    pattern: str  # famous | logo-of | who | agent | superlative | alias | paraphrase
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


def attribute(
    prompt: str, lexicon: Sequence[Entity] = (), clip: ClipEvidence = NO_CLIP
) -> Attribution:
    """Find the named entities and implication cues of a prompt."""
    lexicon_mentions, alias_cues = _lexicon_matches(prompt, lexicon)
    title_case = _is_title_case(prompt)
    capitalised = [] if title_case else _capitalised_spans(prompt)
    # Priority on overlaps: the lexicon knows types (its names, then its descriptions), a
    # quote marks a title, capitalisation is the weakest hint, generic cues come last.
    lexicon_names = _without_overlaps(_longest_first(lexicon_mentions))
    taken = [(m.start, m.end) for m in lexicon_names]
    lexicon_cues = _without_overlaps(
        [c for c in _longest_first(alias_cues) if not _overlaps(c, taken)]
    )
    taken += [(c.start, c.end) for c in lexicon_cues]
    quoted = [m for m in _quoted_titles(prompt) if not _overlaps(m, taken)]
    taken += [(m.start, m.end) for m in quoted]
    descriptions = [c for c in _longest_first(_description_cues(prompt)) if not _overlaps(c, taken)]
    names, descriptions = _name_heads(
        prompt, [m for m in capitalised if not _overlaps(m, taken)], descriptions
    )
    entities = [*lexicon_names, *_without_overlaps(quoted), *_without_overlaps(names)]
    cues = [*lexicon_cues, *_without_overlaps(descriptions)]
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
            if _overlaps(cue, [(name.start, name.end)])
            and not _typed_noun_outside(prompt, cue, name)
        ]
        dropped.update(heads)
        kind = name.type or next((cues[i].type for i in heads if cues[i].type), None)
        settled.append(replace(name, type=kind))
    return settled, [cue for index, cue in enumerate(cues) if index not in dropped]


def _typed_noun_outside(prompt: str, cue: Cue, name: EntityMention) -> bool:
    outside = prompt[cue.start : name.start] + " " + prompt[name.end : cue.end]
    return any(_noun_type(word) for word in outside.split())


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


def _lexicon_matches(
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
        for word, _, _ in _words(alias)
        if word.lower() not in FUNCTION_WORDS | NAME_PARTICLES
    }
    if len(wanted) < 2:
        return None  # one word is a keyword, not a description
    hits = [
        (start, end, _stem(word)) for word, start, end in _words(prompt) if _stem(word) in wanted
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


_QUOTED = re.compile(
    r"\"(?P<straight>[^\"\n]+)\""
    r"|“(?P<curly>[^”\n]+)”"
    r"|‘(?P<single_curly>[^’\n]+)’"
    r"|«\s*(?P<guillemets>[^»\n]+?)\s*»"
    # Straight single quotes only as a pair around words, so apostrophes (Van Gogh's) are skipped.
    r"|(?<![\w'])'(?P<single>[^'\n\s][^'\n]*?[^'\n\s]|[^'\n\s])'(?![\w'])"
)


def _quoted_titles(prompt: str) -> list[EntityMention]:
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


_WORD = re.compile(r"[^\W_][\w'’\-&.]*[\w]|[^\W_]", re.UNICODE)
_SENTENCE_END = re.compile(r"[.!?]['\"”’)\]]*\s*$")


def _words(prompt: str) -> list[tuple[str, int, int]]:
    return [(m.group(0), m.start(), m.end()) for m in _WORD.finditer(prompt)]


def _starts_sentence(prompt: str, start: int) -> bool:
    """True at the prompt's start or after ., ! or ? (quotes and brackets in between)."""
    before = prompt[:start]
    if not before.strip(" \t\"'“‘([«"):
        return True
    return bool(_SENTENCE_END.search(before)) or before.rstrip(" \t").endswith("\n")


def _is_capitalised(word: str) -> bool:
    return word[0].isupper()


def _is_title_case(prompt: str) -> bool:
    """Prompts in Title Case or CAPITALS carry no capitalisation signal (common in LAION)."""
    words = [w for w, _, _ in _words(prompt) if w[0].isalpha()]
    if len(words) < 4:
        return False
    return sum(_is_capitalised(w) for w in words) / len(words) >= 0.8


def _capitalised_spans(prompt: str) -> list[EntityMention]:
    """Runs of capitalised words (name particles and numbers inside) that name something.

    A run that starts a sentence is kept only when it still holds two capitalised words
    ("Barack Obama at a rally") or when leading furniture was stripped from it ("The Starry
    Night", "Portrait of Frida Kahlo"): one capitalised word at a sentence start is grammar.
    """
    mentions = []
    for run in _capitalised_runs(prompt):
        initial = _starts_sentence(prompt, run[0][1])
        kept = list(run)
        while kept and _is_furniture(kept[0][0]):
            kept.pop(0)
        while kept and kept[-1][0] in NAME_PARTICLES:
            kept.pop()
        if len(kept) == 1 and kept[0][0] in DESCRIPTIVE_PROPER:
            continue
        capitalised = [word for word, _, _ in kept if _is_capitalised(word)]
        if not capitalised or (initial and len(kept) == len(run) and len(capitalised) < 2):
            continue
        start, end = kept[0][1], kept[-1][2]
        text = prompt[start:end]
        for possessive in ("'s", "’s"):
            if text.endswith(possessive):
                text, end = text[: -len(possessive)], end - len(possessive)
        mentions.append(EntityMention(text, start, end, "capitalised", _span_type(prompt, kept)))
    return mentions


def _is_furniture(word: str) -> bool:
    """A run's leading word that is grammar or style ("The", "Portrait", "of"), not a name."""
    return word.lower() in FUNCTION_WORDS | STYLE_WORDS or word in NAME_PARTICLES


def _capitalised_runs(prompt: str) -> list[list[tuple[str, int, int]]]:
    """Maximal runs of capitalised words, joined only by spaces, particles and numbers."""
    words = _words(prompt)
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
        opens_sentence = bool(run) and _starts_sentence(prompt, start)
        if joins or (_is_capitalised(word) and not opens_sentence):
            run.append((word, start, end))
        else:
            if run:
                runs.append(run)
            run = [(word, start, end)] if _is_capitalised(word) else []
    if run:
        runs.append(run)
    return runs


def _next_is_capitalised(words: list[tuple[str, int, int]], index: int) -> bool:
    for word, _, _ in words[index + 1 :]:
        if word.lower() in NAME_PARTICLES:
            continue
        return _is_capitalised(word)
    return False


def _span_type(prompt: str, span: list[tuple[str, int, int]]) -> str | None:
    """Type a capitalised span from its own words and the nouns right around it."""
    names = [word for word, _, _ in span]
    following = _words(prompt[span[-1][2] :])[:3]
    preceding = [w.lower() for w, _, _ in _words(prompt[: span[0][1]])[-4:]]
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
    if next_word == "by" and len(following) >= 2 and _is_capitalised(following[1][0]):
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


def _noun_type(words: str) -> str | None:
    """The type the first typed noun of a description gives it."""
    for word in re.findall(r"[a-z]+", words.lower()):
        if word in BRAND_NOUNS:
            return "brand"
        if word in WORK_NOUNS:
            return "work"
        if word in PERSON_NOUNS:
            return "person"
        if word in PLACE_NOUNS:
            return "place"
    return None


_CUE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        # "the famous painting of a smiling woman", "the iconic Dutch painting"
        (
            "famous",
            rf"\bthe\s+(?:most\s+)?(?:{FAMOUS_WORDS})\s+(?P<noun>[\w\-]+(?:\s+[\w\-]+){{0,2}})",
        ),
        # "the logo of a coffee company", "the emblem of ..."
        ("logo-of", r"\bthe\s+(?P<noun>logo|emblem|trademark|mascot)\s+of\b"),
        # "the smiling woman painted by da Vinci", "the song sung by ..."
        ("agent", rf"\bthe\s+(?P<noun>(?:[\w\-]+\s+){{0,4}}?)(?P<verb>{AGENT_VERBS})\s+by\b"),
        # "the president who freed the slaves", "the man who walked on the moon"
        ("who", r"\bthe\s+(?P<noun>(?:[\w\-]+\s+){0,2}?[\w\-]+)\s+(?:who|whose)\b"),
        # "the first man on the moon", "the tallest building in the world"
        ("superlative", rf"\bthe\s+(?:{SUPERLATIVES})\s+(?P<noun>[\w\-]+)\b"),
    )
)
# What an agent verb says was made when its noun does not: a painting is a work.
_AGENT_TYPES: dict[str, str | None] = {"built": "place", "designed": None}


def _description_cues(prompt: str) -> list[Cue]:
    """Definite descriptions that single one thing out (Russell: 'the' + a unique description)."""
    cues = []
    for name, pattern in _CUE_PATTERNS:
        for match in pattern.finditer(prompt):
            end = match.end()
            kind = _noun_type(match.group("noun"))
            if name == "famous":
                end = _famous_end(prompt, match)
            elif name == "agent" and kind not in ("work", "brand"):
                kind = _AGENT_TYPES.get(match.group("verb").lower(), "work")
            elif name == "logo-of":
                kind = "brand"
            cues.append(Cue(prompt[match.start() : end], match.start(), end, name, kind))
    return cues


def _famous_end(prompt: str, match: re.Match[str]) -> int:
    """'the famous X': end the cue at its first typed noun, else after the first word."""
    start = match.start("noun")
    words = list(re.finditer(r"[\w\-]+", match.group("noun")))
    for word in words:
        if _noun_type(word.group(0)):
            return start + word.end()
    return start + words[0].end()


def _longest_first(items: list[Spanned]) -> list[Spanned]:
    return sorted(items, key=lambda item: (item.start - item.end, item.start))


def _overlaps(item: EntityMention | Cue, taken: list[tuple[int, int]]) -> bool:
    return any(item.start < end and start < item.end for start, end in taken)


def _without_overlaps(items: list[Spanned]) -> list[Spanned]:
    """Keep items in priority order (list order), dropping any that overlap one kept earlier."""
    kept: list[Spanned] = []
    taken: list[tuple[int, int]] = []
    for item in items:
        if not _overlaps(item, taken):
            kept.append(item)
            taken.append((item.start, item.end))
    return kept


# ---------------------------------------------------------------- CLIP evidence


class TextImageEncoder(Protocol):
    """What CLIP attribution needs: L2-normalised embeddings of images and of texts."""

    def embed(self, images: Sequence[Any]) -> np.ndarray: ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...


def clip_evidence(
    prompt: str,
    crops: Sequence[Any],
    lexicon: Iterable[Entity],
    encoder: TextImageEncoder,
) -> ClipEvidence:
    """Cosine of the recurring crop (mean over the given seeds' crops) to the prompt and entries.

    Each lexicon entry is described by its name and its aliases; its similarity is the best
    of them, so a crop of the Mona Lisa matches "the smiling woman painted by da Vinci" too.
    """
    entries = list(lexicon)
    if not crops:
        return ClipEvidence.unavailable("no crop to compare")
    image_embeddings = np.asarray(encoder.embed(list(crops)), dtype=np.float64)
    crop = _unit(image_embeddings.mean(axis=0))
    phrases = [prompt]
    owners: list[int] = []
    for index, entry in enumerate(entries):
        for phrase in (entry.name, *entry.aliases):
            phrases.append(phrase)
            owners.append(index)
    text_embeddings = np.asarray(encoder.embed_texts(phrases), dtype=np.float64)
    similarities = np.array([float(crop @ _unit(row)) for row in text_embeddings])
    best: dict[int, float] = {}
    for owner, similarity in zip(owners, similarities[1:], strict=True):
        best[owner] = max(best.get(owner, -1.0), float(similarity))
    return ClipEvidence(
        available=True,
        prompt_similarity=float(similarities[0]),
        entry_similarities=tuple((entries[index], best[index]) for index in sorted(best)),
    )


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector
