"""What the terminal gives the annotation app: colour depth, tmux, SSH.

`colour_depth` is the one place the app's colour depth is decided: the app builds its
Console at that depth (tui/app/colors.py), and `memgrid doctor` reports the same answer.
Rich takes 24-bit colour only from COLORTERM, which ssh does not pass on and tmux does not
set, so the usual remote session would get 256 colours and seeds posterised exactly where an
annotator looks for fine differences. Every terminal an annotator is likely to use
(xterm-like, or one that advertises 256 colours) shows 24-bit colour, so that is assumed;
`--color` or $MEMGRID_COLOR says otherwise (docs/design.md, "The annotation app").
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from memgrid.core.errors import InputError, MemgridError

# Textual's override of its colour depth (textual.constants.COLOR_SYSTEM).
COLOUR_SYSTEM_ENV = "TEXTUAL_COLOR_SYSTEM"
COLOUR_ENV = "MEMGRID_COLOR"
# What --color and $MEMGRID_COLOR accept, and the colour system each asks for.
COLOUR_CHOICES = {"auto": None, "truecolor": "truecolor", "256": "256", "16": "standard"}
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
# Rich's colour systems, as Textual's override names them, and how many colours each has.
COLOUR_SYSTEMS: dict[str, int] = {"truecolor": 1 << 24, "256": 256, "standard": 16, "windows": 16}
TRUECOLOR_VALUES = ("truecolor", "24bit")
DUMB_TERMS = ("dumb", "unknown")
# Rich reads the colours from TERM's last dash-separated part (xterm-256color, xterm-kitty).
TERM_SUFFIX_SYSTEMS = {"256color": "256", "kitty": "256", "16color": "standard"}
SSH_VARIABLES = ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY")
TMUX_QUERY_SECONDS = 2.0


@dataclass(frozen=True)
class ColourDepth:
    """The colour system the app draws with, and the variable that settled it."""

    system: str | None  # a COLOUR_SYSTEMS key; None: no colour at all
    because: str  # e.g. "COLORTERM=truecolor", "TERM=xterm-256color"
    monochrome: bool = False  # NO_COLOR: Textual draws in greys whatever the depth
    ignored_override: str | None = None  # a TEXTUAL_COLOR_SYSTEM value Textual cannot use

    @property
    def colours(self) -> int:
        return COLOUR_SYSTEMS.get(self.system or "", 0)

    @property
    def truecolor(self) -> bool:
        return self.system == "truecolor" and not self.monochrome

    def describe(self) -> str:
        depth = "no colour" if self.system is None else f"{self.system} ({self.colours:,} colours)"
        return f"{depth}, from {self.because}" + (
            " (NO_COLOR: greys only)" if self.monochrome else ""
        )

    @property
    def note(self) -> str:
        """What the status line says once when the app draws in fewer than 24-bit colours."""
        if self.system is None or self.truecolor or self.monochrome:
            return ""
        return (
            f"drawing in {self.colours} colours ({self.because}): seeds lose detail; "
            "--color truecolor if your terminal has 24-bit colour"
        )


def requested_colour(flag: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """--color wins, then $MEMGRID_COLOR; 'auto' when neither says."""
    for source, value in (("--color", flag), (COLOUR_ENV, environ.get(COLOUR_ENV))):
        if value:
            choice = value.strip().lower()
            if choice not in COLOUR_CHOICES:
                choices = ", ".join(COLOUR_CHOICES)
                raise InputError(source, f"unknown colour depth {value!r}; choose from {choices}")
            return choice
    return "auto"


def colour_depth(environ: Mapping[str, str] = os.environ, requested: str = "auto") -> ColourDepth:
    """The colour depth the annotation app will use in a terminal with this environment.

    `requested` (--color, $MEMGRID_COLOR) wins; then a valid $TEXTUAL_COLOR_SYSTEM; TERM=dumb
    has no colour; COLORTERM=truecolor or 24bit gives truecolor, and so does an xterm-like
    TERM or one advertising 256 colours (24-bit assumed: ssh drops COLORTERM); anything else
    keeps Rich's reading of TERM's suffix (256color: 256 colours, else 16).
    """
    monochrome = "NO_COLOR" in environ
    asked = COLOUR_CHOICES.get(requested)
    if asked is not None:
        return ColourDepth(asked, f"--color {requested}", monochrome)
    override = environ.get(COLOUR_SYSTEM_ENV, "").strip().lower()
    ignored = None
    if override in COLOUR_SYSTEMS:
        return ColourDepth(override, f"{COLOUR_SYSTEM_ENV}={override}", monochrome)
    if override and override != "auto":
        ignored = override
    term = environ.get("TERM", "")
    if term.lower() in DUMB_TERMS:
        return ColourDepth(None, f"TERM={term}", monochrome, ignored)
    colorterm = environ.get("COLORTERM", "").strip().lower()
    if colorterm in TRUECOLOR_VALUES:
        return ColourDepth("truecolor", f"COLORTERM={colorterm}", monochrome, ignored)
    lowered = term.strip().lower()
    because = f"TERM={term}" if term else "TERM unset"
    if not colorterm:
        because += ", COLORTERM unset"
    if lowered.startswith(XTERM_LIKE) or lowered.endswith(ADVERTISES_MANY):
        return ColourDepth("truecolor", f"{because}: 24-bit assumed", monochrome, ignored)
    system = TERM_SUFFIX_SYSTEMS.get(lowered.rpartition("-")[2], "standard")
    return ColourDepth(system, because, monochrome, ignored)


def require_terminal(command: str) -> None:
    """The app reads keys from standard input and draws on standard output: both must be
    a terminal, or it would write screen codes into a file or pipe until killed."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        return
    which = "standard input" if not sys.stdin.isatty() else "standard output"
    raise MemgridError(
        f"{command}: needs a terminal, and {which} is not one (over SSH: ssh -t); "
        "label from a script with `memgrid label`"
    )


def over_ssh(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this shell came in over SSH (sshd sets these; tmux may keep stale ones)."""
    return any(environ.get(name) for name in SSH_VARIABLES)


def in_tmux(environ: Mapping[str, str] = os.environ) -> bool:
    return bool(environ.get("TMUX"))


def tmux_passthrough(environ: Mapping[str, str] = os.environ) -> str | None:
    """tmux's allow-passthrough for this pane: "on", "all" or "off"; None when unknown.

    The option is a pane/window option, so `show -gv` (the global session table) misses it;
    `display-message -p '#{allow-passthrough}'` gives the value in effect for the pane. tmux
    before 3.3 has no such option and prints an empty line, which reads as unknown.
    """
    if not in_tmux(environ):
        return None
    command = ["tmux", "display-message", "-p"]
    if environ.get("TMUX_PANE"):
        command += ["-t", environ["TMUX_PANE"]]
    try:
        answer = subprocess.run(
            [*command, "#{allow-passthrough}"],
            capture_output=True,
            text=True,
            timeout=TMUX_QUERY_SECONDS,
            env=dict(environ),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = answer.stdout.strip().lower()
    return value if answer.returncode == 0 and value in ("on", "off", "all") else None
