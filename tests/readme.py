"""The README's runnable parts, read once: its shell blocks per section and its error examples."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
# An error example's note that it shows the base install (no extras), as after `just demo`.
BASE_INSTALL_NOTE = "the base install"


def section(heading: str) -> str:
    """The README from `heading` (a `## ` or `### ` line) to the next heading of its level."""
    level = heading.split(" ")[0]
    start = README.index(f"\n{heading}\n")
    following = re.compile(rf"^{level} ", re.MULTILINE)
    end = following.search(README, start + len(heading) + 2)
    return README[start : end.start() if end else len(README)]


def shell_lines(text: str) -> list[str]:
    """The commands of a section's ```sh blocks, in order, comments and blank lines dropped."""
    lines = []
    for language, body in FENCE.findall(text):
        if language != "sh":
            continue
        for line in body.splitlines():
            command = line.split(" #", 1)[0].strip()
            if command and not command.startswith("#"):
                lines.append(command)
    return lines


@dataclass(frozen=True)
class ErrorExample:
    argv: list[str]  # after `memgrid`
    expected: str  # the one line on stderr
    base_install: bool  # shown for the base install (no extras)


def error_examples() -> list[ErrorExample]:
    """The ```console block of "When something is wrong": `$ memgrid ...` then its line."""
    (body,) = [body for language, body in FENCE.findall(section("### When something is wrong"))]
    lines = body.strip().splitlines()
    examples = []
    for command, expected in zip(lines[::2], lines[1::2], strict=True):
        assert command.startswith("$ memgrid "), command
        shown, _, note = command[2:].partition(" #")
        examples.append(ErrorExample(shlex.split(shown)[1:], expected, BASE_INSTALL_NOTE in note))
    return examples
