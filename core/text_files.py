"""Reading a user's files and paths: UTF-8 text (a BOM allowed), JSON, TOML; every failure
one line naming the file."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from memgrid.core.errors import InputError
from memgrid.core.user_files import read_user_bytes

# Deeper JSON or TOML is refused: storing and reading it back would exhaust Python's stack,
# and no real manifest, metadata or threshold file nests more than a few levels.
MAX_NESTING = 64


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


def parse_json(text: str, source: str | Path, location: str | None = None) -> Any:
    """JSON from a user's file; bad syntax or absurd nesting is one InputError naming it."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        where = location or f"line {error.lineno}"
        raise InputError(source, f"invalid JSON ({error.msg})", where) from None
    except RecursionError:
        pass
    else:
        if nesting_depth(value) <= MAX_NESTING:
            return value
    raise InputError(source, f"JSON nested deeper than {MAX_NESTING} levels", location)


def nesting_depth(value: Any) -> int:
    """How deep lists and objects nest (0 for a scalar), counted without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth + 1)
            stack.extend(
                (child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


def parse_toml(text: str, source: str | Path) -> dict[str, Any]:
    """TOML from a user's file; bad syntax or absurd nesting is one InputError naming it."""
    try:
        value = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputError(source, f"not valid TOML ({error})") from None
    except RecursionError:
        pass
    else:
        if nesting_depth(value) <= MAX_NESTING:
            return value
    raise InputError(source, f"TOML nested deeper than {MAX_NESTING} levels")
