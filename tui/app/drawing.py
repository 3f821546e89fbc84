"""Pictures of seed tiles, composed off the UI thread for one protocol and one layout.

A picture is lines of text and half-cell pixels (line_output.py writes them as terminal
output or as Strips) plus, for Sixel and iTerm2, image data to write at tile positions,
and for Kitty, images to send ahead. Half-cell draws each cell as '▀' with the upper pixel
as foreground and the lower as background: truecolor text that works everywhere, in tmux
and in snapshots. The widget (widgets/seed_grid.py) only hands out what is composed here,
so a grid change decodes, encodes and formats nothing on the UI thread.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from rich.color import Color, ColorSystem
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.strip import Strip

from memgrid.tui.app.graphics import (
    BACKDROP_RGB,
    MAX_GRAPHIC_CELLS,
    KittyImages,
    iterm2_sequence,
    kitty_pixels,
    kitty_placeholder_rows,
    png_bytes,
    sixel_sequence,
)
from memgrid.tui.app.grid_layout import GAP, GridLayout
from memgrid.tui.app.line_output import (
    Cells,
    Piece,
    RawWriter,
    StyleCache,
    cell_segments,
    strip_line,
)

HALFCELL, SIXEL, KITTY, ITERM2 = "halfcell", "sixel", "kitty", "iterm2"
PROTOCOLS = (HALFCELL, SIXEL, KITTY, ITERM2)
HALFCELL_CELL_PIXELS = (1, 2)
BACKDROP = Style(bgcolor=Color.from_rgb(*BACKDROP_RGB))
CAPTION_STYLE = Style(color=Color.from_rgb(160, 160, 160), bgcolor=Color.from_rgb(*BACKDROP_RGB))
MISSING_STYLE = Style(color=Color.from_rgb(128, 128, 128), bgcolor=Color.from_rgb(38, 38, 38))
Caption = tuple[tuple[str, Style], ...]
PixelSource = Callable[[int, int], "np.ndarray | None"]
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="memgrid-paint")


@dataclass(frozen=True)
class TileSpec:
    """One tile to draw: what identifies its pixels, how to get them at a size, its caption."""

    key: Hashable
    pixels: PixelSource  # the image fitted inside width x height pixels, or None if missing
    caption: Caption


@dataclass(frozen=True)
class PlacedGraphic:
    """Sixel or iTerm2 data to write with its top-left at cell (x, y) of the picture."""

    x: int
    y: int
    data: str


@dataclass(frozen=True)
class KittyImage:
    """A Kitty image to send before the picture is shown (see graphics.KittyImages)."""

    image_id: int
    data: bytes  # zlib-compressed RGB
    size: tuple[int, int]  # pixels
    columns: int
    rows: int


@dataclass(frozen=True, eq=False)
class GridPicture:
    """A grid drawn for one layout and protocol, ready for the SeedGrid widget."""

    grid_id: int
    layout: GridLayout
    protocol: str
    pieces: tuple[list[Piece], ...]  # every line, `width` cells long
    width: int
    # Line index -> images written when that line is drawn (the caption line under them,
    # so the image rows above are already on screen).
    graphics: Mapping[int, tuple[PlacedGraphic, ...]] = field(default_factory=dict)
    kitty: tuple[KittyImage, ...] = ()
    # The lines as terminal output (line_output.RawWriter): colour codes between unstyled
    # characters; None when the app's colour system was not known.
    raw: tuple[Strip, ...] | None = None
    # The widget area it was drawn for: shown in another, it is drawn again.
    area: Size | None = None

    @cached_property
    def lines(self) -> tuple[Strip, ...]:
        """The lines as Strips of styled cells, made when first asked for."""
        styles: StyleCache = {}
        return tuple(strip_line(pieces, self.width, styles) for pieces in self.pieces)

    @property
    def pixel_size(self) -> tuple[int, int]:
        return self.layout.box_pixels


@dataclass
class _Painted:
    rows: list[list[Piece]]
    columns: int
    graphic: str = ""
    kitty: KittyImage | None = None


class Painter:
    """Draws one tile's image for a protocol: text rows, plus data for the graphics ones."""

    def __init__(
        self,
        protocol: str,
        cell_pixels: tuple[int, int] = HALFCELL_CELL_PIXELS,
        kitty_images: KittyImages | None = None,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}")
        self.protocol = protocol
        self.cell_pixels = HALFCELL_CELL_PIXELS if protocol == HALFCELL else cell_pixels
        self.kitty_images = kitty_images

    @property
    def graphic(self) -> bool:
        return self.protocol != HALFCELL

    def fit(self, layout: GridLayout) -> GridLayout:
        """The layout with this protocol's cell size, tiles no larger than Kitty can number."""
        width, height = layout.tile_width, layout.tile_height
        if self.protocol == KITTY:
            width, height = min(width, MAX_GRAPHIC_CELLS), min(height, MAX_GRAPHIC_CELLS)
        return GridLayout(layout.columns, layout.rows, width, height, self.cell_pixels)

    def paint(self, spec: TileSpec, layout: GridLayout, aspect: float) -> _Painted | None:
        """The tile's image, or None when it is missing."""
        fitted = layout.fitted_pixels(aspect)
        pixels = spec.pixels(*fitted) if fitted[0] and fitted[1] else None
        if pixels is None:
            return None
        height, width = pixels.shape[:2]
        columns, rows = layout.cells_for((width, height))
        cell_width, cell_height = self.cell_pixels
        padded = pad(pixels, columns * cell_width, rows * cell_height)
        if self.protocol == HALFCELL:
            cells = [[Cells(padded[2 * r], padded[2 * r + 1])] for r in range(rows)]
            return _Painted(cells, columns)  # type: ignore[arg-type]
        blank = [[Segment(" " * columns, BACKDROP)] for _ in range(rows)]
        if self.protocol == SIXEL:
            return _Painted(blank, columns, graphic=sixel_sequence(padded, columns, rows))
        size = (columns * cell_width, rows * cell_height)
        if self.protocol == ITERM2:
            sequence = iterm2_sequence(png_bytes(padded), *size)
            return _Painted(blank, columns, graphic=sequence)
        assert self.kitty_images is not None, "Kitty drawing needs the image registry"
        image_id = self.kitty_images.id_for((spec.key, columns, rows))
        placeholders = [[segment] for segment in kitty_placeholder_rows(image_id, columns, rows)]
        image = KittyImage(image_id, kitty_pixels(padded), size, columns, rows)
        return _Painted(placeholders, columns, kitty=image)


def pad(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """The image centred on a width x height backdrop (cropped if larger)."""
    source_height, source_width = pixels.shape[:2]
    if (source_width, source_height) == (width, height):
        return pixels
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[:] = BACKDROP_RGB
    top, left = max(0, (height - source_height) // 2), max(0, (width - source_width) // 2)
    part = pixels[: height - top, : width - left]
    canvas[top : top + part.shape[0], left : left + part.shape[1]] = part
    return canvas


def compose_picture(
    grid_id: int,
    specs: Sequence[TileSpec],
    layout: GridLayout,
    painter: Painter,
    aspect: float = 1.0,
    area: Size | None = None,
    color_system: ColorSystem | None = None,
) -> GridPicture:
    """Draw every tile and lay the tiles out in lines (runs in a worker thread).

    Lines are padded to the width of `area` (the widget's) and, with the app's `color_system`, written
    as terminal output here (line_output.py). Graphics tiles are painted on a small pool:
    decoding, resizing and compressing release the GIL, so a grid's images are ready in
    about half the time on two cores.
    """
    if painter.graphic:
        painted = list(_POOL.map(lambda spec: painter.paint(spec, layout, aspect), specs))
    else:
        painted = [painter.paint(spec, layout, aspect) for spec in specs]
    width = max(area.width if area else 0, layout.width)
    lines: list[list[Piece]] = []
    graphics: dict[int, tuple[PlacedGraphic, ...]] = {}
    gap = Segment(" " * GAP, BACKDROP)
    for start in range(0, len(specs), layout.columns):
        chunk = range(start, min(start + layout.columns, len(specs)))
        placed_rows = [_placed_rows(painted[i], layout) for i in chunk]
        used = len(chunk) * (layout.tile_width + GAP) - GAP  # a last row may be short
        for row in range(layout.tile_height):
            pieces: list[Piece] = []
            for rows in placed_rows:
                if pieces:
                    pieces.append(gap)
                pieces.extend(rows[row])
            lines.append(_padded(pieces, used, width))
        caption: list[Piece] = []
        for index in chunk:
            if caption:
                caption.append(gap)
            caption.extend(_caption_segments(specs[index].caption, layout.tile_width))
        placed = []
        for index in chunk:
            tile = painted[index]
            if tile is not None and tile.graphic:
                x, y = layout.origin(index)
                left, top = _offsets(tile, layout)
                placed.append(PlacedGraphic(x + left, y + top, tile.graphic))
        if placed:
            graphics[len(lines)] = tuple(placed)
        lines.append(_padded(caption, used, width))
    kitty = tuple(tile.kitty for tile in painted if tile is not None and tile.kitty is not None)
    raw = None
    if color_system is not None:
        writer = RawWriter(color_system)
        raw = tuple(writer.line(pieces, width) for pieces in lines)
    return GridPicture(
        grid_id, layout, painter.protocol, tuple(lines), width, graphics, kitty, raw, area
    )


def _padded(pieces: list[Piece], used: int, width: int) -> list[Piece]:
    """A line of `used` cells padded to `width` with the backdrop."""
    if width > used:
        pieces.append(Segment(" " * (width - used), BACKDROP))
    return pieces


def _offsets(tile: _Painted, layout: GridLayout) -> tuple[int, int]:
    return (layout.tile_width - tile.columns) // 2, (layout.tile_height - len(tile.rows)) // 2


def _placed_rows(tile: _Painted | None, layout: GridLayout) -> list[list[Piece]]:
    """The tile's rows centred in its box, blank around the image."""
    width, height = layout.tile_width, layout.tile_height
    if tile is None:
        text = "missing".center(width)[:width]
        blank = " " * width
        return [
            [Segment(text if r == height // 2 else blank, MISSING_STYLE)] for r in range(height)
        ]
    left, top = _offsets(tile, layout)
    right = width - left - tile.columns
    blank_row = [Segment(" " * width, BACKDROP)]
    rows: list[list[Piece]] = [blank_row] * top  # type: ignore[list-item]
    for cells in tile.rows:
        row: list[Piece] = [Segment(" " * left, BACKDROP)] if left else []
        row.extend(cells)
        if right:
            row.append(Segment(" " * right, BACKDROP))
        rows.append(row)
    rows.extend([blank_row] * (height - len(rows)))
    return rows


def _caption_segments(caption: Caption, width: int) -> list[Segment]:
    """The caption centred in `width` cells, cut at the end when it does not fit."""
    segments, used = [], 0
    for text, style in caption:
        text = text[: max(0, width - used)]
        if text:
            segments.append(Segment(text, style))
            used += len(text)
    left = (width - used) // 2
    padded = [Segment(" " * left, BACKDROP)] if left else []
    padded.extend(segments)
    if width - used - left:
        padded.append(Segment(" " * (width - used - left), BACKDROP))
    return padded


def halfcell_rows(
    pixels: np.ndarray, columns: int, rows: int, styles: StyleCache | None = None
) -> list[list[Segment]]:
    """Segments of an image of exactly columns x 2*rows pixels, row by row."""
    styles = {} if styles is None else styles
    return [cell_segments(Cells(pixels[2 * r], pixels[2 * r + 1]), styles) for r in range(rows)]
