"""One seed, large, through textual-image (Sixel, Kitty TGP or half-cell, chosen at launch).

The file is decoded and scaled in a worker; the screen only hands the result to the image
widget. Left and right step through the grid's other seeds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from memgrid.core.errors import InputError
from memgrid.core.images import decode_rgb
from memgrid.core.records import Grid, GridImage
from memgrid.tui.display import user_text
from PIL import Image
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

HALF_CELL_PIXELS = (1, 2)  # pixels per cell, half-cell drawing


class ZoomScreen(Screen[None]):
    """A single seed at the size of the screen; escape returns to the grid."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,z,q", "close", "back to the grid"),
        Binding("left", "step(-1)", "previous seed"),
        Binding("right", "step(1)", "next seed"),
    ]

    CSS_PATH = "zoom.tcss"

    class Loaded(Message):
        """A seed's image is decoded and scaled, ready to hand to the image widget."""

        def __init__(self, index: int, image: Image.Image | None, error: str = "") -> None:
            super().__init__()
            self.index = index
            self.image = image
            self.error = error

    def __init__(
        self,
        grid: Grid,
        image_path: Callable[[GridImage], Path],
        image_widget: type[Any],
        protocol: str,
        index: int = 0,
    ) -> None:
        super().__init__()
        self.grid = grid
        self.image_path = image_path
        self.image_widget = image_widget
        self.protocol = protocol
        self.index = index

    def compose(self) -> ComposeResult:
        yield Static(id="zoom-title")
        yield self.image_widget(id="zoom-image")
        yield Static(id="zoom-error")

    def on_mount(self) -> None:
        self.load(self.index)

    def action_step(self, delta: int) -> None:
        if self.grid.images:
            self.index = (self.index + delta) % len(self.grid.images)
            self.load(self.index)

    def action_close(self) -> None:
        self.dismiss(None)

    @work(thread=True, exclusive=True, exit_on_error=False, group="zoom")
    def load(self, index: int) -> None:
        if not self.grid.images:
            self.post_message(self.Loaded(index, None, "this grid has no images"))
            return
        image = self.grid.images[index]
        try:
            decoded = decode_rgb(self.image_path(image))
        except InputError as error:
            self.post_message(self.Loaded(index, None, str(error)))
            return
        if self.protocol == "halfcell":
            # Scale here, off the UI thread, to what half-cell can show on this screen.
            width, height = self.size.width, max(self.size.height - 1, 1)
            decoded.thumbnail((width * HALF_CELL_PIXELS[0], height * HALF_CELL_PIXELS[1]))
        self.post_message(self.Loaded(index, decoded))

    @on(Loaded)
    def _show(self, message: Loaded) -> None:
        if message.index != self.index:
            return
        image = self.grid.images[message.index] if self.grid.images else None
        title = (
            f"grid {self.grid.id} · seed {image.seed if image else '-'} "
            f"({message.index + 1}/{len(self.grid.images)}) · {self.protocol} · "
            "left/right: other seeds · escape: back"
        )
        self.query_one("#zoom-title", Static).update(user_text(title))
        self.query_one("#zoom-error", Static).update(user_text(message.error))
        self.query_one("#zoom-image").image = message.image
