"""The prompt, with the entities it names and the things it implies highlighted.

Spans come from memgrid.core.attribution (the same evidence the categorizer uses), so what the
annotator sees highlighted is what made the proposal say "explicit" or "implicit"; on a
proposal-hidden grid they wait for the annotator's vote like the rest of the detector's marks.
"""

from __future__ import annotations

import itertools

from rich.cells import cell_len
from rich.text import Text

from memgrid.core.attribution import Attribution
from memgrid.core.records import Grid
from memgrid.tui.app.widgets.text_panel import TextPanel
from memgrid.tui.display import shown, user_text, user_text_with_styles

NAMED_STYLE = "bold underline yellow"
IMPLIED_STYLE = "italic underline cyan"
HIGHLIGHTS_HIDDEN = "what the prompt names or implies: after your vote"
# At most this many lines of a long prompt are shown above the seeds.
PROMPT_LINES = 4


def highlight_prompt(attribution: Attribution) -> Text:
    """The prompt text (escaped) with named entities and implication cues styled."""
    styles = [(mention.start, mention.end, NAMED_STYLE) for mention in attribution.entities]
    styles += [(cue.start, cue.end, IMPLIED_STYLE) for cue in attribution.cues]
    return user_text_with_styles(attribution.prompt, styles)


def legend(attribution: Attribution) -> Text:
    parts = Text()
    for mention in attribution.entities:
        kind = mention.type or "name"
        parts.append(f" {shown(mention.label)} ", NAMED_STYLE)
        parts.append(f"names {shown(kind)}  ", "dim")
    for cue in attribution.cues:
        target = cue.entry.name if cue.entry else (cue.type or "something specific")
        parts.append(f" {shown(cue.text)} ", IMPLIED_STYLE)
        parts.append(f"implies {shown(target)}  ", "dim")
    if not parts:
        parts.append("nothing named or implied", "dim")
    return parts


class PromptView(TextPanel):
    """Grid header, highlighted prompt and what it names or implies."""

    DEFAULT_CSS = """
    PromptView { height: auto; padding: 0 1; border-bottom: solid $primary-darken-2; }
    """

    def show(self, grid: Grid, attribution: Attribution | None) -> None:
        """The grid's header and prompt; without `attribution` (withheld until the vote), the
        prompt as typed and a legend line that says so."""
        header = Text()
        header.append(f"grid {grid.id}", "bold")
        model = shown(grid.model or "unknown model")
        header.append(f"  ·  {len(grid.images)} seeds  ·  {model}", "dim")
        if grid.source:
            header.append(f"  ·  {shown(grid.source)}", "dim")
        if attribution is None:
            prompt, names = user_text(grid.prompt), Text(HIGHLIGHTS_HIDDEN, "dim")
        else:
            prompt, names = highlight_prompt(attribution), legend(attribution)
        body = Text("\n").join([header, self._within_lines(prompt, grid.id), names])
        self.show_text(body)

    def _within_lines(self, prompt: Text, grid_id: int) -> Text:
        """A scraped caption can run to thousands of characters: past PROMPT_LINES lines it
        is cut, so that the seeds and the keys stay on screen."""
        width = (self.size.width or self.app.size.width) - 2  # the padding
        budget = max(width, 20) * PROMPT_LINES  # in cells: CJK and emoji take two
        if cell_len(prompt.plain) <= budget:
            return prompt
        cells = itertools.accumulate(cell_len(character) for character in prompt.plain)
        kept = budget - 60  # room for the note and for words wrapped early
        cut = prompt[: sum(1 for used in cells if used <= kept)]
        cut.append(
            f"… ({len(prompt):,} characters; `memgrid show {grid_id}` prints them all)", "dim"
        )
        return cut

    def clear(self, message: str) -> None:
        self.show_text(Text(message, style="dim"))
