"""Every command has help text and is shown in the README."""

from __future__ import annotations

from pathlib import Path

import typer
from memgrid.tui.cli import app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def command_paths(group, prefix: str = "memgrid") -> list[tuple[str, object]]:
    """Every command and sub-command under a (Typer's own click) group, with its path."""
    found = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        found.append((path, command))
        if hasattr(command, "commands"):
            found.extend(command_paths(command, path))
    return found


def test_every_command_has_help_and_is_in_the_readme() -> None:
    root = typer.main.get_command(app)
    paths = command_paths(root)
    assert len(paths) >= 15
    for path, command in paths:
        assert (command.help or "").strip(), f"{path} has no help text"
        assert path in README, f"{path} is not in README.md"
