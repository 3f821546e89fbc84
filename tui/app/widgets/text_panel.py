"""A Static that sizes itself to its text and skips the layout pass when the size holds.

Every grid change updates the prompt and the side panels. A layout pass for each (what
`Static.update` does by default) reflows the whole screen, which costs more than drawing
it; so the panel wraps its text at its width and asks for layout only when it must grow,
or could shrink by several lines. A line or two of slack below the text is the price.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

SHRINK_SLACK = 3  # lines a panel may stand taller than its text before it shrinks


class TextPanel(Static):
    """Shows Rich Text at a height that fits it; cheap to update while the height holds."""

    def show_text(self, text: Text) -> None:
        width = self.content_region.width
        if width <= 0:
            self.update(text)  # not laid out yet: let layout size it
            return
        needed = len(text.wrap(self.app.console, width)) + self.styles.gutter.height
        current = self.styles.height.value if self.styles.height is not None else None
        if current is None or needed > current or needed < current - SHRINK_SLACK:
            self.styles.height = needed
        self.update(text, layout=False)
