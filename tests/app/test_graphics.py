"""Escape sequences for real pixels: Kitty (APC _G), Sixel (DCS q), iTerm2 (OSC 1337).

Sixel goes through textual-image's renderer; Kitty's and iTerm2's are memgrid's own
(textual-image's Kitty renderer writes to the real stdout when it renders, which cannot
send images ahead, and it has no iTerm2 renderer).
"""

from __future__ import annotations

import base64
import io
import re
import zlib

import numpy as np
from PIL import Image

from memgrid.tui.app.graphics import (
    KITTY_DIACRITICS,
    KITTY_PLACEHOLDER,
    KittyImages,
    iterm2_sequence,
    kitty_pixels,
    kitty_placeholder_rows,
    kitty_transmit,
    png_bytes,
    sixel_sequence,
    tmux_passthrough,
)

APC = re.compile(r"\x1b_G([^;\x1b]*)(?:;([^\x1b]*))?\x1b\\")
SIXEL_RASTER = re.compile(r'\x1bP[0-9;]*q"1;1;(\d+);(\d+)')
ITERM2 = re.compile(r"\x1b\]1337;File=([^:]*):([A-Za-z0-9+/=]*)\x07")


def gradient(width: int, height: int) -> np.ndarray:
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[..., 0] = np.arange(width)[None, :] * 255 // max(width - 1, 1)
    pixels[..., 2] = np.arange(height)[:, None] * 255 // max(height - 1, 1)
    return pixels


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def kitty_commands(data: str) -> list[tuple[dict[str, str], str]]:
    commands = []
    for match in APC.finditer(data):
        keys = dict(pair.split("=", 1) for pair in match.group(1).split(",") if pair)
        commands.append((keys, match.group(2) or ""))
    return commands


def test_kitty_sends_pixels_in_chunks_then_places_them_virtually() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (300, 200, 3), dtype=np.uint8)
    data = kitty_transmit(7, kitty_pixels(noise), (200, 300), columns=20, rows=15)
    commands = kitty_commands(data)  # noise does not compress: several chunks
    first, *middle, last, place = commands
    assert {k: first[0][k] for k in "afoisvq"} == {
        "a": "t",
        "f": "24",
        "o": "z",
        "i": "7",
        "s": "200",
        "v": "300",
        "q": "2",
    }
    assert all(keys["m"] == "1" for keys, _ in [first, *middle]) and last[0]["m"] == "0"
    assert all(len(chunk) <= 4096 for _, chunk in commands)
    payload = base64.standard_b64decode("".join(chunk for _, chunk in commands[:-1]))
    assert zlib.decompress(payload) == noise.tobytes()
    assert place[0] == {"a": "p", "U": "1", "i": "7", "c": "20", "r": "15", "q": "2"}


def test_kitty_placeholders_name_the_image_by_colour_and_rows_by_marks() -> None:
    image_id = 0x01_02_03
    rows = kitty_placeholder_rows(image_id, columns=5, rows=3)
    assert len(rows) == 3
    for number, segment in enumerate(rows):
        assert segment.style.color.triplet == (1, 2, 3)
        assert segment.text.count(KITTY_PLACEHOLDER) == 5
        assert segment.text[1:3] == KITTY_DIACRITICS[number] + KITTY_DIACRITICS[0]
    assert len(KITTY_DIACRITICS) == 297  # the protocol's whole table


def test_sixel_is_textual_images_encoding_at_the_cell_size() -> None:
    from textual_image._terminal import get_cell_size

    cell = get_cell_size()
    data = sixel_sequence(gradient(8 * cell.width, 4 * cell.height), columns=8, rows=4)
    (width, height), *_ = SIXEL_RASTER.findall(data)
    assert (int(width), int(height)) == (8 * cell.width, 4 * cell.height)
    assert data.endswith("\x1b\\")


def test_iterm2_inline_image_carries_its_pixel_size() -> None:
    png = png_bytes(gradient(120, 80))
    data = iterm2_sequence(png, 120, 80)
    (arguments, payload), *_ = ITERM2.findall(data)
    fields = dict(pair.split("=") for pair in arguments.split(";"))
    assert fields["inline"] == "1" and (fields["width"], fields["height"]) == ("120px", "80px")
    assert int(fields["size"]) == len(png)
    assert png_size(base64.standard_b64decode(payload)) == (120, 80)


def test_tmux_passthrough_doubles_every_escape() -> None:
    wrapped = tmux_passthrough("\x1b_Ga=d\x1b\\")
    assert wrapped == "\x1bPtmux;\x1b\x1b_Ga=d\x1b\x1b\\\x1b\\"


class RecordingWriter:
    def __init__(self) -> None:
        self.written: list[tuple[str, bool]] = []

    def write(self, data: str, *, passthrough: bool = False) -> bool:
        self.written.append((data, passthrough))
        return True


def test_kitty_images_are_sent_once_and_the_oldest_deleted() -> None:
    writer = RecordingWriter()
    images = KittyImages(writer, keep=2)  # type: ignore[arg-type]
    ids = [images.id_for(("sha", n)) for n in range(3)]
    assert len(set(ids)) == 3 and images.id_for(("sha", 0)) == ids[0]
    pixels = kitty_pixels(gradient(4, 4))
    images.send(ids[0], pixels, (4, 4), 1, 1)
    images.send(ids[0], pixels, (4, 4), 1, 1)
    assert len(writer.written) == 1 and writer.written[0][1]  # through tmux when in it
    images.send(ids[1], pixels, (4, 4), 1, 1)
    images.send(ids[2], pixels, (4, 4), 1, 1)  # a third: the first is deleted in the terminal
    deletes = [keys for keys, _ in kitty_commands(writer.written[-1][0]) if keys.get("a") == "d"]
    assert deletes == [{"a": "d", "d": "I", "i": str(ids[0]), "q": "2"}]
    images.send(ids[0], pixels, (4, 4), 1, 1)  # shown again: sent again, under the same id
    assert kitty_commands(writer.written[-1][0])[0][0]["i"] == str(ids[0])
