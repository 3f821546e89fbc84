"""Choosing how seeds are drawn, before the app starts (docs/design.md, "The annotation app").

Kitty graphics, iTerm2 inline images or Sixel show seeds in real pixels; half-cell text
works everywhere. The choice is settled before Textual owns the terminal, since a probe
needs to read the terminal's answer: `--image-protocol`, else `$MEMGRID_IMAGE_PROTOCOL`,
else what the environment says (kitty and Ghostty set TERM or their own variables; iTerm2
sets LC_TERMINAL, which ssh passes on; WezTerm sets TERM_PROGRAM), else a probe (Kitty's
graphics query, then the device-attributes query, whose answer says Sixel), else half-cell.
A forced protocol skips the probe (no escape sequences sent).

The probe reads everything up to the device-attributes answer, which every terminal gives,
and drops what the annotator typed meanwhile: textual-image's own probe stopped at a typed
key and left the answer (ESC [ ? 6 2 ; 4 c) for the app to read as keys, whose `?` opened
the help screen.

Inside tmux or GNU screen the Kitty graphics probe is not sent: it is an APC sequence
(ESC _ ... ESC \\), which tmux takes as a new pane title and screen as its hardstatus, and
neither passes Kitty graphics on unasked. Only the Sixel query (a plain device-attributes
request) is asked there, so half-cell is the usual answer; the status line then says how
to get real pixels (allow-passthrough for Kitty, a tmux built with Sixel).
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import select
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from memgrid.core.errors import InputError
from memgrid.tui.app.drawing import HALFCELL, HALFCELL_CELL_PIXELS, ITERM2, KITTY, SIXEL
from memgrid.tui.services.terminal import over_ssh

PROTOCOL_ENV = "MEMGRID_IMAGE_PROTOCOL"
PROTOCOLS = ("auto", HALFCELL, SIXEL, KITTY, ITERM2)
ALIASES = {"tgp": KITTY, "iterm": ITERM2}  # textual-image's name for Kitty's protocol
TMUX_HINT = "`set -g allow-passthrough on` + --image-protocol kitty, or a sixel tmux"
# Kitty's graphics query (a 1x1 image, query only) and its OK; then primary device
# attributes (DA1), answered by every terminal: attribute 4 is Sixel.
KITTY_QUERY = b"\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\"
KITTY_ANSWER = re.compile(rb"\x1b_Gi=31;OK\x1b\\")
DA1_QUERY = b"\x1b[c"
DA1_ANSWER = re.compile(rb"\x1b\[\?([0-9;]*)c")
# How long a terminal gets to answer, locally and over SSH (a round trip on a slow link: an
# answer later than this reaches the app as keys). One that never answers costs it at start.
PROBE_SECONDS = 0.5
PROBE_SECONDS_OVER_SSH = 2.0


@dataclass(frozen=True)
class ProtocolChoice:
    """The protocol in use, a terminal cell in pixels, and a line for the status bar."""

    protocol: str
    cell_pixels: tuple[int, int] = HALFCELL_CELL_PIXELS
    note: str = ""
    in_tmux: bool = False


# textual-image logs a warning with a traceback when a terminal does not answer its
# cell-size query; with no logging set up, Python would print it on the terminal.
logging.getLogger("textual_image").addHandler(logging.NullHandler())


def requested_protocol(flag: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The flag wins, then the environment variable; 'auto' when neither says."""
    for source, value in (("--image-protocol", flag), (PROTOCOL_ENV, environ.get(PROTOCOL_ENV))):
        if value:
            choice = value.strip().lower()
            choice = ALIASES.get(choice, choice)
            if choice not in PROTOCOLS:
                raise InputError(
                    source, f"unknown image protocol {value!r}; choose from {', '.join(PROTOCOLS)}"
                )
            return choice
    return "auto"


def protocol_from_environment(environ: Mapping[str, str]) -> str | None:
    """The protocol a terminal announces through its variables; None when it does not."""
    term = environ.get("TERM", "")
    program = environ.get("TERM_PROGRAM", "").lower()
    if term == "xterm-kitty" or "KITTY_WINDOW_ID" in environ or program == "ghostty":
        return KITTY
    if environ.get("LC_TERMINAL") == "iTerm2" or program in ("iterm.app", "wezterm"):
        return ITERM2
    return None


def in_multiplexer(environ: Mapping[str, str] = os.environ) -> bool:
    """True inside tmux or GNU screen, which take an APC sequence as a title."""
    term = environ.get("TERM", "")
    return "TMUX" in environ or "STY" in environ or term.startswith(("tmux", "screen"))


def settle_protocol(requested: str, environ: Mapping[str, str] = os.environ) -> ProtocolChoice:
    """Decide the protocol and learn the cell size; imports textual-image (which may probe)."""
    if requested not in PROTOCOLS:
        raise InputError("--image-protocol", f"unknown image protocol {requested!r}")
    in_tmux = bool(environ.get("TMUX"))
    protocol = requested
    if protocol == "auto" and in_multiplexer(environ):
        protocol = _probed(environ, kitty=False)  # the Kitty query is APC: not in tmux
    elif protocol == "auto":
        protocol = protocol_from_environment(environ) or _probed(environ, kitty=True)
    note = ""
    if in_tmux and protocol == ITERM2:
        protocol, note = HALFCELL, "iTerm2 images do not pass tmux, half-cell"
    if in_tmux and protocol == HALFCELL:
        note = f"{note or 'half-cell in tmux'}: {TMUX_HINT}"
    elif in_tmux and protocol == KITTY:
        note = "Kitty images through tmux: needs `set -g allow-passthrough on`"
    return ProtocolChoice(protocol, _cell_pixels(protocol), note, in_tmux)


def images_help(choice: ProtocolChoice) -> str:
    """What the help screen says about images: the protocol in use and how to get pixels."""
    lines = [
        f"Images: {choice.protocol}" + (f" ({choice.note})" if choice.note else "") + ".",
        "Real pixels (Kitty graphics, iTerm2 or Sixel) in kitty, Ghostty, WezTerm, iTerm2, "
        "foot, Windows Terminal, VS Code and xterm with sixel, over SSH too; "
        "--image-protocol or $MEMGRID_IMAGE_PROTOCOL forces one.",
    ]
    if choice.in_tmux:
        lines.append(
            "In tmux: `set -g allow-passthrough on` in ~/.tmux.conf, then "
            "--image-protocol kitty (kitty, Ghostty outside); or a tmux 3.4+ built with "
            "sixel support and --image-protocol sixel."
        )
    return "\n".join(lines)


def _cell_pixels(protocol: str) -> tuple[int, int]:
    """A terminal cell in pixels (ioctl, else an escape query); half-cell needs no probe."""
    from textual_image import _terminal

    if protocol == HALFCELL:
        if not hasattr(_terminal.get_cell_size, "_result"):
            _terminal.get_cell_size._result = _terminal.CellSize(10, 20)  # type: ignore[attr-defined]
        with _terminal_hidden():
            importlib.import_module("textual_image.renderable")
        return HALFCELL_CELL_PIXELS
    size = _terminal.get_cell_size()
    with _terminal_hidden():  # the protocol is settled: no probe on import
        importlib.import_module("textual_image.renderable")
    return (size.width, size.height)


def _probed(environ: Mapping[str, str], *, kitty: bool) -> str:
    """What this process's terminal draws, asked on its standard input and output."""
    stdin, stdout = sys.__stdin__, sys.__stdout__
    if stdin is None or stdout is None or not (stdin.isatty() and stdout.isatty()):
        return HALFCELL
    stdout.flush()
    timeout = PROBE_SECONDS_OVER_SSH if over_ssh(environ) else PROBE_SECONDS
    return probe_terminal(stdin.fileno(), stdout.fileno(), kitty=kitty, timeout=timeout)


def probe_terminal(stdin: int, stdout: int, *, kitty: bool, timeout: float = PROBE_SECONDS) -> str:
    """Kitty when it answers the graphics query (asked only with `kitty`), else Sixel when
    its device attributes list it, else half-cell (also when it does not answer in time)."""
    try:
        import termios
        import tty
    except ImportError:  # not a POSIX terminal
        return HALFCELL
    saved = termios.tcgetattr(stdin)
    received = b""
    try:
        tty.setcbreak(stdin, termios.TCSANOW)  # bytes as they come, not echoed
        os.write(stdout, (KITTY_QUERY if kitty else b"") + DA1_QUERY)
        deadline = time.monotonic() + timeout
        while DA1_ANSWER.search(received) is None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([stdin], [], [], left)[0]:
                return HALFCELL
            chunk = os.read(stdin, 1024)
            if not chunk:
                return HALFCELL
            received += chunk
    finally:
        # TCSAFLUSH drops what is still unread (keys typed meanwhile, a late answer): none of
        # it reaches the app as keys.
        termios.tcsetattr(stdin, termios.TCSAFLUSH, saved)
    if kitty and KITTY_ANSWER.search(received):
        return KITTY
    answer = DA1_ANSWER.search(received)
    return SIXEL if answer and b"4" in answer.group(1).split(b";") else HALFCELL


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
