"""Your earlier labels, newest first, with each grid's full event history: reopen to correct."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from memgrid.core.errors import MemgridError
from memgrid.core.records import LabelEvent
from memgrid.core.taxonomy import LabelAction
from memgrid.tui.app.screens.grid_list import GridListScreen, grid_option
from memgrid.tui.app.widgets.labels_panel import describe_event
from memgrid.tui.app.widgets.proposal_panel import category_badge
from memgrid.tui.display import shown, user_text


def describe_history(grid_id: int, events: list[LabelEvent]) -> Text:
    """Every event on the grid, undos included, oldest first: the audit trail."""
    lines = [Text(f"History of grid {grid_id}", "bold")]
    undone = {e.undoes for e in events if e.undoes is not None}
    for event in events:
        if event.action is LabelAction.UNDO:
            line = Text(
                f"  #{event.id} {shown(event.annotator)}: undo of #{event.undoes}", "yellow"
            )
        else:
            line = Text(f"  #{event.id} ").append_text(describe_event(event, with_time=True))
            if event.id in undone:
                line.stylize("strike dim")
        lines.append(line)
        lines.extend(
            Text(f"      ◆ {shown(f.name)} ({f.category.title}, {shown(f.where)})")
            for f in event.features
        )
    return Text("\n").join(lines)


class HistoryScreen(GridListScreen):
    """Your current labels; the highlighted grid's history on the right; enter reopens it."""

    CSS_PATH: ClassVar[list[str]] = ["grid_list.tcss", "history.tcss"]

    class HistoryLoaded(Message):
        def __init__(self, grid_id: int, text: Text) -> None:
            super().__init__()
            self.grid_id = grid_id
            self.text = text

    @property
    def title_text(self) -> str:
        return "Your labels, newest first · enter: reopen to correct · escape: back"

    def options(self) -> list[Option]:
        events = self.session.views.my_labels()
        grids = {g.id: g for g in self.session.views.grids([e.grid_id for e in events])}
        options = []
        for event in events:
            detail = Text()
            if event.category:
                detail.append_text(category_badge(event.category))
            detail.append(f" {event.state.value if event.state else event.action}")
            prompt = grids[event.grid_id].prompt if event.grid_id in grids else ""
            options.append(grid_option(event.grid_id, prompt, detail))
        return options

    @on(OptionList.OptionHighlighted)
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id is not None:
            self.load_history(int(event.option.id))

    @work(thread=True, exclusive=True, exit_on_error=False, group="history")
    def load_history(self, grid_id: int) -> None:
        try:
            text = describe_history(grid_id, self.session.views.history(grid_id))
        except MemgridError as error:
            text = user_text(f"cannot read the history: {error}")
        self.post_message(self.HistoryLoaded(grid_id, text))

    @on(HistoryLoaded)
    def _show_history(self, message: HistoryLoaded) -> None:
        self.query_one("#detail", Static).update(message.text)
