"""Each image protocol forced in a real pty: the escape sequences written for the seeds and
their size in pixels; and tmux without COLORTERM still gets 24-bit colour.

The pty reports its window in pixels (10 x 20 a cell), as graphics terminals do. The demo
project's seeds are square, so a seed drawn W x H cells shows W x 2H half-cell pixels,
and a graphics image is an exact number of cells: W*10 x H*20 pixels.
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
import sys
import time
import zlib
from collections import defaultdict
from pathlib import Path

import pytest
from PIL import Image

from tests.app.pty_terminal import SYNC_START, PtyTerminal, screen_lines, visible_text

GRID_HEADER = re.compile(rb"grid (\d+)  ")
CELL = (10, 20)
SEEDS = 8  # the demo grids
APC = re.compile(rb"\x1b_G([^;\x1b]*)(?:;([^\x1b]*))?\x1b\\")
PLACEHOLDER = "\U0010eeee".encode()
# The image id is the placeholder's foreground colour (the background may be set with it).
PLACEHOLDER_COLOUR = re.compile(rb"38;2;(\d+);(\d+);(\d+)(?:;[\d;]*)?m" + re.escape(PLACEHOLDER))
SIXEL_RASTER = re.compile(rb'\x1b\[(\d+);(\d+)H\x1bP[0-9;]*q"1;1;(\d+);(\d+)')
ITERM2 = re.compile(rb"\x1b\]1337;File=([^:]*):([A-Za-z0-9+/=]*)\x07")


def start_app(project: Path, protocol: str) -> PtyTerminal:
    env = {k: v for k, v in os.environ.items() if k not in ("COLORTERM", "TMUX", "TERM_PROGRAM")}
    env["TERM"] = "xterm-256color"  # as over ssh: no COLORTERM
    memgrid = Path(sys.executable).with_name("memgrid")
    argv = [str(memgrid), "annotate", "-p", str(project), "-a", "pty", "--order", "prompt"]
    argv += ["--image-protocol", protocol]
    return PtyTerminal(argv, env, columns=160, rows=50, cell_pixels=CELL)


def first_grid_output(project: Path, protocol: str) -> tuple[PtyTerminal, bytes]:
    terminal = start_app(project, protocol)
    terminal.frame_with(GRID_HEADER, timeout=60)
    terminal.quiet(2.0, timeout=30)  # Sixel encoding in the workers takes a while
    return terminal, bytes(terminal.output)


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def test_halfcell_writes_24_bit_cells_two_pixels_high(demo_project_dir: Path) -> None:
    terminal, output = first_grid_output(demo_project_dir, "halfcell")
    terminal.close()
    assert re.search(rb"38;2;\d+;\d+;\d+m\x1b\[48;2;\d+;\d+;\d+m\xe2\x96\x80", output) or re.search(
        rb"\x1b\[38;2;\d+;\d+;\d+;48;2;\d+;\d+;\d+m\xe2\x96\x80", output
    )
    assert not re.search(rb"[34]8;5;\d+m\xe2\x96\x80", output)  # no seed cell in 256 colours
    screen = screen_lines(output, 160, 50)
    seed_rows = [y for y, line in enumerate(screen) if "▀" in line]
    first_band = [y for y in seed_rows if y - seed_rows[0] == seed_rows.index(y)]
    widths = [len(run) for run in re.findall("▀+", screen[seed_rows[0]])]
    assert len(widths) == 4 and len(set(widths)) == 1  # 8 seeds: 4 x 2
    width, height = widths[0], len(first_band)
    assert width >= 24 and abs(width - 2 * height) <= 1, "\n".join(screen)  # square: W x 2H px


def test_sixel_writes_each_seed_at_its_corner_in_whole_cells(demo_project_dir: Path) -> None:
    terminal, output = first_grid_output(demo_project_dir, "sixel")
    terminal.close()
    placed = {(int(y), int(x)): (int(w), int(h)) for y, x, w, h in SIXEL_RASTER.findall(output)}
    assert len(placed) == SEEDS
    for width, height in placed.values():
        assert width % CELL[0] == 0 and height % CELL[1] == 0
        assert width >= 240 and abs(width - height) < CELL[1]  # real pixels, square seeds
    rows = sorted({y for y, _ in placed})
    assert len(rows) == 2 and all(sum(1 for y, _ in placed if y == r) == 4 for r in rows)


def kitty_images(output: bytes) -> tuple[dict, dict, dict, dict]:
    """Pixels per image id, placement cells per id, where each id's data was complete, and
    the pixel size each was sent with."""
    payloads: dict[int, list[bytes]] = defaultdict(list)
    cells, complete, sizes = {}, {}, {}
    current = None
    for match in APC.finditer(output):
        keys = dict(pair.split(b"=", 1) for pair in match.group(1).split(b",") if pair)
        if keys.get(b"a") == b"t":
            current = int(keys[b"i"])
            assert (keys[b"f"], keys[b"o"]) == (b"24", b"z")  # zlib-compressed RGB
            sizes[current] = (int(keys[b"s"]), int(keys[b"v"]))
        if keys.get(b"a") == b"p":
            cells[int(keys[b"i"])] = (int(keys[b"c"]), int(keys[b"r"]))
            continue
        if keys.get(b"a") in (None, b"t") and current is not None:
            payloads[current].append(match.group(2) or b"")
            if keys.get(b"m") == b"0":
                complete.setdefault(current, match.end())
    pixels = {
        i: zlib.decompress(base64.standard_b64decode(b"".join(chunks)))
        for i, chunks in payloads.items()
    }
    return pixels, cells, complete, sizes


def placed_ids(output: bytes) -> set[int]:
    """Image ids (the placeholders' colour) in the last frame that places any."""
    for frame in reversed(output.split(SYNC_START)):
        found = PLACEHOLDER_COLOUR.findall(frame)
        if found:
            return {(int(r) << 16) | (int(g) << 8) | int(b) for r, g, b in found}
    return set()


def test_kitty_sends_images_ahead_and_places_them_with_placeholders(
    demo_project_dir: Path,
) -> None:
    terminal, output = first_grid_output(demo_project_dir, "kitty")
    try:
        pixels, cells, complete, sizes = kitty_images(output)
        shown = placed_ids(output)
        assert len(shown) == SEEDS and shown <= set(pixels)
        for image_id in shown:
            columns, rows = cells[image_id]
            width, height = sizes[image_id]
            assert (width, height) == (columns * CELL[0], rows * CELL[1])
            assert len(pixels[image_id]) == width * height * 3 and width >= 240
            colour = (image_id >> 16, image_id >> 8 & 255, image_id & 255)
            placed_at = next(
                m.start()
                for m in PLACEHOLDER_COLOUR.finditer(output)
                if tuple(map(int, m.groups())) == colour
            )
            assert complete[image_id] < placed_at  # sent, then shown
        # The next grid's images were sent while this one was on screen.
        offset, _ = terminal.send(b"4")
        terminal.frame_with(GRID_HEADER, start=offset, timeout=20)
        terminal.quiet(0.5)
        after = bytes(terminal.output[offset:])
        next_ids = placed_ids(after) - shown
        assert len(next_ids) == SEEDS
        ahead, *_ = kitty_images(bytes(terminal.output[:offset]))
        assert next_ids <= set(ahead)
    finally:
        terminal.close()


def test_iterm2_writes_inline_pngs_of_their_pixel_size(demo_project_dir: Path) -> None:
    terminal, output = first_grid_output(demo_project_dir, "iterm2")
    terminal.close()
    images = ITERM2.findall(output)
    assert len(images) >= SEEDS
    for arguments, payload in images[:SEEDS]:
        fields = dict(pair.split(b"=") for pair in arguments.split(b";"))
        width, height = int(fields[b"width"][:-2]), int(fields[b"height"][:-2])
        assert png_size(base64.standard_b64decode(payload)) == (width, height)
        assert width % CELL[0] == 0 and height % CELL[1] == 0 and width >= 240


def test_in_tmux_without_colorterm_seeds_are_24_bit(demo_project_dir: Path) -> None:
    tmux = shutil.which("tmux")
    assert tmux is not None, "this test runs the app in tmux: install tmux"
    socket = f"memgrid-test-{os.getpid()}"
    memgrid = Path(sys.executable).with_name("memgrid")
    command = (
        f"env -u COLORTERM TERM=tmux-256color {memgrid} annotate -p {demo_project_dir} "
        "-a tmux --order prompt; sleep 60"
    )
    base = [tmux, "-L", socket, "-f", "/dev/null"]
    subprocess.run(
        [*base, "new-session", "-d", "-x", "160", "-y", "50", "-e", "TERM=tmux-256color", command],
        check=True,
        env={k: v for k, v in os.environ.items() if k not in ("TMUX", "COLORTERM")},
    )
    try:
        capture = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            capture = subprocess.run(
                [*base, "capture-pane", "-e", "-p"], capture_output=True, text=True, check=True
            ).stdout
            if re.search(r"grid \d+  ", capture) and "▀" in capture:
                break
            time.sleep(0.5)
        seed_lines = [line for line in capture.splitlines() if "▀" in line]
        assert seed_lines, capture
        assert all("38;2;" in line and "48;2;" in line for line in seed_lines)
        assert not any("38;5;" in line for line in seed_lines)
        text = visible_text(capture.encode()).decode()
        assert "half-cell in tmux" in text and "allow-passthrough" in text
    finally:
        subprocess.run([*base, "kill-server"], check=False)


@pytest.fixture(autouse=True)
def _no_user_tmux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TMUX", raising=False)
