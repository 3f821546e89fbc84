"""init, prompts add, status, demo, and how errors reach the person."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from memgrid.tui.cli import app
from memgrid.tui.services.project import create_project, open_project


def test_init_status_and_prompts(tmp_path: Path, runner: CliRunner) -> None:
    target = tmp_path / "p"
    assert runner.invoke(app, ["init", str(target)]).exit_code == 0
    assert (
        (target / "memgrid.db").exists()
        and (target / "images").is_dir()
        and (target / "thumbs").is_dir()
    )
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a cat\n\na dog\na cat\n")
    result = runner.invoke(app, ["prompts", "add", str(prompts), "-p", str(target)])
    assert result.exit_code == 0
    assert "2 prompts added, 1 duplicate merged, 1 empty lines skipped" in result.output
    status = json.loads(runner.invoke(app, ["status", "-p", str(target), "--json"]).output)
    assert status["prompts"] == 2 and status["grids"] == 0
    assert status["journal_mode"] == "wal"


def test_project_defaults_to_env_then_cwd(tmp_path: Path, runner: CliRunner, monkeypatch) -> None:
    target = tmp_path / "p"
    runner.invoke(app, ["init", str(target)])
    monkeypatch.setenv("MEMGRID_PROJECT", str(target))
    assert runner.invoke(app, ["status", "--json"]).exit_code == 0
    monkeypatch.delenv("MEMGRID_PROJECT")
    monkeypatch.chdir(target)
    assert json.loads(runner.invoke(app, ["status", "--json"]).output)["project"] == str(Path.cwd())


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "memgrid.tui", "status", "-p", str(tmp_path / "nowhere")]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "not a memgrid project" in result.stderr
    debug = subprocess.run(
        [*command[:3], "--debug", *command[3:]], capture_output=True, text=True, check=False
    )
    assert "Traceback" in debug.stderr


def test_bad_prompt_file_is_reported_and_stores_nothing(tmp_path: Path, runner: CliRunner) -> None:
    target = tmp_path / "p"
    runner.invoke(app, ["init", str(target)])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "fine"}\n{broken\n')
    result = runner.invoke(app, ["prompts", "add", str(bad), "-p", str(target)])
    assert result.exit_code == 1
    assert "bad.jsonl:line 2: invalid JSON" in result.stderr
    assert (
        json.loads(runner.invoke(app, ["status", "-p", str(target), "--json"]).output)["prompts"]
        == 0
    )


def test_demo_builds_the_project(tmp_path: Path, runner: CliRunner) -> None:
    target = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--project", str(target), "--no-open"])
    assert result.exit_code == 0, result.output
    status = json.loads(runner.invoke(app, ["status", "-p", str(target), "--json"]).output)
    assert status["grids"] >= 24 and status["images"] >= 192
    # Scored and proposed: every category of the taxonomy is among the proposals.
    assert all(status["proposals"][c] > 0 for c in ("explicit", "implicit", "unintended", "none"))
    assert status["active_thresholds"] == "default v0"
    again = runner.invoke(app, ["demo", "--project", str(target), "--no-open"])
    assert again.exit_code == 0
    assert (
        json.loads(runner.invoke(app, ["status", "-p", str(target), "--json"]).output)["grids"]
        == status["grids"]
    )


def test_demo_refuses_a_foreign_non_empty_folder(tmp_path: Path, runner: CliRunner) -> None:
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "thesis.tex").write_text("x")
    result = runner.invoke(app, ["demo", "--project", str(tmp_path / "stuff"), "--no-open"])
    assert result.exit_code == 1
    assert "not empty and not a memgrid project" in result.stderr


def test_demo_refuses_a_project_with_grids_of_its_own(tmp_path: Path, runner: CliRunner) -> None:
    """Its synthetic grids, references and entities would mix into the project's reports and
    proposals for good: the project is left exactly as it was."""
    root = tmp_path / "real"
    with create_project(root) as project:
        project.store.grids.add("a real prompt", [], model="sd-1.4", source="import")
    result = runner.invoke(app, ["demo", "--project", str(root), "--no-open"])
    assert result.exit_code == 1
    assert result.stderr == (
        f"memgrid: error: {root}: holds 1 grids of its own; the demo goes in a folder of its "
        "own (choose another --project)\n"
    )
    with open_project(root) as project:
        assert project.store.grids.count == 1
        assert project.store.entities.all() == []
        assert project.store.references.count == 0


def test_demo_refuses_a_project_with_prompts_waiting_for_generation(
    tmp_path: Path, runner: CliRunner
) -> None:
    """Before `generate` runs there are prompts and no grids: the next generate would
    render the demo's prompts too."""
    root = tmp_path / "waiting"
    with create_project(root) as project:
        project.store.prompts.add_many([("a prompt to generate", {})])
    result = runner.invoke(app, ["demo", "--project", str(root), "--no-open"])
    assert result.exit_code == 1 and "holds 1 prompts of its own" in result.stderr
    with open_project(root) as project:
        assert project.store.prompts.count == 1 and project.store.grids.count == 0
