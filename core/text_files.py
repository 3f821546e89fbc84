"""Reading a user's text file: UTF-8 (a BOM allowed), every failure one line naming the file."""

from __future__ import annotations

from pathlib import Path

from memgrid.core.errors import InputError
from memgrid.core.user_files import read_user_bytes


def read_text(path: Path, *, inside: Path | None = None) -> str:
    """Read a user's text file as UTF-8 (BOM allowed), naming the file on failure.

    Only a regular file is read; with `inside`, it must lie in that folder, links followed.
    """
    return decode_text(read_user_bytes(path, inside=inside), path)


def decode_text(data: bytes, path: Path) -> str:
    """`data` read from `path` as UTF-8 (BOM allowed); bad bytes are named by line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InputError(
            path, f"not UTF-8 text (byte 0x{data[error.start]:02x})", f"line {line}"
        ) from None
