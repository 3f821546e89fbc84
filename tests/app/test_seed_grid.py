"""The grid layout gives each seed the most picture; tiles are drawn with their marks."""

from __future__ import annotations

import re

import numpy as np
import pytest
from rich.color import Color, ColorSystem
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.strip import Strip

from memgrid.core.records import Feature, GridImage, Proposal, Score
from memgrid.core.taxonomy import Category
from memgrid.tui.app.drawing import (
    BACKDROP,
    CAPTION_STYLE,
    HALFCELL,
    SIXEL,
    Painter,
    TileSpec,
    compose_picture,
    halfcell_rows,
)
from memgrid.tui.app.evidence import OUTLINE_RGB, difference, evidence_from, outline_region
from memgrid.tui.app.grid_layout import GAP, plan_layout
from memgrid.tui.app.line_output import UPPER_HALF, Cells, RawWriter, strip_line
from memgrid.tui.app.pictures import seed_caption
from memgrid.tui.app.widgets.evidence_bar import describe_marks


def test_eight_seeds_at_160_by_50_are_four_by_two() -> None:
    layout = plan_layout(8, 160, 42)
    assert (layout.columns, layout.rows) == (4, 2)
    assert layout.tile_width >= 36 and layout.tile_height >= 20


@pytest.mark.parametrize(("width", "height"), [(160, 42), (124, 42), (100, 22), (220, 52)])
def test_sixteen_seeds_get_at_least_the_larger_of_four_by_four_and_eight_by_two(
    width: int, height: int
) -> None:
    layout = plan_layout(16, width, height)
    chosen = layout.fitted_pixels(1.0)[0]

    def side(columns: int, rows: int) -> int:
        tile_width = (width - (columns - 1) * GAP) // columns
        return min(tile_width, 2 * (height // rows - 1))

    assert chosen >= max(side(4, 4), side(8, 2))


@pytest.mark.parametrize("seeds", [1, 2, 3, 4, 8, 9, 16, 32, 64])
@pytest.mark.parametrize(("width", "height"), [(64, 22), (124, 42), (220, 52)])
def test_layout_fits_the_area_and_holds_every_seed(seeds: int, width: int, height: int) -> None:
    layout = plan_layout(seeds, width, height)
    assert layout.columns * layout.rows >= seeds
    assert layout.width <= width and layout.height <= height


def test_a_cell_cap_shrinks_the_tiles_not_the_count() -> None:
    free = plan_layout(16, 160, 42)
    capped = plan_layout(16, 160, 42, max_cells=1300)
    columns, rows = capped.cells_for(capped.fitted_pixels(1.0))
    assert 16 * columns * rows <= 1300
    assert capped.columns * capped.rows >= 16
    assert capped.fitted_pixels(1.0) < free.fitted_pixels(1.0)


def test_real_cell_sizes_plan_in_pixels() -> None:
    layout = plan_layout(8, 160, 42, cell_pixels=(10, 20))
    assert layout.box_pixels == (layout.tile_width * 10, layout.tile_height * 20)
    width, height = layout.fitted_pixels(1.0)
    assert width == height and width <= layout.box_pixels[0] and height <= layout.box_pixels[1]


def test_halfcell_rows_put_upper_pixels_in_front_and_lower_behind() -> None:
    pixels = np.zeros((2, 2, 3), dtype=np.uint8)
    pixels[0] = (255, 0, 0)
    pixels[1] = (0, 0, 255)
    (row,) = halfcell_rows(pixels, 2, 1)
    (segment,) = row  # one run: both cells share their colours
    assert segment.text == UPPER_HALF * 2
    assert segment.style.color.triplet == (255, 0, 0)
    assert segment.style.bgcolor.triplet == (0, 0, 255)


def test_the_region_is_outlined_not_filled() -> None:
    pixels = np.full((80, 80, 3), 100, dtype=np.uint8)
    marked = outline_region(pixels, frozenset({0, 1}), grid=4)  # the top-left 40 x 20 pixels
    outline = np.all(marked == OUTLINE_RGB, axis=2)
    assert outline[0, :40].all() and outline[19, :40].all()  # top and bottom edges
    assert outline[:20, 0].all() and outline[:20, 39].all()  # left and right edges
    assert not outline[10, 20]  # inside the region: the image as it was
    assert not outline[1:19, 19:21].any()  # the edge between the two region tiles is not drawn
    assert (marked[40:, :] == 100).all()


def test_the_difference_is_amplified_and_measured() -> None:
    first = np.full((4, 4, 3), 100, dtype=np.uint8)
    second = first.copy()
    second[0, 0] = (110, 100, 100)
    amplified, mean = difference(first, second)
    assert tuple(amplified[0, 0]) == (40, 0, 0) and not amplified[1:].any()
    assert mean == pytest.approx(10 / 255 / 48)


def test_picture_has_captions_and_a_placeholder_for_missing_images() -> None:
    images = [GridImage(seed, f"p{seed}", f"s{seed}", 8, 8) for seed in (3, 9)]

    def pixels_of(image: GridImage):
        def pixels(width: int, height: int) -> np.ndarray | None:
            return None if image.seed == 9 else np.full((height, width, 3), 50, dtype=np.uint8)

        return pixels

    specs = [
        TileSpec(
            image.sha256, pixels_of(image), seed_caption(image, 0 if image.seed == 3 else None)
        )
        for image in images
    ]
    layout = plan_layout(2, 80, 40)
    picture = compose_picture(1, specs, layout, Painter(HALFCELL))
    text = "\n".join(line.text for line in picture.lines)
    assert "seed 3 ◆A" in text and "seed 9" in text and "missing" in text
    assert max(line.cell_length for line in picture.lines) <= 80 and len(picture.lines) <= 40
    assert picture.graphics == {} and picture.kitty == ()


def test_sixel_tiles_are_placed_at_their_corner_by_their_caption_line() -> None:
    images = [GridImage(seed, f"p{seed}", f"s{seed}", 8, 8) for seed in range(3)]
    painter = Painter(SIXEL, (10, 20))
    specs = [
        TileSpec(i.sha256, lambda w, h: np.full((h, w, 3), 90, np.uint8), seed_caption(i, None))
        for i in images
    ]
    layout = painter.fit(plan_layout(3, 90, 30, cell_pixels=(10, 20)))
    picture = compose_picture(1, specs, layout, painter)
    (caption_line,) = picture.graphics
    assert "seed 0" in picture.lines[caption_line].text
    placed = picture.graphics[caption_line]
    assert [g.x for g in placed] == [layout.origin(i)[0] for i in range(3)]
    assert all(g.data.startswith("\x1bP") for g in placed)


def test_evidence_comes_from_the_region_metric_and_the_first_pixel_metric_with_groups() -> None:
    region = {"region_tiles": [0, 1], "region_grid": 8, "cliques": []}
    scores = [
        Score(1, "tiled-l2", {}, "1", region),
        Score(1, "sscd", {}, "1", {}, available=False, note="no weights"),
        Score(1, "phash", {}, "1", {"cliques": [[2, 5, 6], [0, 1]]}),
    ]
    evidence = evidence_from(scores)
    assert evidence.region_tiles == {0, 1} and evidence.region_grid == 8
    assert evidence.groups == ((2, 5, 6), (0, 1)) and evidence.group_metric == "phash"
    assert evidence.group_of(5) == 0 and evidence.group_of(1) == 1 and evidence.group_of(3) is None
    assert evidence_from([]) == evidence_from([Score(1, "clip", {}, "1", {"cliques": [[0, 1]]})])


def cells_of_terminal_output(text: str) -> list[tuple[str, tuple, tuple]]:
    """Each printed character with the colours in force, from SGR sequences."""
    state: dict[str, tuple] = {"fg": (), "bg": ()}
    cells = []
    for match in re.finditer(r"\x1b\[([0-9;]*)m|(.)", text):
        if match.group(2) is not None:
            cells.append((match.group(2), state["fg"], state["bg"]))
            continue
        codes = [int(c) for c in match.group(1).split(";") if c] or [0]
        while codes:
            code = codes.pop(0)
            if code == 0:
                state = {"fg": (), "bg": ()}
            elif code in (39, 49):
                state["fg" if code == 39 else "bg"] = ()
            elif code in (38, 48):
                kind = codes.pop(0)
                value = tuple(codes[:3]) if kind == 2 else (codes[0],)
                del codes[: 3 if kind == 2 else 1]
                state["fg" if code == 38 else "bg"] = value
    return cells


def written(line: Strip) -> str:
    """What Textual writes for a line: styled Segments with their codes, the rest as is."""
    return "".join(
        Strip.render_style(seg.style, seg.text, ColorSystem.TRUECOLOR)
        if seg.style and not seg.control
        else seg.text
        for seg in line
    )


def test_terminal_output_of_a_line_shows_the_same_cells_as_its_strip() -> None:
    rng = np.random.default_rng(3)
    upper = rng.integers(0, 4, (12, 3), dtype=np.uint8) * 60  # some neighbours repeat
    lower = rng.integers(0, 4, (12, 3), dtype=np.uint8) * 60
    pieces = [
        Segment("ab", CAPTION_STYLE),
        Cells(upper, lower),
        Segment("  ", BACKDROP),
        Segment("◆A", Style(color=Color.from_rgb(80, 200, 255), bold=True)),
        Segment("c", CAPTION_STYLE),
    ]
    strip = strip_line(pieces, 18, {})
    raw = RawWriter(ColorSystem.TRUECOLOR).line(pieces, 18)
    expected = [
        (
            ch,
            seg.style.color.triplet if seg.style.color else None,
            seg.style.bgcolor.triplet if seg.style.bgcolor else None,
        )
        for seg in strip
        for ch in seg.text
    ]
    shown = [
        (ch, tuple(fg) or None, tuple(bg) or None)
        for ch, fg, bg in cells_of_terminal_output(written(raw))
    ]
    assert shown == [(ch, fg and tuple(fg), bg and tuple(bg)) for ch, fg, bg in expected]
    # A colour is written only when it changes: fewer sequences and bytes than Textual
    # writing the Strip (a style and a reset per segment).
    assert written(raw).count("\x1b[") < written(strip).count("\x1b[")
    assert len(written(raw)) < len(written(strip))
    assert raw.text.endswith("\x1b[0m") and strip.cell_length == 18


def test_a_line_of_terminal_output_cut_by_another_widget_keeps_each_cell_in_place() -> None:
    # Textual cuts a line where another widget (a notification) covers part of it.
    upper = np.full((10, 3), 200, dtype=np.uint8)
    lower = np.zeros((10, 3), dtype=np.uint8)
    pieces = [Segment("ab", CAPTION_STYLE), Cells(upper, lower), Segment("cd", BACKDROP)]
    raw = RawWriter(ColorSystem.TRUECOLOR).line(pieces, 14)
    left, middle, right = raw.divide([4, 9, 14])
    shown = [re.sub(r"\x1b\[[0-9;]*m", "", part.text) for part in (left, middle, right)]
    assert shown == ["ab▀▀", "▀▀▀▀▀", "▀▀▀cd"]
    assert [part.cell_length for part in (left, middle, right)] == [4, 5, 5]


def test_every_line_fills_the_area_even_where_the_last_row_is_short() -> None:
    # Cells left unwritten keep what the previous grid drew there (as a 5 + 4 layout did).
    images = [GridImage(seed, f"p{seed}", f"s{seed}", 8, 8) for seed in range(5)]
    specs = [
        TileSpec(i.sha256, lambda w, h: np.full((h, w, 3), 90, np.uint8), seed_caption(i, None))
        for i in images
    ]
    area = Size(100, 40)
    layout = plan_layout(5, area.width, area.height)
    assert len(specs) % layout.columns  # the last row has empty slots
    picture = compose_picture(1, specs, layout, Painter(HALFCELL), area=area)
    painted = [
        sum(len(p.text) if isinstance(p, Segment) else len(p.upper) for p in line)
        for line in picture.pieces
    ]
    assert set(painted) == {100}
    assert {line.cell_length for line in picture.lines} == {100}


def test_a_mark_only_the_proposal_places_is_outlined_and_named_so() -> None:
    # The demo's watermark: keypoints place it, the 8x8 map finds no region. The outline
    # and the bar used to say "no fixed region" under a proposal of a fixed region.
    watermark = Feature(Category.UNINTENDED, "fixed region not asked for", (53, 54, 55))
    proposal = Proposal(1, 1, Category.UNINTENDED, (watermark,))
    region = Score(1, "tiled-l2", {}, "4", {"region_tiles": [], "region_grid": 8})
    evidence = evidence_from([region], proposal)
    assert evidence.region_tiles == {53, 54, 55} and evidence.region_grid == 8
    assert evidence.region_source == "proposal"
    bar = describe_marks(evidence, heat_on=False, has_heatmap=False).plain
    assert "fixed region, 3 of 64 tiles (proposal)" in bar
    found = Score(1, "tiled-l2", {}, "4", {"region_tiles": [62, 63], "region_grid": 8})
    assert evidence_from([found], proposal).region_tiles == {62, 63}  # the map's, when it has one
