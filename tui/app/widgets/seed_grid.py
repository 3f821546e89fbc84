"""The seed grid as half-cell thumbnails: truecolor text that works over SSH, in tmux and in
snapshots. Each cell is '▀' with the upper pixel as foreground and the lower as background.

The picture is composed off the UI thread (`compose_picture`, called by workers) into
ready Strips; the widget only hands those lines out, so a grid change costs no decoding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from memgrid.core.records import GridImage
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.events import Resize
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

UPPER_HALF = "▀"
GAP = 1  # columns between thumbnails
CAPTION_ROWS = 1
MAX_THUMB_ROWS = 12
OVERLAY_RGB = np.array([255, 40, 40], dtype=np.float32)
OVERLAY_STRENGTH = 0.65
CAPTION_STYLE = Style(color="grey62")
StyleCache = dict[tuple[int, ...], Style]
MISSING_STYLE = Style(color="grey50", bgcolor="grey15")


@dataclass(frozen=True)
class ThumbLayout:
    """How the seeds are laid out: thumbnail size in cells and thumbnails per row."""

    columns: int  # cells wide (pixels wide)
    rows: int  # cells high (pixels high / 2)
    per_row: int

    def height_for(self, seed_count: int) -> int:
        lines = -(-seed_count // self.per_row)
        return lines * (self.rows + CAPTION_ROWS)


def plan_layout(seed_count: int, area: Size, cell_budget: int) -> ThumbLayout:
    """The largest square-looking thumbnails that fit the area and the cell budget.

    A cell is about twice as high as wide, so a thumbnail `2r` columns by `r` rows shows
    `2r x 2r` pixels. The budget bounds the truecolor cells drawn per grid change, and so
    the bytes sent to the terminal (about 40 bytes a cell).
    """
    count = max(seed_count, 1)
    for rows in range(MAX_THUMB_ROWS, 0, -1):
        columns = 2 * rows
        if count * rows * columns > cell_budget:
            continue
        per_row = max(1, (area.width + GAP) // (columns + GAP))
        layout = ThumbLayout(columns, rows, min(per_row, count))
        if layout.height_for(count) <= max(area.height, 1):
            return layout
    return ThumbLayout(2, 1, max(1, min(count, (area.width + GAP) // (2 + GAP))))


@dataclass(frozen=True)
class GridPicture:
    """A grid drawn for one layout: plain lines and lines with the heat map laid over."""

    grid_id: int
    layout: ThumbLayout
    plain: tuple[Strip, ...]
    overlaid: tuple[Strip, ...] | None  # None when the grid has no heat map


def compose_picture(
    grid_id: int,
    images: Sequence[GridImage],
    pixels_of: Callable[[GridImage, int, int], np.ndarray | None],
    layout: ThumbLayout,
    heatmap: list[list[float]] | None,
) -> GridPicture:
    """Draw every seed's thumbnail into Strips (runs in a worker thread)."""
    width, height = layout.columns, layout.rows * 2
    thumbs = [pixels_of(image, width, height) for image in images]
    captions = [f"seed {image.seed}" for image in images]
    plain = _lay_out(thumbs, captions, layout)
    overlaid = None
    if heatmap:
        tinted = [None if t is None else overlay_heatmap(t, heatmap) for t in thumbs]
        overlaid = _lay_out(tinted, captions, layout)
    return GridPicture(grid_id, layout, plain, overlaid)


def overlay_heatmap(pixels: np.ndarray, heatmap: list[list[float]]) -> np.ndarray:
    """Tint each pixel towards red by how consistent its region tile is across seeds."""
    height, width = pixels.shape[:2]
    shares = np.clip(np.asarray(heatmap, dtype=np.float32), 0.0, 1.0)
    rows = (np.arange(height) * shares.shape[0]) // height
    columns = (np.arange(width) * shares.shape[1]) // width
    alpha = (shares[rows][:, columns] * OVERLAY_STRENGTH)[..., None]
    blended = pixels.astype(np.float32) * (1 - alpha) + OVERLAY_RGB * alpha
    return blended.astype(np.uint8)


def halfcell_rows(
    pixels: np.ndarray, columns: int, rows: int, styles: StyleCache | None = None
) -> list[list[Segment]]:
    """Cells of one thumbnail, centred in columns x rows; runs of one colour share a Segment."""
    styles = {} if styles is None else styles
    height, width = pixels.shape[:2]
    canvas = np.zeros((rows * 2, columns, 3), dtype=np.uint8)
    top, left = (rows * 2 - height) // 2 // 2 * 2, (columns - width) // 2
    canvas[top : top + height, left : left + width] = pixels[: rows * 2, :columns]
    lines: list[list[Segment]] = []
    for row in range(rows):
        upper, lower = canvas[2 * row].tolist(), canvas[2 * row + 1].tolist()
        segments: list[Segment] = []
        run_style, run_length = None, 0
        for column in range(columns):
            key = (*upper[column], *lower[column])
            style = styles.get(key)
            if style is None:
                style = styles[key] = _cell_style(key)
            if style is run_style:
                run_length += 1
                continue
            if run_style is not None:
                segments.append(Segment(UPPER_HALF * run_length, run_style))
            run_style, run_length = style, 1
        if run_style is not None:
            segments.append(Segment(UPPER_HALF * run_length, run_style))
        lines.append(segments)
    return lines


def _cell_style(key: tuple[int, ...]) -> Style:
    # Styles are shared within one picture only: a process-wide cache would keep tens of
    # thousands of objects alive for the garbage collector to walk on every full pass.
    r1, g1, b1, r2, g2, b2 = key
    return Style(color=Color.from_rgb(r1, g1, b1), bgcolor=Color.from_rgb(r2, g2, b2))


def _missing_rows(columns: int, rows: int) -> list[list[Segment]]:
    text = "missing".center(columns)[:columns]
    blank = " " * columns
    return [[Segment(text if row == rows // 2 else blank, MISSING_STYLE)] for row in range(rows)]


def _lay_out(
    thumbs: Sequence[np.ndarray | None], captions: Sequence[str], layout: ThumbLayout
) -> tuple[Strip, ...]:
    columns, rows = layout.columns, layout.rows
    styles: StyleCache = {}
    cells = [
        _missing_rows(columns, rows) if t is None else halfcell_rows(t, columns, rows, styles)
        for t in thumbs
    ]
    gap = Segment(" " * GAP)
    lines: list[Strip] = []
    for start in range(0, len(cells), layout.per_row):
        chunk = range(start, min(start + layout.per_row, len(cells)))
        for row in range(rows):
            segments: list[Segment] = []
            for index in chunk:
                if segments:
                    segments.append(gap)
                segments.extend(cells[index][row])
            lines.append(Strip(segments))
        caption: list[Segment] = []
        for index in chunk:
            if caption:
                caption.append(gap)
            caption.append(Segment(captions[index][:columns].center(columns), CAPTION_STYLE))
        lines.append(Strip(caption))
    return tuple(lines)


class SeedGrid(Widget):
    """Shows a composed GridPicture; `overlay` switches to the heat-map tinted lines."""

    DEFAULT_CSS = """
    SeedGrid { width: 1fr; height: 1fr; }
    """

    overlay: reactive[bool] = reactive(False)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.picture: GridPicture | None = None
        self.message = "Loading…"
        # The area thumbnails may use, read by worker threads to plan the next picture.
        self.area = Size(108, 40)

    def show(self, picture: GridPicture | None, message: str = "") -> None:
        self.picture = picture
        self.message = message
        self.refresh()

    class Resized(Message):
        """The area changed: pictures drawn for the old one may no longer fit."""

    def on_resize(self, event: Resize) -> None:
        # Kept here: render_line must not ask for self.size (a compositor lookup per line).
        changed = event.size != self.area
        self.area = event.size
        if changed:
            self.post_message(self.Resized())

    def watch_overlay(self) -> None:
        self.refresh()

    @property
    def lines(self) -> tuple[Strip, ...]:
        if self.picture is None:
            return ()
        if self.overlay and self.picture.overlaid is not None:
            return self.picture.overlaid
        return self.picture.plain

    def render_line(self, y: int) -> Strip:
        width = self.area.width
        lines = self.lines
        if self.picture is None:
            text = self.message if y == 0 else ""
            return Strip([Segment(text[:width])]).extend_cell_length(width)
        if y < len(lines):
            return lines[y].crop_extend(0, width, None)
        return Strip.blank(width)
