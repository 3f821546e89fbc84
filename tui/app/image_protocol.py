"""Choosing how the zoomed seed is drawn, before the app starts (docs/design.md, "The annotation app").

textual-image probes the terminal once, when it is imported, and cannot once Textual owns
stdin. So the protocol is settled here, first: a `--image-protocol` flag, else
`$MEMGRID_IMAGE_PROTOCOL`, else textual-image's own detection. A forced protocol skips the
probe (no escape sequences sent, no keystroke lost); detection that finds no graphics
protocol, or no terminal at all, falls back to half-cell, which works everywhere.

Inside tmux or GNU screen the Kitty graphics probe is not sent: it is an APC sequence
(ESC _ ... ESC \\), which tmux takes as a new pane title and screen as its hardstatus, and
neither passes Kitty graphics on anyway. Only the Sixel query (a plain device-attributes
request) is asked there.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from memgrid.core.errors import InputError

PROTOCOL_ENV = "MEMGRID_IMAGE_PROTOCOL"
PROTOCOLS = ("auto", "halfcell", "sixel", "tgp")
_WIDGET_NAMES = {"halfcell": "HalfcellImage", "sixel": "SixelImage", "tgp": "TGPImage"}
_RENDERABLE_PROTOCOLS = {"HalfcellImage": "halfcell", "SixelImage": "sixel", "TGPImage": "tgp"}
HALFCELL_CELL_PIXELS = (10, 20)  # any 1:2 cell will do for half-cell drawing

# textual-image logs a warning with a traceback when a terminal does not answer its
# cell-size query; with no logging set up, Python would print it on the terminal.
logging.getLogger("textual_image").addHandler(logging.NullHandler())


def requested_protocol(flag: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The flag wins, then the environment variable; 'auto' when neither says."""
    for source, value in (("--image-protocol", flag), (PROTOCOL_ENV, environ.get(PROTOCOL_ENV))):
        if value:
            choice = value.strip().lower()
            if choice not in PROTOCOLS:
                raise InputError(
                    source, f"unknown image protocol {value!r}; choose from {', '.join(PROTOCOLS)}"
                )
            return choice
    return "auto"


def in_multiplexer(environ: Mapping[str, str] = os.environ) -> bool:
    """True inside tmux or GNU screen, which take an APC sequence as a title."""
    term = environ.get("TERM", "")
    return "TMUX" in environ or "STY" in environ or term.startswith(("tmux", "screen"))


def load_image_widget(protocol: str) -> tuple[str, type[Any]]:
    """Import textual-image for `protocol`; returns the protocol in use and its widget class."""
    if protocol not in PROTOCOLS:
        raise InputError("--image-protocol", f"unknown image protocol {protocol!r}")
    from textual_image import _terminal

    if protocol == "auto" and in_multiplexer():
        protocol = _sixel_or_halfcell()
    if protocol == "auto":
        renderable = importlib.import_module("textual_image.renderable")
        protocol = _RENDERABLE_PROTOCOLS.get(renderable.Image.__name__, "halfcell")
    else:
        if protocol == "halfcell" and not hasattr(_terminal.get_cell_size, "_result"):
            _terminal.get_cell_size._result = _terminal.CellSize(*HALFCELL_CELL_PIXELS)  # type: ignore[attr-defined]
        with _terminal_hidden():
            importlib.import_module("textual_image.renderable")
    widgets = importlib.import_module("textual_image.widget")
    return protocol, getattr(widgets, _WIDGET_NAMES[protocol])


def _sixel_or_halfcell() -> str:
    """Sixel when the terminal says it draws it, else half-cell; the Kitty probe is not sent."""
    with _terminal_hidden():
        sixel = importlib.import_module("textual_image.renderable.sixel")
    stdout = sys.__stdout__
    on_terminal = stdout is not None and stdout.isatty()
    return "sixel" if on_terminal and sixel.query_terminal_support() else "halfcell"


class _NotATerminal:
    """Stands in for stdout while textual-image is imported, so it does not probe."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@contextmanager
def _terminal_hidden() -> Iterator[None]:
    real = sys.__stdout__
    sys.__stdout__ = _NotATerminal(real)  # type: ignore[misc]
    try:
        yield
    finally:
        sys.__stdout__ = real  # type: ignore[misc]
