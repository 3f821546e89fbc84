"""A text input that never holds a character a terminal would obey.

Whatever is typed or pasted goes through the display sanitiser on the way in: a pasted
caption with an ESC or a bidi override shows (and is saved) as `\\x1b`, `\\u202e`.
"""

from __future__ import annotations

from textual.widgets import Input

from memgrid.core.display_text import printable


class PrintableInput(Input):
    """An Input whose text is always `printable`; start it with text already escaped."""

    def replace(self, text: str, start: int, end: int) -> None:
        super().replace(printable(text), start, end)
