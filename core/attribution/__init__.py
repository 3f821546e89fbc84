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

from memgrid.core.attribution.clip import TextImageEncoder, clip_evidence
from memgrid.core.attribution.lexicon import parse_lexicon, read_lexicon
from memgrid.core.attribution.model import (
    NO_CLIP,
    Attribution,
    ClipEvidence,
    Cue,
    EntityMention,
)
from memgrid.core.attribution.reading import attribute
from memgrid.core.attribution.words import ENTITY_TYPES

__all__ = [
    "ENTITY_TYPES",
    "NO_CLIP",
    "Attribution",
    "ClipEvidence",
    "Cue",
    "EntityMention",
    "TextImageEncoder",
    "attribute",
    "clip_evidence",
    "parse_lexicon",
    "read_lexicon",
]
