"""Prompt attribution: named entities with offsets, implication cues, the lexicon, CLIP evidence."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from memgrid.core.attribution import (
    Attribution,
    attribute,
    clip_evidence,
    parse_lexicon,
    read_lexicon,
)
from memgrid.core.errors import InputError
from memgrid.core.records import Entity

LEXICON_TEXT = """\
# name | type | aliases (capitalised: another name; lower case: a description)
Mona Lisa | work | La Gioconda; the smiling woman painted by da Vinci
Nike | brand | the swoosh
Barack Obama | person

Eiffel Tower | place   # trailing comments are fine
"""


@pytest.fixture
def lexicon() -> list[Entity]:
    return parse_lexicon(LEXICON_TEXT, "entities.txt")


def spans(attribution: Attribution) -> list[tuple[str, str, str | None]]:
    """(text, source, type) of every entity, after checking its offsets against the prompt."""
    for mention in attribution.entities:
        assert attribution.prompt[mention.start : mention.end] == mention.text
    return [(m.text, m.source, m.type) for m in attribution.entities]


class TestNamedEntities:
    def test_sentence_start_capitals_are_not_entities(self) -> None:
        result = attribute("Sunset over Paris. Dogs run in the Louvre! Cats sleep.")
        assert [m.text for m in result.entities] == ["Paris", "Louvre"]

    def test_highlights_list_named_and_implied_spans_in_order(self) -> None:
        prompt = "the famous painting hanging beside Big Ben"
        assert attribute(prompt).highlights() == [(0, 19, "implied"), (35, 42, "named")]

    def test_offsets_index_the_prompt(self) -> None:
        prompt = "a cat sitting in front of the Golden Gate Bridge at dusk"
        result = attribute(prompt)
        (mention,) = result.entities
        assert (mention.start, mention.end) == (30, 48)
        assert prompt[30:48] == "Golden Gate Bridge"
        assert mention.type == "place"

    def test_a_terminal_escape_payload_is_not_a_name(self) -> None:
        """A scraped caption's OSC title (`ESC ] 0 ; PWNED BEL`) is an instruction to the
        terminal, not words: it names nothing, and names around escapes keep their offsets."""
        assert attribute("a photo \x1b]0;PWNED\x07 of a cat").entities == ()
        result = attribute("a cat beside the \x1b[1mGolden Gate Bridge\x1b[0m at dusk")
        assert spans(result) == [("Golden Gate Bridge", "capitalised", "place")]

    def test_two_capitalised_words_at_a_sentence_start_still_name_someone(self) -> None:
        assert spans(attribute("Frida Kahlo painting a self portrait")) == [
            ("Frida Kahlo", "capitalised", None)
        ]

    def test_leading_furniture_is_stripped_and_particles_kept(self) -> None:
        result = attribute("The Starry Night by Vincent van Gogh")
        assert spans(result) == [
            ("Starry Night", "capitalised", "work"),
            ("Vincent van Gogh", "capitalised", "person"),
        ]
        assert result.names_work

    @pytest.mark.parametrize(
        ("prompt", "title"),
        [
            ('a poster of "Starry Night" on a wall', "Starry Night"),
            ("a cat holding “The Scream” in a museum", "The Scream"),
            ("Van Gogh's 'Sunflowers' in a vase", "Sunflowers"),
            ("a print of ‘ Water Lilies’ framed", "Water Lilies"),
        ],
    )
    def test_quoted_titles_straight_and_curly_are_works(self, prompt: str, title: str) -> None:
        result = attribute(prompt)
        quoted = [m for m in result.entities if m.source == "quoted"]
        assert [(m.text, m.type) for m in quoted] == [(title, "work")]
        assert prompt[quoted[0].start : quoted[0].end] == title
        assert result.names_work

    def test_apostrophes_are_not_quotes(self) -> None:
        result = attribute("it's my dog's bowl, isn't it")
        assert result.entities == ()

    def test_title_case_prompts_carry_no_capitalisation_signal(self) -> None:
        result = attribute("Beautiful Mountain Landscape At Sunset With A Lake")
        assert result.title_case
        assert result.entities == ()

    def test_generic_prompt_names_and_implies_nothing(self) -> None:
        result = attribute("a photo of a cat on a sofa, soft light")
        assert not result.names_specific and not result.implies_specific


class TestLexicon:
    def test_names_match_case_insensitively_on_word_boundaries(self, lexicon: list[Entity]) -> None:
        prompt = "a NIKE shoe next to barack  obama"
        result = attribute(prompt, lexicon)
        assert spans(result) == [
            ("NIKE", "lexicon", "brand"),
            ("barack  obama", "lexicon", "person"),
        ]
        assert result.entities[0].entry == lexicon[1]

    def test_names_do_not_match_inside_words(self, lexicon: list[Entity]) -> None:
        result = attribute("a nikeland store in the city", lexicon)
        assert result.entities == ()

    def test_lower_case_alias_is_an_implication_cue(self, lexicon: list[Entity]) -> None:
        prompt = "oil portrait of THE SMILING WOMAN painted by da Vinci, museum light"
        result = attribute(prompt, lexicon)
        (cue,) = result.cues
        assert (cue.pattern, cue.type, cue.entry) == ("alias", "work", lexicon[0])
        assert prompt[cue.start : cue.end] == "THE SMILING WOMAN painted by da Vinci"
        assert result.implies_work and not result.names_work
        assert result.mentions_entry(lexicon[0]) == "implied"

    def test_a_paraphrased_alias_implies_the_entry(self, lexicon: list[Entity]) -> None:
        prompt = "a woman smiling, painted by Leonardo da Vinci, soft light"
        result = attribute(prompt, lexicon)
        (cue,) = [c for c in result.cues if c.entry is not None]
        assert (cue.pattern, cue.entry, cue.type) == ("paraphrase", lexicon[0], "work")
        assert (
            prompt[cue.start : cue.end] == cue.text == "woman smiling, painted by Leonardo da Vinci"
        )

    @pytest.mark.parametrize(
        "prompt",
        [
            "a smiling woman painted on a wall",  # no 'Vinci': not the same description
            "a woman walks past a smiling clown on the street, a fresco painted long ago near Vinci",
        ],
    )
    def test_partial_or_scattered_words_are_no_paraphrase(
        self, lexicon: list[Entity], prompt: str
    ) -> None:
        assert all(c.entry is None for c in attribute(prompt, lexicon).cues)

    def test_capitalised_alias_is_another_name(self, lexicon: list[Entity]) -> None:
        result = attribute("a sketch of la gioconda", lexicon)
        assert spans(result) == [("la gioconda", "lexicon", "work")]
        assert result.mentions_entry(lexicon[0]) == "named"

    def test_lexicon_wins_over_capitalised_spans(self, lexicon: list[Entity]) -> None:
        result = attribute("the Eiffel Tower at night", lexicon)
        assert spans(result) == [("Eiffel Tower", "lexicon", "place")]

    def test_parser_reads_types_aliases_and_comments(self, lexicon: list[Entity]) -> None:
        assert lexicon == [
            Entity("Mona Lisa", "work", ("La Gioconda", "the smiling woman painted by da Vinci")),
            Entity("Nike", "brand", ("the swoosh",)),
            Entity("Barack Obama", "person", ()),
            Entity("Eiffel Tower", "place", ()),
        ]

    @pytest.mark.parametrize(
        ("text", "line", "problem"),
        [
            ("Mona Lisa | painting\n", 1, "not one of"),
            ("# header\nMona Lisa\n", 2, "expected"),
            ("Nike | brand\n | work\n", 2, "name is empty"),
            ("Nike | brand\nbad\x00name | person\n", 2, "holds control characters"),
            ("\x1b]0;PWNED\x07Nemo | work\n", 1, "holds control characters"),
            ("Nike | brand\nnike | brand\n", 2, "listed twice"),
            ("a | work | b | c\n", 1, "expected"),
        ],
    )
    def test_malformed_lines_name_the_line(self, text: str, line: int, problem: str) -> None:
        with pytest.raises(InputError) as caught:
            parse_lexicon(text, "entities.txt")
        assert caught.value.location == f"line {line}"
        assert problem in caught.value.problem
        assert str(caught.value).startswith(f"entities.txt:line {line}: ")

    def test_read_lexicon_reports_a_missing_file(self, tmp_path) -> None:
        with pytest.raises(InputError, match="not found"):
            read_lexicon(tmp_path / "entities.txt")


class TestImplicationCues:
    @pytest.mark.parametrize(
        ("prompt", "pattern", "kind", "text"),
        [
            ("the famous painting of a woman smiling", "famous", "work", "the famous painting"),
            (
                "the iconic Dutch painting with a pearl",
                "famous",
                "work",
                "the iconic Dutch painting",
            ),
            ("the logo of a sportswear company", "logo-of", "brand", "the logo of"),
            ("the president who freed the slaves", "who", "person", "the president who"),
            (
                "the smiling woman painted by an Italian master",
                "agent",
                "work",
                "the smiling woman painted by",
            ),
            ("the first man on the moon", "superlative", "person", "the first man"),
        ],
    )
    def test_definite_descriptions_single_one_thing_out(
        self, prompt: str, pattern: str, kind: str, text: str
    ) -> None:
        result = attribute(prompt)
        cue = next(c for c in result.cues if c.pattern == pattern)
        assert (cue.type, cue.text, prompt[cue.start : cue.end]) == (kind, text, text)
        assert result.implies_specific

    @pytest.mark.parametrize(
        "prompt",
        [
            "a famous painting of a woman",  # indefinite: any famous painting will do
            "a logo of a coffee shop",
            "a woman painted by an Italian master",
            "a man who walks his dog",
        ],
    )
    def test_indefinite_descriptions_do_not(self, prompt: str) -> None:
        assert attribute(prompt).cues == ()

    def test_a_name_heading_a_description_is_named_with_its_type(self) -> None:
        result = attribute("the famous Mona Lisa painted by Leonardo")
        assert spans(result) == [
            ("Mona Lisa", "capitalised", "work"),
            ("Leonardo", "capitalised", "person"),
        ]
        assert result.cues == ()

    def test_a_descriptive_adjective_leaves_the_description_implied(self) -> None:
        result = attribute("the iconic Dutch painting with a pearl")
        assert result.entities == ()
        assert [(c.text, c.type) for c in result.cues] == [("the iconic Dutch painting", "work")]


class FakeEncoder:
    """Embeds by keyword so the similarities are known: crops and texts share axes."""

    axes = ("mona", "swoosh", "cat")

    def _vector(self, text: str) -> np.ndarray:
        vector = np.array([float(axis in text.lower()) for axis in self.axes]) + 0.01
        return vector / np.linalg.norm(vector)

    def embed(self, images: Sequence[object]) -> np.ndarray:
        return np.stack([self._vector(str(image)) for image in images])

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._vector(text) for text in texts])


class TestClipEvidence:
    def test_crop_matches_the_entry_through_its_aliases(self, lexicon: list[Entity]) -> None:
        evidence = clip_evidence("a cat", ["crop showing the swoosh"], lexicon[:2], FakeEncoder())
        assert evidence.available
        assert evidence.prompt_similarity is not None and evidence.prompt_similarity < 0.1
        best = evidence.best_entry(0.28)
        assert best is not None and best[0].name == "Nike" and best[1] > 0.99

    def test_without_a_crop_it_is_unavailable(self, lexicon: list[Entity]) -> None:
        evidence = clip_evidence("a cat", [], lexicon, FakeEncoder())
        assert not evidence.available and "crop" in evidence.note

    def test_default_attribution_reports_clip_unavailable(self) -> None:
        assert not attribute("a cat").clip.available


class TestTitleCase:
    """Item 7: names in Title Case captions, prompts that are titles, makers' by-lines."""

    def test_names_are_read_from_word_rarity(self) -> None:
        result = attribute("Living In The Light With Ann Graham Lotz")
        assert result.title_case
        assert spans(result) == [("Ann Graham Lotz", "rare", None)]

    def test_common_title_words_are_no_names(self) -> None:
        assert (
            attribute("<i>The Long Dark</i> Gets First Trailer, Steam Early Access").entities == ()
        )

    def test_a_title_case_prompt_with_an_image_noun_names_that_picture(self) -> None:
        prompt = "Captain Marvel Exclusive Ccxp Poster Released Online By Marvel"
        assert spans(attribute(prompt)) == [
            ("Captain Marvel Exclusive Ccxp Poster", "title", "work")
        ]
        lady = attribute("Portrait Of A Lady In Red Dress, Oil On Canvas")
        assert spans(lady) == [("Portrait Of A Lady In Red Dress", "title", "work")]

    def test_a_picture_credited_to_a_named_maker_is_a_work(self) -> None:
        result = attribute("Portrait of Tiger in black and white by Lukas Holas")
        assert spans(result) == [
            ("Portrait of Tiger in black and white by Lukas Holas", "by-line", "work")
        ]
        # No image noun in the clause: the maker stays a person.
        people = attribute("a twisting tall apartment building, designed by Frank Gehry")
        assert spans(people) == [("Frank Gehry", "capitalised", "person")]

    def test_habitual_depiction_singles_out_a_character(self) -> None:
        prompt = "A superhero in a red suit. The hero is often depicted swinging between towers."
        (cue,) = attribute(prompt).cues
        assert (cue.text, cue.pattern, cue.type) == (
            "The hero is often depicted",
            "habitual",
            "person",
        )
