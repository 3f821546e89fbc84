"""The zoom image protocol: flag, then environment, then detection; forced means no probe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from memgrid.core.errors import InputError
from memgrid.tui.app.image_protocol import PROTOCOL_ENV, requested_protocol

ROOT = Path(__file__).resolve().parents[2]


def test_flag_wins_over_environment() -> None:
    assert requested_protocol("sixel", {PROTOCOL_ENV: "tgp"}) == "sixel"
    assert requested_protocol(None, {PROTOCOL_ENV: "TGP"}) == "tgp"
    assert requested_protocol(None, {}) == "auto"


@pytest.mark.parametrize(("flag", "env"), [("kitty", None), (None, "ascii")])
def test_unknown_protocols_are_refused(flag: str | None, env: str | None) -> None:
    environ = {PROTOCOL_ENV: env} if env else {}
    with pytest.raises(InputError, match="unknown image protocol"):
        requested_protocol(flag, environ)


@pytest.mark.parametrize(
    ("protocol", "widget"),
    [
        ("halfcell", "HalfcellImage"),
        ("tgp", "TGPImage"),
        ("auto", "HalfcellImage"),
    ],
)
def test_widget_class_for_each_protocol(protocol: str, widget: str) -> None:
    # In a fresh process: textual-image settles its renderer once, at import.
    code = (
        "from memgrid.tui.app.image_protocol import load_image_widget\n"
        f"used, cls = load_image_widget({protocol!r})\n"
        "print(used, cls.__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    # Without a terminal, detection finds nothing and half-cell is used.
    expected = "halfcell" if protocol == "auto" else protocol
    assert result.stdout.split() == [expected, widget]


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
        "from memgrid.tui.app.image_protocol import load_image_widget\n"
        "print('USED', load_image_widget('auto')[0])"
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
