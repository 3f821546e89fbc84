"""What the terminal gives the annotation app: colour depth, tmux, SSH.

`colour_depth` is the one place the app's colour depth is decided: `memgrid annotate` hands
its answer to Textual before the app starts (`export_colour_depth`), and `memgrid doctor`
reports the same answer. Seed thumbnails are truecolor half-cell text (docs/design.md, "The
annotation app"); at 256 colours or fewer they look posterised, which is what an annotator
who asks "why do the seeds look banded?" needs to be told, with the fix.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

# Textual's override of its colour depth (textual.constants.COLOR_SYSTEM).
COLOUR_SYSTEM_ENV = "TEXTUAL_COLOR_SYSTEM"
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


def colour_depth(environ: Mapping[str, str] = os.environ) -> ColourDepth:
    """The colour depth the annotation app will use in a terminal with this environment.

    Today this is Textual's own rule (rich's detection with a terminal forced on): a valid
    $TEXTUAL_COLOR_SYSTEM wins; TERM=dumb has no colour; COLORTERM=truecolor or 24bit gives
    truecolor; else TERM's suffix (256color, kitty) gives 256 colours, and anything else 16.
    """
    monochrome = "NO_COLOR" in environ
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
    suffix = term.strip().lower().rpartition("-")[2]
    system = TERM_SUFFIX_SYSTEMS.get(suffix, "standard")
    because = f"TERM={term}" if term else "TERM unset"
    if not colorterm:
        because += ", COLORTERM unset"
    return ColourDepth(system, because, monochrome, ignored)


def export_colour_depth(environ: MutableMapping[str, str] = os.environ) -> ColourDepth:
    """Hand `colour_depth`'s answer to Textual, so the app draws at the depth doctor reports.

    Textual reads $TEXTUAL_COLOR_SYSTEM once, when it is first imported: call this before.
    "auto" (no colour) lets Textual find the dumb terminal itself.
    """
    depth = colour_depth(environ)
    environ[COLOUR_SYSTEM_ENV] = depth.system or "auto"
    return depth


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
