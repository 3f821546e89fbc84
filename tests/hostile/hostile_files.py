"""Hostile file-system entries for the reader tests: links out of the folder, pipes, loops.

`place(path, kind, payload, outside)` puts one entry at `path`; the readers must read a
regular file (or a link that stays inside), and refuse everything else in one line without
blocking: a FIFO opened for reading waits for a writer forever.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hypothesis import strategies as st

SECRET = b"memgrid-test-secret: this text lives outside every import folder\n"
# How each entry is made; "regular" is the plain file every reader must still accept.
KINDS = (
    "regular",
    "link_inside",
    "link_outside",
    "link_to_fifo",
    "fifo",
    "dangling_link",
    "link_loop",
    "folder",
    "device_link",
)
kinds = st.sampled_from(KINDS)
# Everything but a plain file or a link that stays inside the folder.
REFUSED_KINDS = frozenset(KINDS) - {"regular", "link_inside"}

T = TypeVar("T")


def secret_file(outside: Path) -> Path:
    """A readable file outside the import folder, holding SECRET."""
    outside.mkdir(parents=True, exist_ok=True)
    secret = outside / "secret.txt"
    secret.write_bytes(SECRET)
    return secret


def place(path: Path, kind: str, payload: bytes, outside: Path) -> None:
    """Make `path` an entry of `kind`; `payload` is the content where it has one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "regular":
        path.write_bytes(payload)
    elif kind == "link_inside":
        real = path.with_name(f".real-{path.name}")
        real.write_bytes(payload)
        path.symlink_to(real.name)
    elif kind == "link_outside":
        path.symlink_to(secret_file(outside))
    elif kind == "link_to_fifo":
        pipe = path.with_name(f".pipe-{path.name}")
        os.mkfifo(pipe)
        path.symlink_to(pipe.name)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dangling_link":
        path.symlink_to(path.with_name(f".missing-{path.name}"))
    elif kind == "link_loop":
        other = path.with_name(f".loop-{path.name}")
        other.symlink_to(path.name)
        path.symlink_to(other.name)
    elif kind == "folder":
        path.mkdir()
    elif kind == "device_link":
        path.symlink_to("/dev/null")
    else:
        raise ValueError(kind)


def within(seconds: float, work: Callable[[], T], pipes: list[Path] | None = None) -> T:
    """`work()`'s result or exception; fails the test if it blocks longer than `seconds`.

    A reader stuck opening one of `pipes` is set free (by opening it for writing) so the
    test run goes on; the failure says it blocked.
    """
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:  # handed to the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        for pipe in pipes or []:
            with contextlib.suppress(OSError):
                os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(seconds)
        raise AssertionError(f"blocked for more than {seconds}s (a named pipe read?)")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def fifos_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_fifo()]
