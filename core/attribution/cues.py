"""Implication cues: definite descriptions that single one thing out without naming it."""

from __future__ import annotations

import re

from memgrid.core.attribution.model import Cue
from memgrid.core.attribution.words import AGENT_VERBS, FAMOUS_WORDS, SUPERLATIVES, noun_type

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
        # "This character is often depicted ...", "the plumber is usually seen ...": a
        # description of how something is habitually shown singles out a known one (the
        # lure prompts of Wang et al., "Evaluating and Mitigating IP Infringement").
        (
            "habitual",
            r"\b(?:this|the)\s+(?P<noun>[\w\-]+)\s+(?:is|are)\s+(?:(?:often|usually|typically|"
            r"commonly|famously|always)\s+(?:seen|shown|drawn)|(?:(?:often|usually|typically|"
            r"commonly|famously|always)\s+)?(?:depicted|portrayed|pictured))\b",
        ),
        # "the first man on the moon", "the tallest building in the world"
        ("superlative", rf"\bthe\s+(?:{SUPERLATIVES})\s+(?P<noun>[\w\-]+)\b"),
    )
)
# What an agent verb says was made when its noun does not: a painting is a work.
_AGENT_TYPES: dict[str, str | None] = {"built": "place", "designed": None}


def description_cues(prompt: str) -> list[Cue]:
    """Definite descriptions that single one thing out (Russell: 'the' + a unique description)."""
    cues = []
    for name, pattern in _CUE_PATTERNS:
        for match in pattern.finditer(prompt):
            end = match.end()
            kind = noun_type(match.group("noun"))
            if name == "famous":
                end = _famous_end(prompt, match)
            elif name == "agent" and kind not in ("work", "brand"):
                kind = _AGENT_TYPES.get(match.group("verb").lower(), "work")
            elif name == "logo-of":
                kind = "brand"
            elif name == "habitual":
                kind = kind or "person"  # a figure habitually depicted: a character
            cues.append(Cue(prompt[match.start() : end], match.start(), end, name, kind))
    return cues


def _famous_end(prompt: str, match: re.Match[str]) -> int:
    """'the famous X': end the cue at its first typed noun, else after the first word."""
    start = match.start("noun")
    words = list(re.finditer(r"[\w\-]+", match.group("noun")))
    for word in words:
        if noun_type(word.group(0)):
            return start + word.end()
    return start + words[0].end()
