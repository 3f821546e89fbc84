"""Seeds at full size: one (zoom), or two side by side with their difference (compare).

Both draw through the same pictures as the grid (pictures.py), so they use the grid's
protocol: real pixels with Kitty, Sixel or iTerm2, half-cell otherwise. The picture is
composed in a worker; the screen only hands it to its SeedGrid.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from memgrid.core.records import Grid
from memgrid.tui.app.drawing import GridPicture
from memgrid.tui.app.pictures import Pictures
from memgrid.tui.app.widgets.seed_grid import RedrawsImagesOnScreenChange, SeedGrid


class SeedViewScreen(RedrawsImagesOnScreenChange, Screen[None]):
    """A title line and a SeedGrid of chosen seeds, redrawn when they or the size change."""

    CSS_PATH = "zoom.tcss"

    class Drawn(Message):
        def __init__(self, picture: GridPicture, version: int) -> None:
            super().__init__()
            self.picture = picture
            self.version = version

    def __init__(self, grid: Grid, pictures: Pictures) -> None:
        super().__init__()
        self.grid = grid
        self.pictures = pictures
        self.version = 0  # bumped on every change, so a late picture is dropped

    def compose(self) -> ComposeResult:
        yield Static(id="view-title")
        yield SeedGrid(id="view-seeds")
        yield Footer()

    @property
    def seeds(self) -> SeedGrid:
        return self.query_one("#view-seeds", SeedGrid)

    def on_mount(self) -> None:
        self.changed()

    def changed(self) -> None:
        self.version += 1
        self.query_one("#view-title", Static).update(self.title_text())
        if self.grid.images:
            self.draw(self.version)
        else:
            self.seeds.show(None, "This grid has no images.")

    def title_text(self) -> Text:
        raise NotImplementedError

    def picture(self, area: Size) -> GridPicture:
        """Runs in a worker: the picture for the current choice of seeds."""
        raise NotImplementedError

    @work(thread=True, exclusive=True, exit_on_error=False, group="seed-view")
    def draw(self, version: int) -> None:
        try:
            picture = self.picture(self.seeds.area)
        except OSError as error:
            self.app.call_from_thread(self.seeds.show, None, f"cannot draw: {error}")
            return
        self.post_message(self.Drawn(picture, version))

    @on(Drawn)
    def _show(self, message: Drawn) -> None:
        if message.version == self.version:
            self.seeds.show(message.picture)

    @on(SeedGrid.Resized)
    def _resized(self) -> None:
        if self.grid.images:
            self.draw(self.version)

    def action_close(self) -> None:
        self.dismiss(None)

    def seed_label(self, index: int) -> str:
        return f"seed {self.grid.images[index].seed} ({index + 1}/{len(self.grid.images)})"

    def step(self, index: int, delta: int) -> int:
        return (index + delta) % len(self.grid.images) if self.grid.images else index


class ZoomScreen(SeedViewScreen):
    """One seed as large as the screen allows; left and right step through the others."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,z,q", "close", "back to the grid"),
        Binding("left", "step(-1)", "previous seed"),
        Binding("right", "step(1)", "next seed"),
    ]

    def __init__(self, grid: Grid, pictures: Pictures, index: int = 0) -> None:
        super().__init__(grid, pictures)
        self.index = index

    def title_text(self) -> Text:
        if not self.grid.images:
            return Text(f"grid {self.grid.id}: no images")
        return Text.assemble(
            (f"grid {self.grid.id} · {self.seed_label(self.index)}", "bold"),
            ("  ←/→ other seeds · escape back", "dim"),
        )

    def picture(self, area: Size) -> GridPicture:
        return self.pictures.seeds(self.grid, (self.index,), area)

    def action_step(self, delta: int) -> None:
        self.index = self.step(self.index, delta)
        self.changed()
