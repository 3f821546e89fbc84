"""Mark a feature: select its heat-map tiles, give it a category and a short name."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from memgrid.core.taxonomy import Category, Feature
from memgrid.tui.app.keys import category_bindings
from memgrid.tui.app.widgets.heatmap import NO_HEATMAP, HeatMap
from memgrid.tui.app.widgets.printable_input import PrintableInput
from memgrid.tui.app.widgets.proposal_panel import category_badge

MAX_NAME_LENGTH = 80


class FeatureScreen(ModalScreen[Feature | None]):
    """Dismisses with the Feature, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "cancel"),
        Binding("enter", "save", "save", priority=False),
        *category_bindings("feature", "category", "{category}"),
    ]

    CSS_PATH = "feature.tcss"

    def __init__(self, heatmap: list[list[float]] | None, *, absent: str = NO_HEATMAP) -> None:
        super().__init__()
        self.heatmap = heatmap
        self.absent = absent  # shown in the map's place without one: why there is none
        self.category = Category.UNINTENDED
        self.tiles: tuple[int, ...] = ()

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Mark a feature", style="bold"))
            yield HeatMap(
                self.heatmap,
                selectable=True,
                tile_width=5,
                tile_height=2,
                absent=self.absent,
                id="feature-map",
            )
            yield Static(id="feature-tiles")
            yield Static(id="feature-category")
            yield PrintableInput(
                placeholder="short name, e.g. photographer's watermark",
                max_length=MAX_NAME_LENGTH,
                id="feature-name",
            )
            yield Static(
                "arrows + space: tiles · a: hot tiles · 1-4: category · tab: name · "
                "enter: save · escape: cancel",
                classes="hint",
            )

    def on_mount(self) -> None:
        self._describe()
        target = "#feature-map" if self.heatmap else "#feature-name"
        self.query_one(target).focus()

    @on(HeatMap.SelectionChanged)
    def _tiles_changed(self, message: HeatMap.SelectionChanged) -> None:
        self.tiles = message.tiles
        self._describe()

    def action_category(self, value: str) -> None:
        self.category = Category(value)
        self._describe()

    def _describe(self) -> None:
        where = f"{len(self.tiles)} tiles" if self.tiles else "whole image (no tile selected)"
        self.query_one("#feature-tiles", Static).update(f"Region: {where}")
        line = Text("Category: ").append_text(category_badge(self.category))
        self.query_one("#feature-category", Static).update(line)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        name = self.query_one("#feature-name", Input).value.strip()
        self.dismiss(Feature(category=self.category, name=name, tiles=self.tiles))

    def action_cancel(self) -> None:
        self.dismiss(None)
