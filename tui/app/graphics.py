"""Seeds as real pixels: Kitty graphics, Sixel and iTerm2 escape sequences (docs/design.md,
"The annotation app").

Every tile image arrives here already fitted and padded to whole cells, so the terminal
never rescales it. Kitty images are sent ahead with an id and shown by Unicode
placeholders (text that Textual composes like any other, so a grid change costs a few
kilobytes); Sixel and iTerm2 images are written at their tile's position after the text
of a frame (widgets/seed_grid.py). Inside tmux, Kitty commands go through tmux's
passthrough (`set -g allow-passthrough on`); Sixel needs a tmux built with it.
"""

from __future__ import annotations

import base64
import io
import threading
import zlib
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import numpy as np
from PIL import Image
from rich.color import Color
from rich.console import Console
from rich.segment import Segment
from rich.style import Style

APC_START, ST = "\x1b_G", "\x1b\\"
KITTY_CHUNK = 4096  # base64 bytes per transmission command, the protocol's limit
KITTY_PLACEHOLDER = "\U0010eeee"
# Row and column numbers are combining marks after the placeholder: the protocol's table
# (kitty's rowcolumn-diacritics.txt), as ranges of code points.
_DIACRITIC_RANGES = (
    (0x0305, 0x0305), (0x030D, 0x030E), (0x0310, 0x0310), (0x0312, 0x0312), (0x033D, 0x033F),
    (0x0346, 0x0346), (0x034A, 0x034C), (0x0350, 0x0352), (0x0357, 0x0357), (0x035B, 0x035B),
    (0x0363, 0x036F), (0x0483, 0x0487), (0x0592, 0x0595), (0x0597, 0x0599), (0x059C, 0x05A1),
    (0x05A8, 0x05A9), (0x05AB, 0x05AC), (0x05AF, 0x05AF), (0x05C4, 0x05C4), (0x0610, 0x0617),
    (0x0657, 0x065B), (0x065D, 0x065E), (0x06D6, 0x06DC), (0x06DF, 0x06E2), (0x06E4, 0x06E4),
    (0x06E7, 0x06E8), (0x06EB, 0x06EC), (0x0730, 0x0730), (0x0732, 0x0733), (0x0735, 0x0736),
    (0x073A, 0x073A), (0x073D, 0x073D), (0x073F, 0x0741), (0x0743, 0x0743), (0x0745, 0x0745),
    (0x0747, 0x0747), (0x0749, 0x074A), (0x07EB, 0x07F1), (0x07F3, 0x07F3), (0x0816, 0x0819),
    (0x081B, 0x0823), (0x0825, 0x0827), (0x0829, 0x082D), (0x0951, 0x0951), (0x0953, 0x0954),
    (0x0F82, 0x0F83), (0x0F86, 0x0F87), (0x135D, 0x135F), (0x17DD, 0x17DD), (0x193A, 0x193A),
    (0x1A17, 0x1A17), (0x1A75, 0x1A7C), (0x1B6B, 0x1B6B), (0x1B6D, 0x1B73), (0x1CD0, 0x1CD2),
    (0x1CDA, 0x1CDB), (0x1CE0, 0x1CE0), (0x1DC0, 0x1DC1), (0x1DC3, 0x1DC9), (0x1DCB, 0x1DCC),
    (0x1DD1, 0x1DE6), (0x1DFE, 0x1DFE), (0x20D0, 0x20D1), (0x20D4, 0x20D7), (0x20DB, 0x20DC),
    (0x20E1, 0x20E1), (0x20E7, 0x20E7), (0x20E9, 0x20E9), (0x20F0, 0x20F0), (0x2CEF, 0x2CF1),
    (0x2DE0, 0x2DFF), (0xA66F, 0xA66F), (0xA67C, 0xA67D), (0xA6F0, 0xA6F1), (0xA8E0, 0xA8F1),
    (0xAAB0, 0xAAB0), (0xAAB2, 0xAAB3), (0xAAB7, 0xAAB8), (0xAABE, 0xAABF), (0xAAC1, 0xAAC1),
    (0xFE20, 0xFE26), (0x10A0F, 0x10A0F), (0x10A38, 0x10A38), (0x1D185, 0x1D189),
    (0x1D1AA, 0x1D1AD), (0x1D242, 0x1D244),
)  # fmt: skip
KITTY_DIACRITICS = "".join(chr(c) for low, high in _DIACRITIC_RANGES for c in range(low, high + 1))
MAX_GRAPHIC_CELLS = len(KITTY_DIACRITICS)
PNG_COMPRESSION = 1  # fast: the images are encoded for every grid, and sent once
KITTY_KEEP_IMAGES = 160  # images kept in the terminal; older ones are deleted there
BACKDROP_RGB = (12, 12, 12)  # around a seed that does not fill its tile


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=PNG_COMPRESSION)
    return buffer.getvalue()


def tmux_passthrough(sequence: str) -> str:
    """Wrap a sequence so tmux hands it to the outer terminal (needs allow-passthrough)."""
    return "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + ST


# ---- Kitty graphics protocol ----------------------------------------------------------


def kitty_command(payload: str = "", **keys: int | str) -> str:
    control = ",".join(f"{key}={value}" for key, value in keys.items())
    return f"{APC_START}{control}{';' + payload if payload else ''}{ST}"


def kitty_pixels(pixels: np.ndarray) -> bytes:
    """RGB pixels compressed for Kitty (f=24, o=z): as small as a PNG, several times faster."""
    return zlib.compress(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes(), 1)


def kitty_transmit(
    image_id: int, data: bytes, size: tuple[int, int], columns: int, rows: int
) -> str:
    """Transmit zlib-compressed RGB pixels of `size` under `image_id`, and make a virtual
    placement of columns x rows cells.

    Nothing shows until placeholder cells with the id appear; q=2 keeps the terminal from
    answering (Textual owns the input).
    """
    encoded = base64.standard_b64encode(data).decode("ascii")
    chunks = [encoded[i : i + KITTY_CHUNK] for i in range(0, len(encoded), KITTY_CHUNK)] or [""]
    width, height = size
    commands = []
    for index, chunk in enumerate(chunks):
        more = 1 if index < len(chunks) - 1 else 0
        if index == 0:
            commands.append(
                kitty_command(chunk, a="t", f=24, o="z", s=width, v=height, i=image_id, q=2, m=more)
            )
        else:
            commands.append(kitty_command(chunk, m=more, q=2))
    commands.append(kitty_command(a="p", U=1, i=image_id, c=columns, r=rows, q=2))
    return "".join(commands)


def kitty_delete(image_id: int) -> str:
    return kitty_command(a="d", d="I", i=image_id, q=2)


def kitty_placeholder_rows(image_id: int, columns: int, rows: int) -> list[Segment]:
    """One Segment per row of placeholder cells; the id is the foreground colour (24-bit).

    Only the first cell of a row carries its row and column marks: the protocol takes the
    next columns of the same row from the cell before.
    """
    style = Style(color=Color.from_rgb(image_id >> 16 & 255, image_id >> 8 & 255, image_id & 255))
    tail = KITTY_PLACEHOLDER * (columns - 1)
    first_column = KITTY_DIACRITICS[0]
    return [
        Segment(KITTY_PLACEHOLDER + KITTY_DIACRITICS[row] + first_column + tail, style)
        for row in range(rows)
    ]


class TerminalWriter:
    """Writes graphics data to the terminal through Textual's driver, between frames.

    The driver's writer thread is the one way out to the terminal, so data written here
    is ordered with the frames (a Kitty image sent before the frame that places it arrives
    first). Workers may call `write`. Without a real terminal (tests, headless) nothing is
    written.
    """

    def __init__(self, *, in_tmux: bool = False) -> None:
        self.in_tmux = in_tmux
        self._app: Any = None
        self.bytes_written = 0

    def attach(self, app: Any) -> None:
        self._app = app

    def write(self, data: str, *, passthrough: bool = False) -> bool:
        driver = getattr(self._app, "_driver", None)  # Textual's own clipboard uses it too
        if driver is None or driver.is_headless or not data:
            return False
        if passthrough and self.in_tmux:
            data = tmux_passthrough(data)
        driver.write(data)
        self.bytes_written += len(data)
        return True


class KittyImages:
    """Kitty images by content key: an id for each, sent once, deleted when long unused.

    Ids stay with their key for the session, so a composed picture stays valid: an image
    deleted from the terminal is sent again, under the same id, before it is shown.
    """

    def __init__(self, writer: TerminalWriter, keep: int = KITTY_KEEP_IMAGES) -> None:
        self.writer = writer
        self.keep = keep
        self._ids: dict[Hashable, int] = {}
        self._sent: OrderedDict[int, None] = OrderedDict()
        self._lock = threading.Lock()

    def id_for(self, key: Hashable) -> int:
        with self._lock:
            found = self._ids.get(key)
            if found is None:
                # 24-bit ids (the placeholder's colour); 0 is not an id.
                found = self._ids[key] = len(self._ids) % 0xFFFFFF + 1
            return found

    def send(
        self, image_id: int, data: bytes, size: tuple[int, int], columns: int, rows: int
    ) -> None:
        """Transmit the image unless the terminal has it; delete the least recent beyond keep."""
        with self._lock:
            if image_id in self._sent:
                self._sent.move_to_end(image_id)
                return
            self._sent[image_id] = None
            evicted = []
            while len(self._sent) > self.keep:
                evicted.append(self._sent.popitem(last=False)[0])
        sequence = kitty_transmit(image_id, data, size, columns, rows) + "".join(
            map(kitty_delete, evicted)
        )
        if not self.writer.write(sequence, passthrough=True):
            with self._lock:
                self._sent.pop(image_id, None)  # nothing went out: send again next time

    def forget_all(self) -> None:
        """Delete every image this session sent (when the app closes)."""
        with self._lock:
            sent, self._sent = list(self._sent), OrderedDict()
        if sent:
            self.writer.write("".join(map(kitty_delete, sent)), passthrough=True)


# ---- Sixel (through textual-image's encoder) and iTerm2 ------------------------------


def sixel_sequence(pixels: np.ndarray, columns: int, rows: int) -> str:
    """The DCS q sequence for an image of exactly columns x rows cells.

    Rendered with textual-image's Sixel renderable (its encoder quantises to 256 colours),
    taking only the sixel data: the cursor moves around it are the widget's own.
    """
    from textual_image.renderable.sixel import Image as SixelImage

    console = Console(
        file=io.StringIO(), width=columns, height=rows, force_terminal=True, color_system=None
    )
    options = console.options.update(width=columns, height=rows)
    renderable = SixelImage(Image.fromarray(pixels), width=columns, height=rows)
    for segment in console.render(renderable, options):
        if segment.control and segment.text.startswith("\x1bP"):
            return segment.text
    raise RuntimeError("textual-image's Sixel renderer gave no sixel data")


def iterm2_sequence(png: bytes, width: int, height: int) -> str:
    """OSC 1337 inline image of width x height pixels (iTerm2, WezTerm, VS Code)."""
    data = base64.standard_b64encode(png).decode("ascii")
    return (
        f"\x1b]1337;File=inline=1;size={len(png)};width={width}px;height={height}px;"
        f"preserveAspectRatio=0:{data}\x07"
    )
