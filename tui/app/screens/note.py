"""A one-line note on the grid: Enter saves it, Escape leaves it as it was."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from memgrid.core.display_text import printable
from memgrid.tui.app.widgets.printable_input import PrintableInput

MAX_NOTE_LENGTH = 500


class NoteScreen(ModalScreen[str | None]):
    """Asks for a note; dismisses with the text (empty clears it) or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]

    CSS_PATH = "note.tcss"

    def __init__(
        self, note: str = "", title: str = "Note on this grid (Enter saves, Escape cancels)"
    ) -> None:
        super().__init__()
        self.note = note
        self.title_line = title

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.title_line)
            # Shown escaped; the stored note keeps its characters unless it is edited.
            yield PrintableInput(printable(self.note), max_length=MAX_NOTE_LENGTH, id="note")

    @on(Input.Submitted)
    def _save(self, event: Input.Submitted) -> None:
        self.dismiss(self.note if event.value == printable(self.note) else event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
