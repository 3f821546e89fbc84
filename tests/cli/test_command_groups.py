"""The CLI's command groups are registered explicitly, in the order a project uses them."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import memgrid.tui.commands
from memgrid.tui.cli import COMMAND_MODULES, app, module_commands
from memgrid.tui.errors import error_line
from memgrid.tui.services.project import open_project
from tests.cli.test_program import InterruptedImport
from tests.conftest import interrupt_at_call


def test_every_command_is_found_in_the_module_that_registers_it() -> None:
    modules = {m.name for m in pkgutil.iter_modules(memgrid.tui.commands.__path__)}
    assert set(COMMAND_MODULES.values()) == modules
    for name in modules:
        registering = typer.Typer()
        importlib.import_module(f"memgrid.tui.commands.{name}").register(registering)
        registered = [command.name for command in registering.registered_commands]
        registered += [group.name for group in registering.registered_groups]
        assert sorted(registered) == sorted(c for c, m in COMMAND_MODULES.items() if m == name)


def test_the_cli_loads_a_command_module_only_when_its_command_runs() -> None:
    """`memgrid status` imports the project commands, not generation's or export's."""
    script = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from memgrid.tui.cli import app\n"
        "loaded = lambda: sorted(m.rpartition('.')[2] for m in sys.modules\n"
        "    if m.startswith('memgrid.tui.commands.'))\n"
        "print(loaded())\n"
        "CliRunner().invoke(app, ['status', '--help'])\n"
        "print(loaded())\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "['project']"]


def test_help_lists_the_commands_in_workflow_order() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    listed = [line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line]
    workflow = ["init", "generate", "score", "propose", "annotate", "calibrate", "report", "export"]
    assert [command for command in listed if command in workflow] == workflow


def test_ctrl_c_while_a_command_loads_gets_the_interrupted_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module_commands.cache_clear()
    monkeypatch.delitem(sys.modules, "memgrid.tui.commands.doctor", raising=False)
    interrupted = InterruptedImport("memgrid.tui.commands.doctor")
    monkeypatch.setattr(sys, "meta_path", [interrupted, *sys.meta_path])
    try:
        result = CliRunner().invoke(app, ["doctor"])
    finally:
        module_commands.cache_clear()  # the next test loads the module itself
    assert result.exit_code == 130
    assert result.stderr == error_line("memgrid: interrupted") + "\n"


def test_ctrl_c_in_a_command_without_its_own_account_gets_one_line(
    monkeypatch: pytest.MonkeyPatch, demo_project_dir: Path
) -> None:
    """Typer ends such a run silently with 130; memgrid says it was interrupted, and the
    store keeps everything written before (here the demo's proposals)."""
    from memgrid.tui.commands import proposing

    with open_project(demo_project_dir) as project:
        before = project.store.db.execute("SELECT count(*) FROM proposals").fetchone()[0]
    interrupt_at_call(monkeypatch, proposing, "propose_all")
    result = CliRunner().invoke(app, ["propose", "-p", str(demo_project_dir)])
    assert result.exit_code == 130
    assert (
        result.stderr
        == error_line(
            "memgrid propose: interrupted: nothing is half-written; what was stored before stays"
        )
        + "\n"
    )
    with open_project(demo_project_dir) as project:
        assert project.store.db.execute("SELECT count(*) FROM proposals").fetchone()[0] == before


def test_ctrl_c_in_a_groups_command_names_the_whole_command(
    monkeypatch: pytest.MonkeyPatch, demo_project_dir: Path, tmp_path: Path
) -> None:
    from memgrid.tui.commands import labels

    interrupt_at_call(monkeypatch, labels, "export_labels")
    out = tmp_path / "labels.jsonl"
    result = CliRunner().invoke(app, ["labels", "export", str(out), "-p", str(demo_project_dir)])
    assert result.exit_code == 130
    assert result.stderr.startswith("memgrid: error: memgrid labels export: interrupted: ")
    assert not out.exists()


def test_ctrl_c_with_debug_shows_where_it_was(
    monkeypatch: pytest.MonkeyPatch, demo_project_dir: Path
) -> None:
    from memgrid.tui.commands import proposing

    interrupt_at_call(monkeypatch, proposing, "propose_all")
    result = CliRunner().invoke(app, ["--debug", "propose", "-p", str(demo_project_dir)])
    assert result.exit_code == 130
    assert "Traceback" in result.stderr and "run_or_interrupt" in result.stderr
    assert result.stderr.endswith(
        "memgrid propose: interrupted: nothing is half-written; what was stored before stays\n"
    )


def test_a_mistyped_command_gets_the_close_ones_suggested() -> None:
    result = CliRunner().invoke(app, ["stauts"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "memgrid: error: memgrid: no such command 'stauts'. Did you mean 'status'?; "
        "see `memgrid --help`"
    )
