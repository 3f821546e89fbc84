"""Seed-grid pictures ready to draw: tiles composed for a layout and protocol, kept for a few grids.

Workers call `grid` (for the grid to show next and the prefetched ones), `seeds` (zoom)
and `compare`; the UI thread only reads finished pictures, so a grid change never decodes,
resizes or encodes an image there. With Kitty graphics, `send` transmits a picture's images
as soon as it is composed: the prefetched grids' images are in the terminal before their
label key is pressed, and showing them is a few kilobytes of placeholder text.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence

import numpy as np
from rich.color import Color, ColorSystem
from rich.style import Style
from textual.geometry import Size

from memgrid.core.records import Grid, GridImage
from memgrid.tui.app.drawing import (
    CAPTION_STYLE,
    Caption,
    GridPicture,
    Painter,
    PixelSource,
    TileSpec,
    compose_picture,
)
from memgrid.tui.app.evidence import (
    DIFF_GAIN,
    GROUP_NAMES,
    GROUP_RGB,
    Evidence,
    difference,
    heatmap_pixels,
    outline_region,
)
from memgrid.tui.app.graphics import KittyImages
from memgrid.tui.app.grid_layout import GridLayout, plan_layout
from memgrid.tui.app.thumbnails import ThumbnailCache

KEEP_PICTURES = 12
HEAT_TILE_CAPTION: Caption = (("heat map", Style(color=Color.from_rgb(230, 120, 60), bold=True)),)
ACTIVE_MARK = "▶ "
HeatMapRows = Sequence[Sequence[float]]


def group_style(number: int) -> Style:
    return Style(color=Color.from_rgb(*GROUP_RGB[number % len(GROUP_RGB)]), bold=True)


def seed_caption(image: GridImage, group: int | None) -> Caption:
    caption: Caption = ((f"seed {image.seed}", CAPTION_STYLE),)
    if group is not None:
        caption += ((f" ◆{GROUP_NAMES[group % len(GROUP_NAMES)]}", group_style(group)),)
    return caption


def image_aspect(images: Sequence[GridImage]) -> float:
    sized = [image for image in images if image.width > 0 and image.height > 0]
    return sized[0].width / sized[0].height if sized else 1.0


class Pictures:
    """Composed pictures by what they show and their layout, least recent dropped."""

    def __init__(
        self,
        thumbnails: ThumbnailCache,
        painter: Painter,
        *,
        max_cells: int = 0,
        kitty_images: KittyImages | None = None,
    ) -> None:
        self.thumbnails = thumbnails
        self.painter = painter
        self.max_cells = max_cells
        self.kitty_images = kitty_images
        # The app's colour system, set once the app is built: escape codes are worked out
        # with the picture, off the UI thread.
        self.color_system: ColorSystem | None = None
        self._pictures: OrderedDict[Hashable, GridPicture] = OrderedDict()
        self._lock = threading.Lock()

    def layout_for(self, count: int, area: Size, aspect: float) -> GridLayout:
        cells = self.max_cells if not self.painter.graphic else 0
        layout = plan_layout(
            count,
            area.width,
            area.height,
            cell_pixels=self.painter.cell_pixels,
            aspect=aspect,
            max_cells=cells,
        )
        return self.painter.fit(layout)

    def grid(
        self, grid: Grid, evidence: Evidence, area: Size, heatmap: HeatMapRows | None = None
    ) -> GridPicture:
        """The grid's seeds with their marks, and the heat map as one more tile when given."""
        specs = [
            TileSpec(
                (image.sha256, evidence.key),
                self._marked(image, evidence),
                seed_caption(image, evidence.group_of(index)),
            )
            for index, image in enumerate(grid.images)
        ]
        if heatmap:
            heat_key = ("heat", tuple(map(tuple, heatmap)), evidence.key)
            specs.append(TileSpec(heat_key, self._heat(heatmap, evidence), HEAT_TILE_CAPTION))
        return self._compose(grid.id, specs, area, image_aspect(grid.images))

    def seeds(
        self,
        grid: Grid,
        indices: Sequence[int],
        area: Size,
        *,
        active: int | None = None,
        with_difference: bool = False,
    ) -> GridPicture:
        """Chosen seeds at full size, unmarked (zoom: one; compare: two, the one that the
        arrows move marked `active`, and with `with_difference` their amplified difference).
        """
        specs = []
        for position, index in enumerate(indices):
            image = grid.images[index]
            caption = seed_caption(image, None)
            if active is not None:
                mark = ACTIVE_MARK if position == active else " " * len(ACTIVE_MARK)
                caption = ((mark, CAPTION_STYLE), *caption)
            specs.append(TileSpec((image.sha256,), self._plain(image), caption))
        if with_difference and len(indices) == 2:
            first, second = (grid.images[i] for i in indices)
            specs.append(
                TileSpec(
                    ("difference", first.sha256, second.sha256),
                    self._difference(first, second),
                    ((f"|A−B| ×{DIFF_GAIN}", CAPTION_STYLE),),
                )
            )
        return self._compose(grid.id, specs, area, image_aspect(grid.images))

    def send(self, picture: GridPicture) -> None:
        """Put a picture's Kitty images in the terminal (a no-op for the other protocols)."""
        if self.kitty_images is None:
            return
        for image in picture.kitty:
            self.kitty_images.send(
                image.image_id, image.data, image.size, image.columns, image.rows
            )

    # ---- helpers ---------------------------------------------------------------------

    def _compose(
        self, grid_id: int, specs: list[TileSpec], area: Size, aspect: float
    ) -> GridPicture:
        layout = self.layout_for(len(specs), area, aspect)
        key = (grid_id, tuple((spec.key, spec.caption) for spec in specs), layout, area)
        with self._lock:
            made = self._pictures.get(key)
            if made is not None:
                self._pictures.move_to_end(key)
        if made is None:
            made = compose_picture(
                grid_id, specs, layout, self.painter, aspect, area, self.color_system
            )
            with self._lock:
                self._pictures[key] = made
                while len(self._pictures) > KEEP_PICTURES:
                    self._pictures.popitem(last=False)
        self.send(made)  # again for a kept picture: the terminal may have dropped its images
        return made

    def _plain(self, image: GridImage) -> PixelSource:
        def pixels(width: int, height: int) -> np.ndarray | None:
            return self.thumbnails.pixels(image, width, height)

        return pixels

    def _marked(self, image: GridImage, evidence: Evidence) -> PixelSource:
        def pixels(width: int, height: int) -> np.ndarray | None:
            fitted = self.thumbnails.pixels(image, width, height)
            if fitted is None:
                return None
            return outline_region(fitted, evidence.region_tiles, evidence.region_grid)

        return pixels

    def _difference(self, first: GridImage, second: GridImage) -> PixelSource:
        def pixels(width: int, height: int) -> np.ndarray | None:
            left = self.thumbnails.pixels(first, width, height)
            right = self.thumbnails.pixels(second, width, height)
            return None if left is None or right is None else difference(left, right)[0]

        return pixels

    def _heat(self, heatmap: HeatMapRows, evidence: Evidence) -> PixelSource:
        def pixels(width: int, height: int) -> np.ndarray:
            side = min(width, height)
            drawn = heatmap_pixels(heatmap, side, side)
            return outline_region(drawn, evidence.region_tiles, evidence.region_grid)

        return pixels
