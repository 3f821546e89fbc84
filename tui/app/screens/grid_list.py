"""Lists of this annotator's grids (skipped, flagged): Enter opens one to finish or correct it."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from memgrid.core.errors import MemgridError
from memgrid.core.taxonomy import LabelState
from memgrid.tui.app.session import AnnotationSession
from memgrid.tui.display import shown, user_text

PROMPT_CHARS = 90


def grid_option(grid_id: int, prompt: str, detail: Text | str = "") -> Option:
    line = Text(f"grid {grid_id:>6}  ", "bold")
    if detail:
        line.append_text(detail if isinstance(detail, Text) else user_text(detail))
        line.append("  ")
    line.append(shown(prompt[:PROMPT_CHARS]) + ("…" if len(prompt) > PROMPT_CHARS else ""), "dim")
    return Option(line, id=str(grid_id))


class GridListScreen(Screen[int | None]):
    """A list of grids read in a worker; dismisses with the chosen grid id, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "close", "back")]

    CSS_PATH = "grid_list.tcss"

    class Loaded(Message):
        """The grids to list, as options, read off the UI thread."""

        def __init__(self, options: list[Option]) -> None:
            super().__init__()
            self.options = options

    def __init__(self, session: AnnotationSession, state: LabelState | None = None) -> None:
        super().__init__()
        self.session = session
        self.state = state

    @property
    def title_text(self) -> str:
        state = self.state.value if self.state else "listed"
        return f"Your {state} grids · enter: open to finish or correct · escape: back"

    def compose(self) -> ComposeResult:
        yield Static(self.title_text, id="list-title")
        with Horizontal(id="list-body"):
            yield OptionList(id="list")
            with Vertical(id="list-detail"):
                yield Static(id="detail")

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="list")
    def load(self) -> None:
        try:
            options = self.options()
        except MemgridError as error:
            options = [Option(user_text(f"cannot read the grids: {error}"), disabled=True)]
        self.post_message(self.Loaded(options))

    def options(self) -> list[Option]:
        """The list's options (runs in a worker thread)."""
        assert self.state is not None
        grids = self.session.views.grids_in_state(self.state)
        return [grid_option(grid.id, grid.prompt, f"{len(grid.images)} seeds") for grid in grids]

    @on(Loaded)
    def _fill(self, message: Loaded) -> None:
        option_list = self.query_one(OptionList)
        option_list.clear_options()
        if message.options:
            option_list.add_options(message.options)
            option_list.highlighted = 0
        else:
            option_list.add_option(Option("(none)", disabled=True))
        option_list.focus()

    @on(OptionList.OptionSelected)
    def _open(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.dismiss(int(event.option.id))

    def action_close(self) -> None:
        self.dismiss(None)
