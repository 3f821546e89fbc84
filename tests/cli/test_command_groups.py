"""The CLI's command groups are registered explicitly, in the order a project uses them."""

from __future__ import annotations

import pkgutil

from typer.testing import CliRunner

import memgrid.tui.commands
from memgrid.tui.cli import WORKFLOW_ORDER, app


def test_every_command_module_is_registered_once() -> None:
    modules = {m.name for m in pkgutil.iter_modules(memgrid.tui.commands.__path__)}
    registered = [group.__name__.rpartition(".")[2] for group in WORKFLOW_ORDER]
    assert sorted(registered) == sorted(modules)


def test_help_lists_the_commands_in_workflow_order() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    listed = [line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line]
    workflow = ["init", "generate", "score", "propose", "annotate", "calibrate", "report", "export"]
    assert [command for command in listed if command in workflow] == workflow
