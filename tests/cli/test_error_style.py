"""One error style: every failure is `memgrid: error: WHERE: PROBLEM` on one line, exit non-zero.

The README's examples run exactly as printed there (those of the base install run in
tests/cli/test_base_install.py); the cases below cover each kind of failure a command can
meet: bad files and records, unknown records, bad options, command-line usage, projects
and databases, the filesystem.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memgrid.tui.cli import app
from memgrid.tui.errors import ERROR_LINE, ERROR_PREFIX
from tests.readme import error_examples

OTHER_STDERR = ("note: ", "warning: ")


def stderr_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def assert_error_style(result, *, lines: int | None = 1) -> list[str]:
    """Exit non-zero; every error line has the shape; nothing else on stderr but notes."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    errors = [line for line in stderr_lines(result) if line.startswith(ERROR_PREFIX)]
    others = [line for line in stderr_lines(result) if not line.startswith(ERROR_PREFIX)]
    assert errors, result.output
    assert all(line.startswith(OTHER_STDERR) for line in others), others
    for line in errors:
        assert ERROR_LINE.match(line), line
    if lines is not None:
        assert len(errors) == lines, errors
    return errors


README_EXAMPLES = [example for example in error_examples() if not example.base_install]


@pytest.mark.parametrize("example", README_EXAMPLES, ids=lambda e: " ".join(e.argv))
def test_the_readme_error_examples_print_what_the_readme_says(
    example, demo_project_dir: Path, tmp_path: Path, runner: CliRunner, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        app, example.argv, env={"MEMGRID_PROJECT": str(demo_project_dir)}, prog_name="memgrid"
    )
    assert_error_style(result)
    assert stderr_lines(result) == [example.expected]


def test_the_readme_shows_every_kind_of_error() -> None:
    assert len(README_EXAMPLES) >= 5
    assert len(error_examples()) - len(README_EXAMPLES) == 2  # the extras, in the base install


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def cases(tmp_path: Path, demo_project_dir: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (argv, the WHERE the line must name)."""
    project = str(demo_project_dir)
    not_sqlite = tmp_path / "broken"
    not_sqlite.mkdir()
    write(not_sqlite / "memgrid.db", "this is not a database")
    newer = tmp_path / "newer"
    newer.mkdir()
    connection = sqlite3.connect(newer / "memgrid.db")
    connection.execute("PRAGMA user_version = 999")
    connection.close()
    a_file = write(tmp_path / "a-file", "")
    no_prompt = write(tmp_path / "prompts.csv", "text\nhello\n")
    bad_json = write(tmp_path / "prompts.jsonl", '{"prompt": "fine"}\n{broken\n')
    keys = write(tmp_path / "keys.toml", '[keys]\nskip = "1"\n')
    return {
        "prompt file without a prompt column": (
            ["prompts", "add", str(no_prompt), "-p", project],
            f"{no_prompt}:line 1",
        ),
        "prompt file with a broken line": (
            ["prompts", "add", str(bad_json), "-p", project],
            f"{bad_json}:line 2",
        ),
        "unknown grid": (["show", "4242", "-p", project], "grid 4242"),
        "unknown threshold set": (
            ["propose", "-t", "nosuch", "-p", project],
            "--thresholds 'nosuch'",
        ),
        "bad objective": (["calibrate", "--objective", "best", "-p", project], "--objective"),
        "bad option value": (["annotate", "--order", "zz", "-p", project], "--order"),
        "bad config file": (
            ["annotate", "-p", project, "-a", "x", "--image-protocol", "halfcell"],
            f"{keys}:keys",
        ),
        "missing option": (["generate"], "memgrid generate"),
        "option of the wrong type": (
            ["generate", "--model", "x", "--seeds", "many"],
            "memgrid generate",
        ),
        "unknown command": (["bogus"], "memgrid"),
        "missing argument": (["prompts", "add"], "memgrid prompts add"),
        "not a project": (["status", "-p", str(tmp_path / "nowhere")], str(tmp_path / "nowhere")),
        "not a database": (["status", "-p", str(not_sqlite)], str(not_sqlite / "memgrid.db")),
        "newer schema": (["status", "-p", str(newer)], str(newer / "memgrid.db")),
        "a file where a folder goes": (["init", str(a_file)], str(a_file)),
        "an empty path": (["merge", "--into", "", project], "memgrid merge"),
    }


CASE_NAMES = [
    "prompt file without a prompt column",
    "prompt file with a broken line",
    "unknown grid",
    "unknown threshold set",
    "bad objective",
    "bad option value",
    "bad config file",
    "missing option",
    "option of the wrong type",
    "unknown command",
    "missing argument",
    "not a project",
    "not a database",
    "newer schema",
    "a file where a folder goes",
    "an empty path",
]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_every_kind_of_error_has_the_one_shape(
    name: str,
    cases: dict[str, tuple[list[str], str]],
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    argv, where = cases[name]
    monkeypatch.setenv("MEMGRID_CONFIG", str(tmp_path / "keys.toml"))
    result = runner.invoke(app, argv, prog_name="memgrid")
    (line,) = assert_error_style(result)
    assert ERROR_LINE.match(line)["where"] == where, line


def test_every_failing_record_of_an_import_is_its_own_line(
    demo_project_dir: Path, tmp_path: Path, runner: CliRunner
) -> None:
    manifest = write(
        tmp_path / "manifest.jsonl",
        '{"prompt": "a", "seed": "x", "path": "a.png"}\n{"prompt": "b", "seed": 1}\n',
    )
    result = runner.invoke(app, ["import", str(manifest), "-p", str(demo_project_dir)])
    errors = assert_error_style(result, lines=2)
    assert [ERROR_LINE.match(line)["where"] for line in errors] == [
        f"{manifest}:line 1",
        f"{manifest}:line 2",
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["init", ""],
        ["init", "  "],
        ["status", "-p", ""],
        ["merge", "--into", "", "elsewhere"],
        ["report", "--html", ""],
        ["labels", "export", ""],
    ],
    ids=" ".join,
)
def test_an_empty_path_is_refused_rather_than_read_as_the_current_folder(
    argv: list[str], runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Typer reads "" as ".": `init "$UNSET"` would have made the current folder a project.
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, argv, prog_name="memgrid")
    (line,) = assert_error_style(result)
    assert "an empty path names no file or folder" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["show", "abc"], "invalid value for 'grid_id': not a whole number"),
        (["score", "--workers", "x"], "invalid value for '--workers' / '-j': not a whole number"),
        (
            ["label", "2", "memorized"],
            "invalid value for 'category': 'memorized' is not one of 'explicit', 'implicit', "
            "'unintended', 'none'",
        ),
    ],
    ids=" ".join,
)
def test_a_bad_value_is_said_in_memgrid_words_not_the_validator_s(
    argv: list[str], problem: str, runner: CliRunner, demo_project_dir: Path
) -> None:
    result = runner.invoke(app, [*argv, "-p", str(demo_project_dir)], prog_name="memgrid")
    (line,) = assert_error_style(result)
    assert problem in line
    assert "Value error" not in line and "Input should" not in line


def test_a_missing_choice_lists_the_choices_on_the_one_line(
    runner: CliRunner, demo_project_dir: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        app, ["export", "-p", str(demo_project_dir), "--out", str(tmp_path / "x")]
    )
    (line,) = assert_error_style(result)
    assert "Choose from: jsonl, csv, parquet, imagefolder, webdataset;" in line
    assert "\\n" not in line
