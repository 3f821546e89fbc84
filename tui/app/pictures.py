"""Seed-grid pictures ready to draw: thumbnails composed into Strips, kept for a few grids.

Workers call `picture` (for the grid to show next and the prefetched ones); the UI thread
only reads finished pictures, so a grid change never decodes or resizes an image there.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from memgrid.core.records import Grid
from memgrid.tui.app.thumbnails import ThumbnailCache
from memgrid.tui.app.widgets.seed_grid import GridPicture, ThumbLayout, compose_picture, plan_layout
from textual.geometry import Size

KEEP_PICTURES = 12


class Pictures:
    """Composed pictures by grid and layout, made off the UI thread, least recent dropped."""

    def __init__(self, thumbnails: ThumbnailCache, cell_budget: int) -> None:
        self.thumbnails = thumbnails
        self.cell_budget = cell_budget
        self._pictures: OrderedDict[tuple[int, ThumbLayout, bool], GridPicture] = OrderedDict()
        self._lock = threading.Lock()

    def layout_for(self, grid: Grid, area: Size) -> ThumbLayout:
        return plan_layout(len(grid.images), area, self.cell_budget)

    def picture(self, grid: Grid, heatmap: list[list[float]] | None, area: Size) -> GridPicture:
        layout = self.layout_for(grid, area)
        key = (grid.id, layout, heatmap is not None)
        with self._lock:
            found = self._pictures.get(key)
            if found is not None:
                self._pictures.move_to_end(key)
                return found
        made = compose_picture(grid.id, grid.images, self.thumbnails.pixels, layout, heatmap)
        with self._lock:
            self._pictures[key] = made
            while len(self._pictures) > KEEP_PICTURES:
                self._pictures.popitem(last=False)
        return made
