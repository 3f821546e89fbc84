"""Two seeds side by side at full size, and their difference: "same photo" or "same subject"?

Left and right change the seed marked ▶; tab marks the other one. `d` adds the absolute
difference, amplified (evidence.DIFF_GAIN): a copied photo leaves it nearly black, two
takes of one subject light it up everywhere.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.geometry import Size

from memgrid.core.records import Grid
from memgrid.tui.app.drawing import GridPicture
from memgrid.tui.app.evidence import DIFF_GAIN
from memgrid.tui.app.pictures import Pictures
from memgrid.tui.app.screens.zoom import SeedViewScreen


class CompareScreen(SeedViewScreen):
    """Seeds A and B at full size; `d` toggles |A - B| beside them."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,c,q", "close", "back to the grid"),
        Binding("left", "step(-1)", "previous seed"),
        Binding("right", "step(1)", "next seed"),
        Binding("tab", "switch", "other side"),
        Binding("d", "difference", "difference on/off"),
    ]

    def __init__(self, grid: Grid, pictures: Pictures, first: int = 0, second: int = 1) -> None:
        super().__init__(grid, pictures)
        count = max(len(grid.images), 1)
        self.chosen = [first % count, second % count]
        self.active = 1  # the side the arrows move
        self.with_difference = False

    def title_text(self) -> Text:
        if not self.grid.images:
            return Text(f"grid {self.grid.id}: no images")
        first, second = (self.seed_label(i) for i in self.chosen)
        difference = "on" if self.with_difference else "off"
        return Text.assemble(
            (f"grid {self.grid.id} · A {first}  vs  B {second}", "bold"),
            (f"  ←/→ change ▶ · tab other side · d difference ×{DIFF_GAIN} ({difference})", "dim"),
            (" · escape back", "dim"),
        )

    def picture(self, area: Size) -> GridPicture:
        return self.pictures.seeds(
            self.grid,
            tuple(self.chosen),
            area,
            active=self.active,
            with_difference=self.with_difference,
        )

    def action_step(self, delta: int) -> None:
        moved = self.step(self.chosen[self.active], delta)
        if moved == self.chosen[1 - self.active] and len(self.grid.images) > 2:
            moved = self.step(moved, delta)  # a seed against itself differs nowhere: skip it
        self.chosen[self.active] = moved
        self.changed()

    def action_switch(self) -> None:
        self.active = 1 - self.active
        self.changed()

    def action_difference(self) -> None:
        self.with_difference = not self.with_difference
        self.changed()
