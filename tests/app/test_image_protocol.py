"""The image protocol: flag, then environment, then the terminal; and the colour depth."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memgrid.core.errors import InputError
from memgrid.tui.app.colors import rich_color_environment
from memgrid.tui.app.image_protocol import (
    PROTOCOL_ENV,
    protocol_from_environment,
    requested_protocol,
)
from memgrid.tui.services.terminal import COLOUR_ENV, colour_depth, requested_colour

ROOT = Path(__file__).resolve().parents[2]


def test_flag_wins_over_environment() -> None:
    assert requested_protocol("sixel", {PROTOCOL_ENV: "kitty"}) == "sixel"
    assert requested_protocol(None, {PROTOCOL_ENV: "ITERM2"}) == "iterm2"
    assert requested_protocol(None, {PROTOCOL_ENV: "tgp"}) == "kitty"  # textual-image's name
    assert requested_protocol(None, {}) == "auto"


@pytest.mark.parametrize(("flag", "env"), [("ascii", None), (None, "png")])
def test_unknown_protocols_are_refused(flag: str | None, env: str | None) -> None:
    environ = {PROTOCOL_ENV: env} if env else {}
    with pytest.raises(InputError, match="unknown image protocol"):
        requested_protocol(flag, environ)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"TERM": "xterm-kitty"}, "kitty"),
        ({"TERM": "xterm-256color", "TERM_PROGRAM": "ghostty"}, "kitty"),
        ({"TERM": "xterm-256color", "LC_TERMINAL": "iTerm2"}, "iterm2"),  # ssh passes LC_*
        ({"TERM": "xterm-256color", "TERM_PROGRAM": "WezTerm"}, "iterm2"),
        ({"TERM": "xterm-256color"}, None),
    ],
)
def test_terminals_that_say_who_they_are(environ: dict[str, str], expected: str | None) -> None:
    assert protocol_from_environment(environ) == expected


def settled_in_subprocess(requested: str, environ: dict[str, str]) -> list[str]:
    # A fresh process: textual-image settles its renderer once, at import.
    code = (
        "from memgrid.tui.app.image_protocol import settle_protocol\n"
        f"choice = settle_protocol({requested!r})\n"
        "print(choice.protocol, *choice.cell_pixels, sep='|', end='|')\n"
        "print(choice.note)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TERM_PROGRAM")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        env={**env, **environ},
    )
    return result.stdout.strip().split("|")


def test_no_terminal_means_half_cell() -> None:
    assert settled_in_subprocess("auto", {"TERM": "xterm-256color"})[:3] == ["halfcell", "1", "2"]


def test_a_forced_protocol_is_kept_with_the_cell_size() -> None:
    protocol, width, height, note = settled_in_subprocess("sixel", {})
    assert (protocol, int(width) > 0, int(height) > 0, note) == ("sixel", True, True, "")


def test_inside_tmux_the_status_says_how_to_get_real_pixels() -> None:
    protocol, *_, note = settled_in_subprocess("auto", {"TMUX": "/tmp/tmux-0/default,1,0"})
    assert protocol == "halfcell"
    assert "allow-passthrough" in note and "sixel" in note
    protocol, *_, note = settled_in_subprocess("iterm2", {"TMUX": "/tmp/tmux-0/default,1,0"})
    assert protocol == "halfcell" and "iTerm2" in note
    protocol, *_, note = settled_in_subprocess("kitty", {"TMUX": "/tmp/tmux-0/default,1,0"})
    assert protocol == "kitty" and "allow-passthrough" in note


@pytest.mark.parametrize(
    ("environ", "system", "noted"),
    [
        ({"TERM": "xterm-256color"}, "truecolor", False),  # ssh: no COLORTERM
        ({"TERM": "tmux-256color"}, "truecolor", False),
        ({"TERM": "xterm"}, "truecolor", False),
        ({"TERM": "screen"}, "truecolor", False),
        ({"TERM": "vt100"}, "standard", True),
        ({"TERM": "linux"}, "standard", True),
        ({"TERM": "vt220", "COLORTERM": "truecolor"}, "truecolor", False),
    ],
)
def test_truecolor_unless_the_terminal_is_plainly_older(
    environ: dict[str, str], system: str, noted: bool
) -> None:
    chosen = colour_depth(environ)
    assert chosen.system == system and bool(chosen.note) == noted


def test_colour_flag_then_environment() -> None:
    assert requested_colour("256", {COLOUR_ENV: "16"}) == "256"
    assert requested_colour(None, {COLOUR_ENV: "TrueColor"}) == "truecolor"
    chosen = colour_depth({"COLORTERM": "truecolor"}, requested="256")
    assert chosen.system == "256" and chosen.note.startswith("drawing in 256 colours")
    assert colour_depth({"TERM": "vt100"}, requested="16").system == "standard"
    with pytest.raises(InputError, match="unknown colour depth"):
        requested_colour("millions", {})


@pytest.mark.parametrize("system", ["truecolor", "256", "standard"])
def test_the_console_draws_in_the_chosen_depth(system: str) -> None:
    from rich.console import Console

    environ = {"TERM": "vt100"}
    with rich_color_environment(system, environ):
        console = Console(force_terminal=True, _environ=dict(environ))
    assert console.color_system == system
    assert environ == {"TERM": "vt100"}  # restored


@pytest.mark.parametrize("multiplexer", [{"TMUX": "/tmp/tmux-1000/default,1,0"}, {"STY": "1.pts"}])
def test_detection_inside_tmux_or_screen_sends_no_apc_sequence(multiplexer: dict[str, str]) -> None:
    # tmux takes an APC sequence (the Kitty graphics probe) as the pane's new title.
    written = probe_output(multiplexer)
    assert b"\x1b_" not in written
    assert b"USED halfcell" in written  # this pty answers no query: half-cell
    assert b"Traceback" not in written


def test_detection_prints_no_traceback_when_the_terminal_does_not_answer() -> None:
    written = probe_output({})
    assert b"Traceback" not in written and b"USED halfcell" in written


def probe_output(extra_env: dict[str, str]) -> bytes:
    """What `auto` detection writes to a real (silent) terminal, in a fresh process."""
    from tests.app.pty_terminal import PtyTerminal

    code = (
        "from memgrid.tui.app.image_protocol import settle_protocol\n"
        "print('USED', settle_protocol('auto').protocol)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "STY")}
    env.update(TERM="xterm-256color", **extra_env)
    terminal = PtyTerminal([sys.executable, "-c", code], env)
    try:
        terminal.wait_for(b"USED", timeout=30)
        terminal.process.wait(timeout=30)
        terminal.quiet(0.2)
        return bytes(terminal.output)
    finally:
        terminal.close()


AFTER_THE_PROBE = (
    "import os, select, termios, time, tty\n"
    "from memgrid.tui.app.image_protocol import settle_protocol\n"
    "used = settle_protocol('auto').protocol\n"
    "tty.setcbreak(0, termios.TCSANOW)\n"  # read what is left as the app would, key by key
    "time.sleep(0.3)\n"
    "left = os.read(0, 100) if select.select([0], [], [], 0)[0] else b''\n"
    "print('USED', used, 'LEFT', left)\n"
)


@pytest.mark.parametrize(
    ("extra_env", "answer", "expected"),
    [
        ({"TMUX": "/tmp/tmux-1000/default,1,0"}, b"\x1b[?62;4;22c", "sixel"),
        ({}, b"\x1b_Gi=31;OK\x1b\\\x1b[?62;22c", "kitty"),
        ({}, b"\x1b[?62;22c", "halfcell"),
    ],
    ids=["sixel in tmux", "kitty", "neither"],
)
def test_a_key_typed_while_the_terminal_is_asked_never_reaches_the_app(
    extra_env: dict[str, str], answer: bytes, expected: str
) -> None:
    # textual-image's probe stopped at the typed key and left the terminal's answer
    # (ESC [ ? 6 2 ; 4 c) to the app, which read it as keys: its `?` opened the help screen.
    from tests.app.pty_terminal import PtyTerminal

    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "STY", "TERM_PROGRAM")}
    env.update(TERM="xterm-256color", **extra_env)
    terminal = PtyTerminal([sys.executable, "-c", AFTER_THE_PROBE], env)
    try:
        deadline = time.monotonic() + 30
        while b"\x1b[c" not in terminal.output:
            assert time.monotonic() < deadline, bytes(terminal.output)
            time.sleep(0.01)
        assert (b"\x1b_G" in terminal.output) is (expected != "sixel")  # no APC in tmux
        terminal.send(b"4")  # the annotator, already at the keys
        terminal.send(answer)
        terminal.wait_for(b"USED", timeout=30)
        terminal.process.wait(timeout=30)
        terminal.quiet(0.2)
        written = bytes(terminal.output)
    finally:
        terminal.close()
    assert f"USED {expected} LEFT b''".encode() in written
