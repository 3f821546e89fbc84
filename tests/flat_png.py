"""A PNG of any size made in little memory (one colour, rows streamed through zlib): for the
image limits' tests and bench/large_images.py."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

_COLOUR_TYPES = {1: 0, 3: 2}  # channels -> PNG colour type: grey, RGB


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def flat_png(path: Path, width: int, height: int, colour: tuple[int, ...] = (128,)) -> Path:
    """An 8-bit PNG of width x height in `colour`: one value is grey, three are RGB."""
    compressor = zlib.compressobj(6)
    row = b"\x00" + bytes(colour) * width
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPES[len(colour)], 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", data)
        + _chunk(b"IEND", b"")
    )
    return path
