"""The seed grid on screen: hands out the lines of a picture composed off the UI thread.

Half-cell and Kitty pictures are text (Kitty's placeholders name images sent ahead).
Sixel and iTerm2 images are written by the line under them (their caption line): the
cursor jumps to each image's corner, the image is written over the blank cells drawn
just before, and the cursor comes back for the caption. Textual writes a frame's lines
top to bottom, so the images land on top. Under another screen (help, a modal) the
images are left out, and the owner refreshes the grid when its screen is back.
"""

from __future__ import annotations

from memgrid.tui.app.drawing import GridPicture
from rich.control import Control
from rich.segment import ControlType, Segment
from rich.style import Style
from textual.dom import NoScreen
from textual.events import Resize
from textual.filter import ANSIToTruecolor, LineFilter
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

# A no-op control code marks a Segment as raw terminal data: Rich and Textual pass it on
# unstyled and count it as no cells.
RAW_DATA = ((ControlType.CURSOR_FORWARD, 0),)
MESSAGE_STYLE = Style(color="grey62")


class SeedGrid(Widget):
    """Shows a composed GridPicture; posts Resized when the area it may use changes."""

    DEFAULT_CSS = """
    SeedGrid { width: 1fr; height: 1fr; background: rgb(12,12,12); }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.picture: GridPicture | None = None
        self.message = "Loading…"
        # The area tiles may use, read by worker threads to plan the next picture.
        self.area = Size(108, 40)

    def show(self, picture: GridPicture | None, message: str = "") -> None:
        self.picture = picture
        self.message = message
        self.refresh()

    class Resized(Message):
        """The area changed: pictures drawn for the old one may no longer fit."""

    def on_resize(self, event: Resize) -> None:
        # Kept here: render_line must not ask for self.size (a compositor lookup per line).
        changed = event.size != self.area
        self.area = event.size
        if changed:
            self.post_message(self.Resized())

    @property
    def lines(self) -> tuple[Strip, ...]:
        return () if self.picture is None else self.picture.lines

    def get_line_filters(self) -> list[LineFilter]:
        # The ANSI-to-truecolor filter rebuilds Segments without their control codes, which
        # would turn image data into text; this widget's colours are all RGB already.
        return [f for f in super().get_line_filters() if not isinstance(f, ANSIToTruecolor)]

    def render_line(self, y: int) -> Strip:
        width = self.area.width
        picture = self.picture
        if picture is None:
            text = self.message if y == 0 else ""
            return Strip([Segment(text[:width], MESSAGE_STYLE)]).extend_cell_length(width)
        if y >= len(picture.lines):
            return Strip.blank(width)
        line = picture.lines[y].crop_extend(0, width, None)
        placed = picture.graphics.get(y)
        if not placed or not self._images_visible():
            return line
        region = self.content_region
        data = "".join(
            Control.move_to(region.x + g.x, region.y + g.y).segment.text + g.data
            for g in placed
            if g.x < width
        )
        back = Control.move_to(region.x, region.y + y).segment.text
        return Strip([Segment(data + back, None, RAW_DATA), *line], line.cell_length)

    def _images_visible(self) -> bool:
        try:
            return self.screen.is_active
        except NoScreen:
            return False
