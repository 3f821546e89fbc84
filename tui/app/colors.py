"""How many colours the app draws in: 24-bit unless the terminal is plainly older.

Rich (and so Textual) takes 24-bit colour only from `COLORTERM`, which ssh does not pass
on and tmux does not set: the usual remote session then gets 256 colours, and seeds
posterised exactly where an annotator looks for fine differences. Every terminal an
annotator is likely to use (xterm-like, or one that advertises 256 colours) shows 24-bit
colour, so that is assumed; `--color` or `$MEMGRID_COLOR` says otherwise, and when the
app does draw in fewer colours the status line says so once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass

from memgrid.core.errors import InputError

COLOR_ENV = "MEMGRID_COLOR"
COLOR_CHOICES = ("auto", "truecolor", "256", "16")
TRUECOLOR_COLORTERMS = ("truecolor", "24bit")
# TERM prefixes of terminals that take 24-bit colour (xterm and its many look-alikes).
XTERM_LIKE = (
    "xterm",
    "tmux",
    "screen",
    "rxvt",
    "kitty",
    "alacritty",
    "foot",
    "wezterm",
    "ghostty",
    "contour",
    "st-",
    "vte",
    "konsole",
    "iterm",
    "mintty",
)
ADVERTISES_MANY = ("-256color", "-direct", "-truecolor", "-24bit")
# The environment Rich reads to settle its colour system, for each depth.
RICH_ENVIRONMENT = {
    "truecolor": {"COLORTERM": "truecolor"},
    "256": {"COLORTERM": None, "TERM": "xterm-256color"},
    "16": {"COLORTERM": None, "TERM": "xterm-16color"},
}


@dataclass(frozen=True)
class ColorDepth:
    """The colours drawn in, and what to tell the annotator about it ('' when all is well)."""

    depth: str  # truecolor, 256 or 16
    note: str = ""


def requested_color(flag: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The flag wins, then $MEMGRID_COLOR; 'auto' when neither says."""
    for source, value in (("--color", flag), (COLOR_ENV, environ.get(COLOR_ENV))):
        if value:
            choice = value.strip().lower()
            if choice not in COLOR_CHOICES:
                raise InputError(
                    source,
                    f"unknown colour depth {value!r}; choose from {', '.join(COLOR_CHOICES)}",
                )
            return choice
    return "auto"


def resolve_color(choice: str, environ: Mapping[str, str] = os.environ) -> ColorDepth:
    """The depth to draw in for `choice` on the terminal `environ` describes."""
    if choice not in COLOR_CHOICES:
        raise InputError("--color", f"unknown colour depth {choice!r}")
    if choice != "auto":
        note = "" if choice == "truecolor" else f"drawing in {choice} colours (--color {choice})"
        return ColorDepth(choice, note)
    if environ.get("COLORTERM", "").strip().lower() in TRUECOLOR_COLORTERMS:
        return ColorDepth("truecolor")
    term = environ.get("TERM", "").strip().lower()
    if term.startswith(XTERM_LIKE) or term.endswith(ADVERTISES_MANY):
        return ColorDepth("truecolor")
    depth = "256" if term.endswith("256color") else "16"
    return ColorDepth(
        depth,
        f"drawing in {depth} colours (TERM={term or 'unset'}): seeds lose detail; "
        "--color truecolor if your terminal has 24-bit colour",
    )


@contextmanager
def rich_color_environment(
    depth: str, environ: MutableMapping[str, str] = os.environ
) -> Iterator[None]:
    """Make Rich, while the app is built, settle on `depth` (it reads COLORTERM and TERM).

    Textual builds its Console from a copy of the environment in App.__init__; the
    variables are restored straight after, so nothing else (subprocesses) sees them.
    """
    saved = {name: environ.get(name) for name in RICH_ENVIRONMENT[depth]}
    try:
        for name, value in RICH_ENVIRONMENT[depth].items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value
