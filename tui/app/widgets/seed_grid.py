"""The seed grid on screen: hands out the lines of a picture composed off the UI thread.

Half-cell and Kitty pictures are text (Kitty's placeholders name images sent ahead). On a
real terminal the lines come ready as terminal output (line_output.RawWriter); elsewhere
(snapshots, under a modal, with NO_COLOR) as Strips of styled cells. Sixel and iTerm2
images are written by the line under them (their caption line): the cursor jumps to each
image's corner, the image is written over the blank cells drawn just before, and the
cursor comes back for the caption. Textual writes a frame's lines top to bottom, so the
images land on top. Under another screen (help, a modal) the images are left out, and
the owner refreshes the grid when its screen is covered and when it is back.
"""

from __future__ import annotations

from rich.control import Control
from rich.segment import Segment
from rich.style import Style
from textual.dom import NoScreen
from textual.events import Resize, ScreenResume, ScreenSuspend
from textual.filter import ANSIToTruecolor, LineFilter
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from memgrid.tui.app.drawing import GridPicture
from memgrid.tui.app.line_output import RAW_DATA

MESSAGE_STYLE = Style(color="grey62")
PLAIN = Style()


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
        if picture is not None and picture.area is not None and picture.area != self.area:
            # Drawn for an area that changed meanwhile (a resize while it was composed).
            self.post_message(self.Resized())

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
        if not self._filtered():
            return self._line(y)
        # Textual's NO_COLOR filter reads every segment's style: a bare padding segment
        # (style None) crashed the app at start for anyone with NO_COLOR set.
        line = self._line(y)
        if all(segment.style is not None for segment in line):
            return line
        return Strip(
            [Segment(text, style or PLAIN, control) for text, style, control in line],
            line.cell_length,
        )

    def _line(self, y: int) -> Strip:
        width = self.area.width
        picture = self.picture
        if picture is None:
            text = self.message if y == 0 else ""
            return Strip([Segment(text[:width], MESSAGE_STYLE)]).extend_cell_length(width)
        if y >= len(picture.pieces):
            return Strip.blank(width)
        visible = self._images_visible()
        # Raw lines only where they are written as they are: on a real terminal, this
        # screen on top (a modal dims what is beneath it), no filter (NO_COLOR).
        raw = picture.raw is not None and visible and not self._filtered()
        line = (picture.raw if raw else picture.lines)[y]  # type: ignore[index]
        if line.cell_length != width:
            line = picture.lines[y].crop_extend(0, width, None)
        placed = picture.graphics.get(y)
        # A filter rebuilds segments without their control codes: image data would be text.
        if not placed or not visible or self._filtered():
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
            return self.screen.is_active and not self.app.is_headless
        except NoScreen:
            return False

    def _filtered(self) -> bool:
        return bool(self.get_line_filters())


class RedrawsImagesOnScreenChange:
    """For a screen holding a SeedGrid as `seeds`: Sixel and iTerm2 images are left out
    while another screen is on top (a modal shows this screen's lines beneath it), so the
    grid is drawn again when the screen is covered and when it is back."""

    seeds: SeedGrid

    def on_screen_suspend(self, _: ScreenSuspend) -> None:
        self.seeds.refresh()

    def on_screen_resume(self, _: ScreenResume) -> None:
        self.seeds.refresh()
