"""Where the seeds go: the tile grid that gives each seed the most picture for the window.

A tile is an image box of `tile_width` x `tile_height` cells with a caption row under it;
tiles sit `GAP` columns apart. Every choice of columns is tried and the one whose seeds
show the most pixels wins (docs/design.md, "The annotation app"): 8 seeds at 160 x 50 are
4 x 2, not 5 + 3. Cell sizes in pixels make the comparison fair between half-cell drawing
(1 x 2 "pixels" a cell) and the graphics protocols (the terminal's real cell size).
"""

from __future__ import annotations

from dataclasses import dataclass

GAP = 1  # columns between tiles
CAPTION_ROWS = 1
# Layouts within this share of the best area count as equal; the one with the fewest empty
# slots is taken then, so a full rectangle beats a ragged last row for a sliver of area.
AREA_TOLERANCE = 0.04


@dataclass(frozen=True)
class GridLayout:
    """Tiles per row and per column, each tile's image box in cells, and a cell in pixels."""

    columns: int
    rows: int
    tile_width: int  # cells
    tile_height: int  # cells, caption row not included
    cell_pixels: tuple[int, int] = (1, 2)

    @property
    def box_pixels(self) -> tuple[int, int]:
        """The pixels an image may fill in one tile."""
        return (self.tile_width * self.cell_pixels[0], self.tile_height * self.cell_pixels[1])

    @property
    def width(self) -> int:
        return self.columns * self.tile_width + (self.columns - 1) * GAP

    @property
    def height(self) -> int:
        return self.rows * (self.tile_height + CAPTION_ROWS)

    def origin(self, index: int) -> tuple[int, int]:
        """Top-left cell of tile `index` (row-major)."""
        row, column = divmod(index, self.columns)
        return column * (self.tile_width + GAP), row * (self.tile_height + CAPTION_ROWS)

    def fitted_pixels(self, aspect: float) -> tuple[int, int]:
        """An image of width/height `aspect` fitted inside one tile's box, in pixels."""
        return fit_inside(self.box_pixels, aspect)

    def cells_for(self, pixels: tuple[int, int]) -> tuple[int, int]:
        """The cells an image of `pixels` covers (rounded up, at most the tile)."""
        cell_width, cell_height = self.cell_pixels
        columns = min(self.tile_width, -(-pixels[0] // cell_width))
        rows = min(self.tile_height, -(-pixels[1] // cell_height))
        return max(columns, 1), max(rows, 1)


def fit_inside(box: tuple[int, int], aspect: float) -> tuple[int, int]:
    """The largest width x height with width/height = `aspect` inside `box`."""
    width, height = box
    if width <= 0 or height <= 0:
        return (0, 0)
    if width / height > aspect:
        return max(1, round(height * aspect)), height
    return width, max(1, round(width / aspect))


def plan_layout(
    count: int,
    width: int,
    height: int,
    *,
    cell_pixels: tuple[int, int] = (1, 2),
    aspect: float = 1.0,
    max_cells: int = 0,
) -> GridLayout:
    """The tile grid for `count` seeds in `width` x `height` cells that shows them largest.

    `max_cells` (0: no limit) caps the cells all image boxes use together: the half-cell
    bytes sent per grid change grow with it, which matters on a slow link.
    """
    count = max(count, 1)
    best: tuple[float, int, GridLayout] | None = None
    for columns in range(1, count + 1):
        rows = -(-count // columns)
        tile_width = (width - (columns - 1) * GAP) // columns
        tile_height = height // rows - CAPTION_ROWS
        if tile_width < 1 or tile_height < 1:
            continue
        layout = GridLayout(columns, rows, tile_width, tile_height, cell_pixels)
        layout = _within_budget(layout, count, aspect, max_cells)
        image_width, image_height = layout.fitted_pixels(aspect)
        area = image_width * image_height / (cell_pixels[0] * cell_pixels[1])  # in cells
        empty = columns * rows - count
        if best is None or _better(area, empty, best[0], best[1]):
            best = (area, empty, layout)
    if best is None:  # a window too small for any tile: one cell each, clipped
        return GridLayout(count, 1, 1, 1, cell_pixels)
    return best[2]


def _better(area: float, empty: int, best_area: float, best_empty: int) -> bool:
    if area > best_area * (1 + AREA_TOLERANCE):
        return True
    if area >= best_area * (1 - AREA_TOLERANCE):
        return empty < best_empty or (empty == best_empty and area > best_area)
    return False


def _within_budget(layout: GridLayout, count: int, aspect: float, max_cells: int) -> GridLayout:
    """The layout with its tiles shrunk (aspect kept) until the seeds use at most max_cells."""
    if max_cells <= 0:
        return layout
    while layout.tile_width > 1 and layout.tile_height > 1:
        columns, rows = layout.cells_for(layout.fitted_pixels(aspect))
        if count * columns * rows <= max_cells:
            break
        layout = GridLayout(
            layout.columns,
            layout.rows,
            layout.tile_width - 1,
            max(1, round((layout.tile_width - 1) * layout.tile_height / layout.tile_width)),
            layout.cell_pixels,
        )
    return layout
