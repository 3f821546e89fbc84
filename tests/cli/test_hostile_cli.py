"""The CLI on hostile data: escapes shown escaped, markup never read, one line per failure.

Output is checked as bytes: the runner is not a terminal, so Rich writes no styles and any
ESC (or C1 control, or bidi character) in stdout or stderr came from the data.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memgrid.core.display_text import has_control_characters
from memgrid.core.prompt_files import MAX_PROMPT_CHARS
from memgrid.core.taxonomy import Category
from memgrid.tui.cli import BROKEN_PIPE_EXIT, app
from memgrid.tui.services.project import open_project
from tests.conftest import write_image
from tests.hostile.corpus import HOSTILE_STRINGS, into_closed_pipe, raw_escapes
from tests.hostile.project import HOSTILE_MODEL, build_hostile_project, hostile_prompt

ROOT = Path(__file__).resolve().parents[2]


def run(runner: CliRunner, *args: str | Path) -> tuple[int, str]:
    """Exit code and stdout+stderr; asserts that nothing a terminal obeys was written."""
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    written = result.stdout_bytes + result.stderr_bytes
    text = written.decode("utf-8")
    assert raw_escapes(text) == 0, text
    assert "Traceback" not in text
    return result.exit_code, text


def one_line_error(text: str) -> str:
    errors = [line for line in text.splitlines() if line.startswith("memgrid: error: ")]
    assert len(errors) == 1, text
    return errors[0]


def grid_folders(root: Path, prompts: list[str], model: str = HOSTILE_MODEL) -> Path:
    for index, prompt in enumerate(prompts):
        folder = root / f"grid{index:02d}"
        folder.mkdir(parents=True)
        (folder / "prompt.txt").write_text(prompt, encoding="utf-8")
        (folder / "meta.json").write_text(json.dumps({"model": model}), encoding="utf-8")
        for seed in range(2):
            write_image(folder / f"{seed:04d}.png", (index * 8 % 256, seed * 90, 40))
    return root


@pytest.fixture
def project_dir(tmp_path: Path, runner: CliRunner) -> Path:
    code, _ = run(runner, "init", tmp_path / "project")
    assert code == 0
    return tmp_path / "project"


# ---- item 1: terminal escape injection ------------------------------------------------


def test_hostile_prompts_are_stored_exactly_and_shown_escaped(
    tmp_path: Path, runner: CliRunner, project_dir: Path
) -> None:
    prompts = [hostile_prompt(i) for i in range(len(HOSTILE_STRINGS))]
    source = grid_folders(tmp_path / "src", prompts)
    bad = source / "odd\x1b]0;folder title\x07"  # a folder name that is an escape sequence
    bad.mkdir()
    (bad / "prompt.txt").write_text("no images here", encoding="utf-8")
    code, text = run(runner, "import", source, "-p", project_dir)
    assert code == 1  # the bad folder failed; the others went in
    with_controls = sum(has_control_characters(p) for p in prompts)
    assert f"note: {with_controls} prompt(s) carry control or bidi characters" in text
    assert "odd\\x1b]0;folder title\\x07: no images named by seed" in text
    with open_project(project_dir) as project:
        stored = {project.store.grids.get(g).prompt for g in project.store.grids.ids_all()}
        grid_ids = project.store.grids.ids_all()
    assert stored == set(prompts)  # exact: the data is not rewritten
    for grid_id in grid_ids:
        code, text = run(runner, "show", str(grid_id), "-p", project_dir)
        assert code == 0
        assert "model model\\x1b[2J[/x]\\u202eevil" in text
    code, text = run(runner, "status", "-p", project_dir)
    assert code == 0 and "grids" in text


def test_prompts_add_counts_prompts_with_control_characters(
    tmp_path: Path, runner: CliRunner, project_dir: Path
) -> None:
    lines = ["plain prompt", "osc \x1b]52;c;aGk=\x07 clip", "bidi \u202e reversed"]
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": p}) for p in lines), encoding="utf-8")
    code, text = run(runner, "prompts", "add", path, "-p", project_dir)
    assert code == 0
    assert "3 prompts added" in text
    assert "note: 2 prompt(s) carry control or bidi characters" in text


# ---- item 2: markup in user text ---------------------------------------------------------


def test_markup_in_annotator_names_does_not_break_status_or_agreement(
    runner: CliRunner, project_dir: Path, tmp_path: Path
) -> None:
    source = grid_folders(tmp_path / "src", ["one", "two"], model="m")
    run(runner, "import", source, "-p", project_dir)
    with open_project(project_dir) as project:
        for grid_id in project.store.grids.ids_all():
            project.store.labels.label(grid_id, "[/oops]", Category.NONE)
            project.store.labels.label(grid_id, "[/x]", Category.UNINTENDED)
    code, text = run(runner, "status", "-p", project_dir)
    assert code == 0 and "[/oops], [/x]" in text
    code, text = run(runner, "agreement", "-p", project_dir)
    assert code == 0 and "[/oops]" in text and "[/x]" in text


def test_calibrate_with_markup_and_escapes_in_threshold_and_model_names(
    tmp_path: Path, runner: CliRunner
) -> None:
    root = build_hostile_project(tmp_path / "hostile", grids=12)
    code, text = run(runner, "calibrate", "-p", root, "--by-model", "--no-plots")
    assert code == 0
    assert "set\\x1b]0;t\\x07[/x] v0 for model model\\x1b[2J[/x]\\u202eevil" in text
    code, text = run(runner, "calibrate", "-p", root, "--plots")
    assert code == 0 and "set\\x1b]0;t\\x07[/x] v0" in text
    code, text = run(runner, "agreement", "-p", root)
    assert code == 0 and "ann\\x1b]0;owned\\x07[/oops]\\u202e" in text


def test_projects_on_a_path_with_markup(tmp_path: Path, runner: CliRunner) -> None:
    root = tmp_path / "team[/x] \x1b]0;t\x07"
    code, text = run(runner, "init", root)
    assert code == 0 and "team[/x] \\x1b]0;t\\x07" in text
    code, text = run(runner, "status", "-p", root)
    assert code == 0 and "[/x]" in text


def test_demo_on_a_path_with_markup(tmp_path: Path, runner: CliRunner) -> None:
    code, text = run(runner, "demo", "--no-open", "-p", tmp_path / "demo[/x]")
    assert code == 0 and "demo[/x]" in text


# ---- item 13: one line, never a traceback --------------------------------------------------


def test_a_symbolic_link_loop_is_one_line(
    tmp_path: Path, runner: CliRunner, project_dir: Path
) -> None:
    source = grid_folders(tmp_path / "src", ["looped"], model="m")
    (source / "grid00" / "0005.png").symlink_to("0005.png")  # links to itself
    code, text = run(runner, "import", source, "-p", project_dir)
    assert code == 1
    assert "0005.png: symbolic link loop" in one_line_error(text)
    manifest = tmp_path / "src" / "manifest.jsonl"
    manifest.write_text(json.dumps({"prompt": "p", "seed": 0, "path": "grid00/0005.png"}))
    code, text = run(runner, "import", manifest, "-p", project_dir)
    assert code == 1 and "symbolic link loop" in one_line_error(text)
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    code, text = run(runner, "merge", project_dir, "--into", loop)
    assert code == 1 and "loop: symbolic link loop" in one_line_error(text)


DEEP = "[" * 100_000


@pytest.mark.parametrize(
    ("name", "content", "command"),
    [
        ("manifest.jsonl", DEEP, "import"),
        ("prompts.jsonl", DEEP, "prompts add"),
        ("prompts.jsonl", '{"prompt": "p", "x": ' + "[" * 500 + "]" * 500 + "}", "prompts add"),
        ("set.json", DEEP, "propose -t"),
        ("set.toml", "tau_mem = " + DEEP, "propose -t"),
    ],
    ids=["manifest", "prompt-file", "prompt-metadata", "thresholds-json", "thresholds-toml"],
)
def test_absurd_nesting_is_one_line(
    tmp_path: Path, runner: CliRunner, project_dir: Path, name: str, content: str, command: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    code, text = run(runner, *command.split(), path, "-p", project_dir)
    assert code == 1
    assert str(path) in one_line_error(text) and "nested" in text


def test_deep_meta_json_fails_its_grid_only(
    tmp_path: Path, runner: CliRunner, project_dir: Path
) -> None:
    source = grid_folders(tmp_path / "src", ["deep", "fine"], model="m")
    (source / "grid00" / "meta.json").write_text(DEEP, encoding="utf-8")
    code, text = run(runner, "import", source, "-p", project_dir)
    assert code == 1 and "meta.json: JSON nested deeper than" in one_line_error(text)
    assert "1 grid added" in text


def test_a_huge_seed_fails_its_row_and_the_rows_after_it_are_imported(
    tmp_path: Path, runner: CliRunner, project_dir: Path
) -> None:
    root = tmp_path / "src"
    write_image(root / "a.png", (10, 20, 30))
    write_image(root / "b.png", (200, 20, 30))
    rows = [
        {"prompt": "huge", "seed": "99999999999999999999999", "path": "a.png"},
        {"prompt": "after", "seed": 0, "path": "a.png"},
        {"prompt": "after", "seed": 1, "path": "b.png"},
    ]
    manifest = root / "manifest.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    code, text = run(runner, "import", manifest, "-p", project_dir)
    assert code == 1
    assert 'manifest.jsonl:line 1: "seed" is not an integer' in one_line_error(text)
    assert "1 grid added, 2 images added" in text
    with open_project(project_dir) as project:
        (grid_id,) = project.store.grids.ids_all()
        assert project.store.grids.get(grid_id).seeds == [0, 1]


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ("UPDATE grids SET settings = x'c3'", "not readable JSON (UnicodeDecodeError)"),
        ("UPDATE grids SET provenance = '[[[['", "not readable JSON (JSONDecodeError)"),
        ("UPDATE prompts SET text = CAST(x'ff1b5b324a' AS TEXT)", "Could not decode"),
    ],
)
def test_a_damaged_database_is_one_line(
    tmp_path: Path, runner: CliRunner, project_dir: Path, statement: str, problem: str
) -> None:
    source = grid_folders(tmp_path / "src", ["fine"], model="m")
    run(runner, "import", source, "-p", project_dir)
    with sqlite3.connect(project_dir / "memgrid.db") as connection:
        connection.execute(statement)
    code, text = run(runner, "show", "1", "-p", project_dir)
    assert code == 1
    line = one_line_error(text)
    assert problem in line and "damaged" in line


def test_show_into_a_closed_pipe_stops_quietly(tmp_path: Path, runner: CliRunner) -> None:
    root = build_hostile_project(tmp_path / "hostile", grids=2)
    done = into_closed_pipe("show", "1", "-p", root)
    assert done.returncode == BROKEN_PIPE_EXIT
    assert done.stderr == b""


def test_an_unreadable_image_names_the_file_not_a_buffer(
    tmp_path: Path, runner: CliRunner, project_dir: Path
) -> None:
    source = grid_folders(tmp_path / "src", ["garbage"], model="m")
    (source / "grid00" / "0001.png").write_bytes(b"not an image at all")
    code, text = run(runner, "import", source, "-p", project_dir)
    assert code == 1
    line = one_line_error(text)
    assert "0001.png: not a readable image (not a known image format)" in line
    assert "object at 0x" not in line


# ---- item 17: one rule for prompts, whichever reader ----------------------------------------


@pytest.mark.parametrize(
    ("prompt", "problem"),
    [
        ("nul\x00inside", "prompt contains a NUL character"),
        ("x" * (MAX_PROMPT_CHARS + 1), f"prompt longer than {MAX_PROMPT_CHARS} characters"),
    ],
    ids=["nul", "too-long"],
)
def test_prompt_files_and_imports_apply_the_same_rule(
    tmp_path: Path, runner: CliRunner, project_dir: Path, prompt: str, problem: str
) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": prompt}), encoding="utf-8")
    code, text = run(runner, "prompts", "add", prompts, "-p", project_dir)
    assert code == 1 and problem in one_line_error(text)
    source = grid_folders(tmp_path / "src", [prompt], model="m")
    code, text = run(runner, "import", source, "-p", project_dir)
    assert code == 1 and problem in one_line_error(text)
    manifest = tmp_path / "src" / "manifest.jsonl"
    manifest.write_text(json.dumps({"prompt": prompt, "seed": 0, "path": "grid00/0000.png"}))
    code, text = run(runner, "import", manifest, "-p", project_dir)
    assert code == 1 and problem in one_line_error(text)
    with open_project(project_dir) as project:
        assert project.store.grids.count == 0 and project.store.prompts.count == 0


def test_the_longest_prompt_allowed_goes_in_through_both_readers(
    tmp_path: Path, runner: CliRunner, project_dir: Path
) -> None:
    longest = "y" * MAX_PROMPT_CHARS
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(longest, encoding="utf-8")
    assert run(runner, "prompts", "add", prompts, "-p", project_dir)[0] == 0
    source = grid_folders(tmp_path / "src", [longest], model="m")
    assert run(runner, "import", source, "-p", project_dir)[0] == 0
    with open_project(project_dir) as project:
        assert project.store.prompts.count == 1 and project.store.grids.count == 1


HUGE = "9" * 30  # past SQLite's 64-bit integers and any id


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (["show", HUGE], "less than or equal to 9223372036854775807"),
        (["label", HUGE, "none", "-a", "bob"], "less than or equal to 9223372036854775807"),
        (["label", "1", "none", "-a", "bob", "--overlap", HUGE], "a number given is too large"),
        (["thresholds", "activate", f"default@{HUGE}"], "no threshold set has a version"),
        (["propose", "-t", "BIG_FILE"], "tau_mem = 1000000000000000000000000000000000000"),
    ],
)
def test_a_number_too_large_to_store_is_one_line(
    demo_project_dir: Path, tmp_path: Path, arguments: list[str], problem: str
) -> None:
    big = tmp_path / "big.json"
    big.write_text('{"tau_mem": 1' + "0" * 400 + "}")
    arguments = [str(big) if word == "BIG_FILE" else word for word in arguments]
    result = CliRunner().invoke(app, [*arguments, "-p", str(demo_project_dir)])
    assert result.exit_code in (1, 2)
    assert problem in result.stderr and len(result.stderr.splitlines()) == 1
