"""The zoom image protocol: flag, then environment, then detection; forced means no probe."""

from __future__ import annotations

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
