"""Word lists and word-level helpers shared by the attribution finders."""

from __future__ import annotations

import re

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
    "girl person lady gentleman character hero heroine superhero villain"
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


_WORD = re.compile(r"[^\W_][\w'’\-&.]*[\w]|[^\W_]", re.UNICODE)
_SENTENCE_END = re.compile(r"[.!?]['\"”’)\]]*\s*$")


def words_of(prompt: str) -> list[tuple[str, int, int]]:
    return [(m.group(0), m.start(), m.end()) for m in _WORD.finditer(prompt)]


def starts_sentence(prompt: str, start: int) -> bool:
    """True at the prompt's start or after ., ! or ? (quotes and brackets in between)."""
    before = prompt[:start]
    if not before.strip(" \t\"'“‘([«"):
        return True
    return bool(_SENTENCE_END.search(before)) or before.rstrip(" \t").endswith("\n")


def is_capitalised(word: str) -> bool:
    return word[0].isupper()


def is_title_case(prompt: str) -> bool:
    """Prompts in Title Case or CAPITALS carry no capitalisation signal (common in LAION)."""
    words = [w for w, _, _ in words_of(prompt) if w[0].isalpha()]
    if len(words) < 4:
        return False
    return sum(is_capitalised(w) for w in words) / len(words) >= 0.8


def noun_type(words: str) -> str | None:
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
