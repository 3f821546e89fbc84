"""Reading a user's text file: UTF-8 (a BOM allowed), every failure one line naming the file."""

from __future__ import annotations

from pathlib import Path

from memgrid.core.errors import InputError


def read_text(path: Path) -> str:
    """Read a user's text file as UTF-8 (BOM allowed), naming the file on failure."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except IsADirectoryError:
        raise InputError(path, "is a folder, not a file") from None
    except OSError as error:
        raise InputError(path, f"cannot read ({error.strerror or error})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InputError(
            path, f"not UTF-8 text (byte 0x{data[error.start]:02x})", f"line {line}"
        ) from None
