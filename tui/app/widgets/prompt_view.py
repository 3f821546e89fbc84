"""The prompt, with the entities it names and the things it implies highlighted.

Spans come from memgrid.core.attribution (the same evidence the categorizer uses), so what the
annotator sees highlighted is what made the proposal say "explicit" or "implicit".
"""

from __future__ import annotations

from memgrid.core.attribution import Attribution
from memgrid.core.records import Grid
from memgrid.tui.app.widgets.text_panel import TextPanel
from rich.text import Text

NAMED_STYLE = "bold underline yellow"
IMPLIED_STYLE = "italic underline cyan"


def highlight_prompt(attribution: Attribution) -> Text:
    """The prompt text with named entities and implication cues styled by their offsets."""
    text = Text(attribution.prompt)
    for mention in attribution.entities:
        text.stylize(NAMED_STYLE, mention.start, mention.end)
    for cue in attribution.cues:
        text.stylize(IMPLIED_STYLE, cue.start, cue.end)
    return text


def legend(attribution: Attribution) -> Text:
    parts = Text()
    for mention in attribution.entities:
        kind = mention.type or "name"
        parts.append(f" {mention.label} ", NAMED_STYLE)
        parts.append(f"names {kind}  ", "dim")
    for cue in attribution.cues:
        target = cue.entry.name if cue.entry else (cue.type or "something specific")
        parts.append(f" {cue.text} ", IMPLIED_STYLE)
        parts.append(f"implies {target}  ", "dim")
    if not parts:
        parts.append("nothing named or implied", "dim")
    return parts


class PromptView(TextPanel):
    """Grid header, highlighted prompt and what it names or implies."""

    DEFAULT_CSS = """
    PromptView { height: auto; padding: 0 1; border-bottom: solid $primary-darken-2; }
    """

    def show(self, grid: Grid, attribution: Attribution) -> None:
        header = Text()
        header.append(f"grid {grid.id}", "bold")
        header.append(f"  ·  {len(grid.images)} seeds  ·  {grid.model or 'unknown model'}", "dim")
        if grid.source:
            header.append(f"  ·  {grid.source}", "dim")
        body = Text("\n").join([header, highlight_prompt(attribution), legend(attribution)])
        self.show_text(body)

    def clear(self, message: str) -> None:
        self.show_text(Text(message, style="dim"))
