"""This annotator's label on the grid, what is drafted for it, and (once they voted, or with
--show-others) others'."""

from __future__ import annotations

import time
from pathlib import PurePath

from rich.text import Text

from memgrid.core.records import LabelEvent
from memgrid.core.taxonomy import Feature, LabelAction, LabelState
from memgrid.tui.app.widgets.proposal_panel import category_badge, feature_line
from memgrid.tui.app.widgets.text_panel import TextPanel
from memgrid.tui.display import shown

STATE_STYLES = {
    LabelState.LABELLED: "green",
    LabelState.SKIPPED: "yellow",
    LabelState.FLAGGED: "magenta",
}


def describe_event(event: LabelEvent, *, with_time: bool = False) -> Text:
    """One label event in a line: who, category, state, (when), note; an imported event
    says which file it came from, so it is never taken for one typed here."""
    line = Text()
    if event.imported:
        line.append(shown(event.annotator), "bold")
        line.append(f" (imported from {shown(PurePath(event.origin).name)})", "dim")
        line.append(": ", "bold")
    else:
        line.append(f"{shown(event.annotator)}: ", "bold")
    if event.category is not None:
        line.append_text(category_badge(event.category))
        line.append(" ")
    if event.action is LabelAction.ADJUDICATE:
        line.append("final (adjudicated)", "bold green")
    elif event.state is not None:
        line.append(event.state.value, STATE_STYLES[event.state])
    if with_time:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.created_at))
        line.append(f"  {when}", "dim")
    if event.note:
        line.append(f"  “{shown(event.note)}”", "italic")
    return line


class LabelsPanel(TextPanel):
    """Your label, your draft (note, features), others' labels and any final verdict."""

    DEFAULT_CSS = """
    LabelsPanel { height: auto; padding: 0 1; margin-bottom: 1; }
    """

    def show(
        self,
        mine: LabelEvent | None,
        draft_note: str,
        draft_features: list[Feature],
        others: tuple[LabelEvent, ...],
        others_hidden: bool,
        adjudication: LabelEvent | None,
    ) -> None:
        lines = [Text("Your label", "bold")]
        if mine is None:
            lines.append(Text("  none yet", "dim"))
        else:
            lines.append(Text("  ").append_text(describe_event(mine)))
            lines.extend(feature_line(f) for f in mine.features)
        if draft_note or draft_features:
            lines.append(Text("  drafted (saved; your next label takes it):", "yellow"))
            if draft_note:
                lines.append(Text(f"  note “{shown(draft_note)}”", "italic"))
            lines.extend(feature_line(f) for f in draft_features)
        lines.append(Text("Others", "bold"))
        if others_hidden:
            lines.append(Text("  hidden until you vote (--show-others shows them)", "dim"))
        elif not others:
            lines.append(Text("  nobody else yet", "dim"))
        else:
            lines.extend(Text("  ").append_text(describe_event(e)) for e in others)
        if adjudication is not None:
            lines.append(Text("  ").append_text(describe_event(adjudication)))
        self.show_text(Text("\n").join(lines))
