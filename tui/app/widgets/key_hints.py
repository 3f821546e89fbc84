"""The footer of the annotate screen: the everyday keys, most important first, as many as fit.

Textual's Footer cuts hints at the right edge, where `? help` sits; this one drops the
least important hints instead, so help is always visible, at 100 columns as at 220.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.events import Resize
from textual.widget import Widget

KEY_STYLE = "bold black on rgb(255,170,60)"
LABEL_STYLE = "rgb(200,200,200)"
SEPARATOR = " "


def hint_text(hints: Sequence[tuple[str, str]], always: tuple[str, str], width: int) -> Text:
    """Hints in order while they fit in `width`, then `always` (help) at the end."""
    pieces = [_piece(key, label) for key, label in hints]
    last = _piece(*always)
    room = width - last.cell_len
    line = Text()
    for piece in pieces:
        if line.cell_len + piece.cell_len + len(SEPARATOR) > room:
            continue  # a shorter one further on may still fit
        line.append_text(piece)
        line.append(SEPARATOR)
    line.append_text(last)
    return line


def _piece(key: str, label: str) -> Text:
    return Text.assemble((f" {key} ", KEY_STYLE), (f" {label}", LABEL_STYLE))


class KeyHints(Widget):
    """One line of key hints fitted to the width; `?` help is never cut."""

    DEFAULT_CSS = """
    KeyHints { height: 1; background: $panel; }
    """

    def __init__(
        self, hints: Sequence[tuple[str, str]], always: tuple[str, str], *, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.hints = list(hints)
        self.always = always
        self._width = 0

    def on_resize(self, event: Resize) -> None:
        self._width = event.size.width
        self.refresh()

    def render(self) -> Text:
        return hint_text(self.hints, self.always, self._width or self.size.width)
