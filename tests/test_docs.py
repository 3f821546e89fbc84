"""The README: every command is shown in it, and its first screen and tour run as written."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from memgrid.core.demo import DEMO_SET
from memgrid.tui.cli import app
from tests.readme import README, ROOT, section, shell_lines

# Tour lines that cannot run here, and why: the tests say so rather than skip silently.
NOT_RUN_HERE = {
    "generate": "needs the gen extra, model weights and, to be quick, a GPU",
    "merge": "merges the shard projects that generate makes",
    "annotate": "the interactive app (tests/app/test_real_terminal.py runs it in a pty)",
}
YOUR_WEIGHTS = "/models/"  # a path to the reader's own weights
EXAMPLE_GRIDS = 4  # three in examples/renders/, one in examples/manifest.jsonl


def command_paths(group, prefix: str = "memgrid") -> list[tuple[str, object]]:
    """Every command and sub-command under a (Typer's own click) group, with its path, as
    `--help` finds them (the app's commands are loaded from their modules on first use)."""
    context = typer.Context(group)
    found = []
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        path = f"{prefix} {name}"
        found.append((path, command))
        if hasattr(command, "list_commands"):
            found.extend(command_paths(command, path))
    return found


def test_every_command_has_help_and_is_in_the_readme() -> None:
    root = typer.main.get_command(app)
    paths = command_paths(root)
    assert len(paths) >= 15
    for path, command in paths:
        assert (command.help or "").strip(), f"{path} has no help text"
        assert path in README, f"{path} is not in README.md"


def test_the_first_screen_says_how_to_run_memgrid() -> None:
    first_screen = "\n".join(README.splitlines()[:30])
    for way in ("source .venv/bin/activate", "just memgrid", "pipx install ."):
        assert way in first_screen
    justfile = (ROOT / "justfile").read_text()
    assert "\nmemgrid *ARGS:" in justfile and '.venv/bin/memgrid" "$@"' in justfile


def tour_commands() -> list[str]:
    """The memgrid and export lines of the first screen and the tour, in order."""
    lines = shell_lines(section("## Start here")) + shell_lines(section("## A tour of the CLI"))
    return [line for line in lines if line.split()[0] in ("memgrid", "export")]


def not_run_here(argv: list[str]) -> str | None:
    if argv[0] in NOT_RUN_HERE:
        return NOT_RUN_HERE[argv[0]]
    if any(argument.startswith(YOUR_WEIGHTS) for argument in argv):
        return "names the reader's own weights file"
    return None


def test_the_tour_runs_in_order_on_a_fresh_demo_project(
    demo_project_dir: Path,
    tmp_path: Path,
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As after `just demo --no-open` in a fresh clone: ./demo-project and ./examples."""
    import huggingface_hub.constants

    workdir = tmp_path / "clone"
    workdir.mkdir()
    shutil.move(demo_project_dir, workdir / "demo-project")
    shutil.copytree(ROOT / "examples", workdir / "examples")
    monkeypatch.chdir(workdir)
    # No machine's downloaded weights leak in: clip is unavailable, as on a fresh machine.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    environment: dict[str, str] = {}
    ran, skipped = [], []
    for line in tour_commands():
        words = shlex.split(line)
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            environment[name] = value
            continue
        argv = words[1:]
        if not_run_here(argv):
            skipped.append(line)
            continue
        result = runner.invoke(app, argv, env=environment, prog_name="memgrid")
        assert result.exit_code == 0, f"{line}\n{result.output}"
        assert "memgrid: error" not in result.output, line
        ran.append(line)
    assert len(ran) >= 18, ran
    assert [shlex.split(line)[1] for line in skipped] == [
        "generate",
        "generate",
        "generate",
        "merge",
        "score",
        "score",
        "annotate",
        "annotate",
    ]
    # What the tour added is in the demo project; what it exported is where it says.
    status = runner.invoke(app, ["status", "--json"], env=environment)
    assert json.loads(status.stdout)["grids"] == len(DEMO_SET) + EXAMPLE_GRIDS
    assert (workdir / "myproject" / "memgrid.db").is_file()
    for out in ("labels-jsonl", "labels-parquet", "hf", "shards"):
        assert (workdir / out / "export.json").is_file(), out
    assert (workdir / "calibration.html").is_file()
    assert (workdir / "labels.jsonl").is_file()
