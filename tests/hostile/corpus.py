"""Hostile text, as scraped datasets and shared servers deliver it, and how to spot a leak.

Used by the property tests here, the CLI and app tests, and bench/hostile.py. Every kind
the issue names: OSC 52 (clipboard), OSC 0/2 (title), OSC 8 (link), CSI 2J (clear), SGR
colour, DCS, APC, 8-bit C1 controls, BEL and backspace, bidi overrides and isolates,
zero-width and tag characters, Rich markup, emoji codes, and a NUL.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from hypothesis import strategies as st

# Escape sequences a terminal acts on; each must never reach it raw from data.
ESCAPE_SEQUENCES = (
    "\x1b]52;c;aGVsbG8gZnJvbSB0aGUgY2xpcGJvYXJk\x07",  # OSC 52: write the clipboard
    "\x1b]52;c;cGFzdGU=\x1b\\",  # OSC 52 with ST
    "\x1b]0;pwned title\x07",  # OSC 0: window title
    "\x1b]2;pane title\x1b\\",  # OSC 2
    "\x1b]8;;https://example.invalid/\x1b\\click\x1b]8;;\x1b\\",  # OSC 8 hyperlink
    "\x1b[2J\x1b[H",  # clear the screen, cursor home
    "\x1b[31mRED\x1b[0m",  # SGR colour
    "\x1bP1$qm\x1b\\",  # DCS (a DECRQSS request)
    "\x1b_Gi=1,a=q;AAAA\x1b\\",  # APC (Kitty graphics; tmux sets the pane title)
    "\x9b2J",  # 8-bit C1 CSI
    "\x9d0;c1 title\x9c",  # 8-bit C1 OSC ... ST
    "\x07\x08\x08\x7f",  # BEL, backspaces, DEL
    "\x1bc",  # RIS: full terminal reset
)
BIDI = (
    "\u202eevil.png\u202c",  # right-to-left override ... pop
    "admin\u2066\u2067 trusted \u2069",  # isolates
    "\u200f\u061c\u200e",  # RLM, ALM, LRM
    "zero\u200bwidth\u2060joiner\ufeff",  # zero width space, word joiner, BOM
    "tag\U000e0041\U000e0042",  # invisible tag characters ("ASCII smuggling")
)
MARKUP = (
    "[/oops]",
    "[/x]",
    "[bold red]shout[/bold red]",
    "[link=https://example.invalid]link[/link]",
    "[@click=app.quit]quit[/]",
    "\\[escaped] and [dim",
    ":smile: :warning:",
)
ODD = (
    "a\nnewline",
    "tab\there",
    "carriage\rreturn",
    "nul\x00byte",
    "\u2028line sep\u2029para sep",
)
HOSTILE_STRINGS = ESCAPE_SEQUENCES + BIDI + MARKUP + ODD

# Characters that must never reach a terminal raw from data: C0 (but none of memgrid's
# own), DEL, C1, bidi and other format characters, line/paragraph separators.
_FORBIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2028-\u202e"
    "\u2060-\u2064\u2066-\u2069\ufeff\U000e0001\U000e0020-\U000e007f]"
)
# What a Textual frame is made of: cursor moves (CSI row;col H) and styles (SGR, CSI ... m).
APP_SEQUENCE = re.compile("\x1b\\[[0-9;]*[Hm]")


def raw_escapes(output: str, *, app_frame: bool = False) -> int:
    """How many characters of `output` a terminal would obey that no display should send.

    For CLI output (not a terminal: Rich writes no styles) every ESC counts. For a frame of
    the app, its own cursor moves and styles are removed first; then any ESC left counts,
    and so does any escape sequence of the corpus found verbatim.
    """
    verbatim = sum(output.count(sequence) for sequence in ESCAPE_SEQUENCES)
    if app_frame:
        output = APP_SEQUENCE.sub("", output)
    return output.count("\x1b") + len(_FORBIDDEN.findall(output)) + verbatim


def into_closed_pipe(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    """Run `memgrid ARGS` with stdout a pipe nobody reads any more (`| head` that exited)."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return subprocess.run(
            [sys.executable, "-m", "memgrid.tui", *map(str, args)],
            stdout=writer,
            stderr=subprocess.PIPE,
            cwd=Path(__file__).resolve().parents[2],
            timeout=120,
            check=False,
        )
    finally:
        os.close(writer)


# One of each, then mixtures with ordinary prompt text.
ordinary = st.sampled_from(
    ["a cat on a mat", "the Mona Lisa", "Ölgemälde 油画", "a red car", "café ☕ 👩‍🎨"]
)
hostile_piece = st.sampled_from(HOSTILE_STRINGS)
hostile_text = st.one_of(
    hostile_piece,
    st.lists(st.one_of(hostile_piece, ordinary), min_size=1, max_size=5).map(" ".join),
    st.text(
        alphabet=st.characters(whitelist_categories=("Cc", "Cf", "Zl", "Zp", "L", "P")),
        min_size=1,
        max_size=40,
    ),
)
# Hostile text that a prompt file can carry on one line without a NUL (the one refused byte).
hostile_prompt = hostile_text.map(lambda t: t.replace("\x00", "").strip()).filter(bool)
