"""Reading a user's files and paths: UTF-8 text (a BOM allowed), JSON, TOML, CSV; every
failure one line naming the file."""

from __future__ import annotations

import csv
import io
import json
import math
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
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
    """JSON from a user's file; one InputError naming it for what the store could not hold
    or read back: bad syntax, absurd nesting, NaN or Infinity (Python writes them, JSON has
    no such numbers, and SQLite's JSON functions reject the row for good), integers past
    Python's 4,300 digits, and text with a lone surrogate escape ("\\ud800", not UTF-8)."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as error:
        where = location or f"line {error.lineno}"
        raise InputError(source, f"invalid JSON ({error.msg})", where) from None
    except RecursionError:
        pass
    except ValueError as error:  # _refuse_constant, or an integer too long to convert
        problem = str(error) if isinstance(error, _NotJson) else "a number with too many digits"
        raise InputError(source, problem, location) from None
    else:
        if (problem := _json_value_problem(value)) is not None:
            raise InputError(source, problem, location)
        return value
    raise InputError(source, f"JSON nested deeper than {MAX_NESTING} levels", location)


class _NotJson(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    """1e999 reads as infinity, which the store would write back as the word Infinity."""
    value = float(text)
    if not math.isfinite(value):
        raise _NotJson(f"{text[:40]} is too large for a number")
    return value


def _json_value_problem(value: Any) -> str | None:
    """Too deep, or holding text that is not Unicode (a lone surrogate): one walk."""
    for item, depth in _nodes(value):
        if isinstance(item, dict | list) and depth > MAX_NESTING:
            return f"JSON nested deeper than {MAX_NESTING} levels"
        if isinstance(item, str) and not is_unicode(item):
            return f"text {item[:40]!r} holds a lone surrogate escape: not Unicode"
    return None


def is_unicode(text: str) -> bool:
    """False for a str holding lone surrogates (bytes that were not UTF-8, or an escape
    such as "\\ud800"): text SQLite and the terminal cannot take."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def nesting_depth(value: Any) -> int:
    """How deep lists and objects nest (0 for a scalar), counted without recursion."""
    return max((depth for item, depth in _nodes(value) if isinstance(item, dict | list)), default=0)


def _nodes(value: Any) -> Iterator[tuple[Any, int]]:
    """Every value, object key and container in `value`, each with its depth: a list or
    object at the top is at depth 1, what it holds one deeper (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        yield item, depth
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in (*item.keys(), *item.values()))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


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


def csv_table(path: Path, text: str) -> tuple[list[str], Iterator[tuple[str, dict[str, Any]]]]:
    """A CSV file's header and its rows, each with its location ("line N"; a None key holds
    fields beyond the header). Malformed CSV is an InputError naming the file and line:
    read leniently, a quote never closed swallows every row after it into one field."""
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    with _csv_errors(path, reader):
        header = list(reader.fieldnames or ())

    def rows() -> Iterator[tuple[str, dict[str, Any]]]:
        with _csv_errors(path, reader):
            for row in reader:
                yield f"line {reader.line_num}", row

    return header, rows()


@contextmanager
def _csv_errors(path: Path, reader: Any) -> Iterator[None]:
    try:
        yield
    except csv.Error as error:
        problem = str(error)
        if "unexpected end of data" in problem:
            problem = "a quoted field opened here is never closed"
        # The reader counts the lines of the records it finished; the bad one starts after.
        location = f"line {reader.line_num + 1}"
        raise InputError(path, f"malformed CSV ({problem})", location) from None
