"""The region heat map: per tile, the share of seed pairs that agree there (docs/design.md, "Signals").

Read-only beside the grid; in the feature screen it takes a cursor and a tile selection,
which is how a feature's region is marked (`Feature.tiles`: row * columns + column).
"""

from __future__ import annotations

from typing import ClassVar

from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from memgrid.tui.app.evidence import heat_color

SELECTED_MARK = "■"
CURSOR_STYLE = Style(reverse=True, bold=True)
NO_HEATMAP = "no heat map (run memgrid score)"


class HeatMap(Widget, can_focus=False):
    """Tiles coloured by consistency; with `selectable`, arrows move and space selects."""

    DEFAULT_CSS = """
    HeatMap { width: auto; height: auto; }
    HeatMap.-selectable { border: round $accent; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(0, -1)", "up", show=False),
        Binding("down", "move(0, 1)", "down", show=False),
        Binding("left", "move(-1, 0)", "left", show=False),
        Binding("right", "move(1, 0)", "right", show=False),
        Binding("space", "toggle", "select tile", id="heatmap.toggle"),
        Binding("a", "select_hot", "select hot tiles", id="heatmap.hot"),
    ]

    cursor: reactive[int] = reactive(0)

    class SelectionChanged(Message):
        """The set of selected tiles changed."""

        def __init__(self, tiles: tuple[int, ...]) -> None:
            super().__init__()
            self.tiles = tiles

    def __init__(
        self,
        heatmap: list[list[float]] | None = None,
        *,
        selectable: bool = False,
        tile_width: int = 2,
        tile_height: int = 1,
        absent: str = NO_HEATMAP,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id, classes="-selectable" if selectable else "")
        self.absent = absent  # what shows in its place without a map
        self.can_focus = selectable
        self.heatmap = heatmap
        self.selectable = selectable
        self.tile_width = tile_width
        self.tile_height = tile_height
        self.selected: set[int] = set()

    @property
    def shape(self) -> tuple[int, int]:
        if not self.heatmap:
            return (0, 0)
        return (len(self.heatmap), len(self.heatmap[0]))

    def show(self, heatmap: list[list[float]] | None) -> None:
        reshaped = self.shape != (len(heatmap), len(heatmap[0])) if heatmap else bool(self.heatmap)
        self.heatmap = heatmap
        self.selected.clear()
        self.refresh(layout=reshaped)

    def render(self) -> Text:
        if not self.heatmap:
            return Text(self.absent, style="dim")
        rows, columns = self.shape
        lines = []
        for row in range(rows):
            for line in range(self.tile_height):
                text = Text()
                for column in range(columns):
                    index = row * columns + column
                    share = self.heatmap[row][column]
                    text.append(self._tile_text(index, share, line), self._tile_style(index, share))
                lines.append(text)
        return Text("\n").join(lines)

    def _tile_text(self, index: int, share: float, line: int) -> str:
        width = self.tile_width
        if line != self.tile_height // 2:
            return " " * width
        if index in self.selected:
            return SELECTED_MARK.center(width)
        if width >= 4:
            return f"{round(share * 100):>3d}".center(width)
        return " " * width

    def _tile_style(self, index: int, share: float) -> Style:
        style = Style(color="white", bgcolor=Color.from_rgb(*heat_color(share)))
        if self.selectable and index == self.cursor and self.has_focus:
            style += CURSOR_STYLE
        return style

    def action_move(self, dx: int, dy: int) -> None:
        rows, columns = self.shape
        if not rows:
            return
        row, column = divmod(self.cursor, columns)
        row = min(max(row + dy, 0), rows - 1)
        column = min(max(column + dx, 0), columns - 1)
        self.cursor = row * columns + column

    def action_toggle(self) -> None:
        if not self.heatmap:
            return
        self.selected.symmetric_difference_update({self.cursor})
        self._changed()

    def action_select_hot(self, threshold: float = 0.5) -> None:
        """Select every tile where most seed pairs agree: a quick start for a region."""
        if not self.heatmap:
            return
        columns = self.shape[1]
        self.selected = {
            r * columns + c
            for r, row in enumerate(self.heatmap)
            for c, share in enumerate(row)
            if share >= threshold
        }
        self._changed()

    def watch_cursor(self) -> None:
        self.refresh()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def _changed(self) -> None:
        self.refresh()
        self.post_message(self.SelectionChanged(tuple(sorted(self.selected))))
