"""`memgrid doctor`: the terminal's colour depth as the app uses it, tmux, SSH, the project's
database and sharing, torch and weights; as JSON in a real pty, and on one screen."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import sys
from itertools import pairwise
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from memgrid.tui.app.colors import rich_color_environment
from memgrid.tui.cli import app
from memgrid.tui.services.advice import Advice
from memgrid.tui.services.project_health import check_project
from memgrid.tui.services.terminal import (
    COLOUR_SYSTEM_ENV,
    colour_depth,
    tmux_passthrough,
)
from tests.app.pty_terminal import PtyTerminal, visible_text
from tests.cli.test_base_install import base_install_environment
from tests.core.test_clip_sscd import TINY_MODEL, tiny_weights  # noqa: F401

ENVIRONMENTS = [
    {"TERM": "xterm-256color", "COLORTERM": "truecolor"},
    {"TERM": "xterm-256color", "COLORTERM": "24bit"},
    {"TERM": "xterm-256color"},
    {"TERM": "xterm-kitty"},
    {"TERM": "screen-16color"},
    {"TERM": "tmux-256color", "TMUX": "/tmp/tmux-0/default,1,0"},
    {"TERM": "xterm"},
    {"TERM": "linux"},
    {},
    {"TERM": "dumb", "COLORTERM": "truecolor"},
    {"TERM": "xterm", COLOUR_SYSTEM_ENV: "truecolor"},
    {"TERM": "xterm-256color", "COLORTERM": "truecolor", COLOUR_SYSTEM_ENV: "standard"},
    {"TERM": "xterm-256color", COLOUR_SYSTEM_ENV: "auto"},
    {"TERM": "xterm-256color", "NO_COLOR": "1"},
]


def textual_colour_system(environ: dict[str, str]) -> str | None:
    """What the annotation app's console gets: Textual builds it this way (textual.app.App),
    inside the environment the app sets for the depth it chose (tui/app/colors.py)."""
    environ = dict(environ)
    environ.pop("NO_COLOR", None)
    with rich_color_environment(colour_depth(environ).system, environ):
        console = Console(
            color_system=environ.get(COLOUR_SYSTEM_ENV, "auto"),
            force_terminal=True,
            _environ=dict(environ),
            legacy_windows=False,
        )
    return console.color_system


@pytest.mark.parametrize(
    "environ", ENVIRONMENTS, ids=lambda e: " ".join(f"{k}={v}" for k, v in e.items()) or "empty"
)
def test_doctor_reports_the_colour_depth_the_app_gets(environ: dict[str, str]) -> None:
    depth = colour_depth(environ)
    assert depth.system == textual_colour_system(environ)
    assert depth.monochrome == ("NO_COLOR" in environ)


def test_24_bit_colour_is_assumed_over_ssh_and_in_tmux() -> None:
    for term in ("xterm-256color", "tmux-256color", "xterm", "screen"):
        depth = colour_depth({"TERM": term})
        assert depth.truecolor and "24-bit assumed" in depth.because and depth.note == ""
    older = colour_depth({"TERM": "vt100"})
    assert older.system == "standard" and older.note.startswith("drawing in 16 colours")


def test_a_colour_system_textual_does_not_know_is_reported() -> None:
    depth = colour_depth({"TERM": "xterm-256color", COLOUR_SYSTEM_ENV: "millions"})
    assert (depth.system, depth.ignored_override) == ("truecolor", "millions")


def fake_tmux(folder: Path, answer: str) -> dict[str, str]:
    """A `tmux` on PATH that answers the passthrough query and logs its arguments."""
    folder.mkdir(exist_ok=True)
    script = folder / "tmux"
    script.write_text(f'#!/bin/sh\necho "$@" >> "{folder}/calls"\nprintf "{answer}\\n"\n')
    script.chmod(0o755)
    return {"PATH": f"{folder}{os.pathsep}{os.environ['PATH']}", "TMUX": "/tmp/x,1,0"}


@pytest.mark.parametrize(("answer", "expected"), [("off", "off"), ("on", "on"), ("", None)])
def test_tmux_passthrough_is_asked_of_the_pane(
    tmp_path: Path, answer: str, expected: str | None
) -> None:
    environ = {**fake_tmux(tmp_path / "bin", answer), "TMUX_PANE": "%3"}
    assert tmux_passthrough(environ) == expected
    assert (tmp_path / "bin" / "calls").read_text().split() == [
        "display-message",
        "-p",
        "-t",
        "%3",
        "#{allow-passthrough}",
    ]
    assert tmux_passthrough({"PATH": environ["PATH"]}) is None  # not inside tmux


# ---- the project ---------------------------------------------------------------------------


def areas(advice: list[Advice], *, serious: bool = True) -> list[str]:
    return [item.area for item in advice if item.serious == serious]


def share(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        extra = stat.S_IRGRP | stat.S_IWGRP
        if path.is_dir():
            extra |= stat.S_IXGRP | stat.S_ISGID
        path.chmod(mode | extra)


def test_a_project_shared_with_a_group_is_checked_file_by_file(demo_project_dir: Path) -> None:
    root = demo_project_dir
    root.chmod(root.stat().st_mode | stat.S_IWGRP)  # meant to be shared, not yet set up
    advice: list[Advice] = []
    old_umask = os.umask(0o022)
    try:
        health = check_project(root, advice)
    finally:
        os.umask(old_umask)
    assert health is not None and health.shared_with_group is not None
    findings = {item.fix.split()[0]: item.finding for item in advice if item.area == "sharing"}
    assert set(findings) == {"chmod", "find", "umask"}
    assert "memgrid.db" in findings["chmod"] and "setgid" in findings["find"]
    share(root)
    advice = []
    old_umask = os.umask(0o002)
    try:
        check_project(root, advice)
    finally:
        os.umask(old_umask)
    assert areas(advice) == [] and areas(advice, serious=False) == []


def test_images_written_now_are_readable_by_the_group(tmp_path: Path) -> None:
    from memgrid.core.atomic_files import atomic_write

    old_umask = os.umask(0o002)
    try:
        atomic_write(tmp_path / "a.png", b"x")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "a.png").stat().st_mode) == 0o664


def break_an_index(database: Path) -> None:
    """A row the index does not know: what a torn write or a bad copy can leave behind."""
    connection = sqlite3.connect(database)
    connection.execute("PRAGMA writable_schema = ON")
    index = connection.execute(
        "SELECT type, name, tbl_name, rootpage, sql FROM sqlite_master WHERE name = 'images_sha256'"
    ).fetchone()
    connection.execute("DELETE FROM sqlite_master WHERE name = 'images_sha256'")
    connection.commit()
    connection.close()
    connection = sqlite3.connect(database)
    connection.execute(
        "INSERT INTO images (grid_id, seed, path, sha256, width, height) "
        "VALUES (1, 99, 'x', 'abc', 1, 1)"
    )
    connection.commit()
    connection.execute("PRAGMA writable_schema = ON")
    connection.execute("INSERT INTO sqlite_master VALUES (?, ?, ?, ?, ?)", index)
    connection.commit()
    connection.close()


def test_integrity_schema_and_journal_are_read_without_changing_the_database(
    demo_project_dir: Path,
) -> None:
    database = demo_project_dir / "memgrid.db"
    break_an_index(database)
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA user_version = 2")
    advice: list[Advice] = []
    health = check_project(demo_project_dir, advice)
    assert health is not None and health.database is not None
    assert not health.database.sound
    assert health.database.schema_version == 2 and health.database.journal_mode == "wal"
    (integrity,) = [item for item in advice if item.finding.startswith("integrity_check")]
    assert "missing from index images_sha256" in integrity.finding and ".recover" in integrity.fix
    assert any("migrates it to" in item.finding and not item.serious for item in advice)
    with sqlite3.connect(database) as connection:  # doctor migrated nothing
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 2


def test_no_project_is_a_fact_unless_one_was_asked_for(tmp_path: Path) -> None:
    advice: list[Advice] = []
    assert check_project(tmp_path, advice) is None and advice == []
    assert check_project(tmp_path, advice, asked=True) is None
    assert advice[0].fix == f"memgrid init {tmp_path}"


# ---- the command -----------------------------------------------------------------------------

# What each pty run sets for itself; the rest comes from the test's own environment.
VARIED = (
    "TERM",
    "COLORTERM",
    "NO_COLOR",
    COLOUR_SYSTEM_ENV,
    "TMUX",
    "TMUX_PANE",
    "SSH_CONNECTION",
    "SSH_CLIENT",
    "SSH_TTY",
    "MEMGRID_IMAGE_PROTOCOL",
)


def doctor_in_a_pty(project: Path, environ: dict[str, str]) -> dict:
    """`memgrid doctor --json` on a real terminal, in the base install (torch stays out)."""
    base = base_install_environment(project)
    for name in VARIED:
        base.pop(name, None)
    terminal = PtyTerminal(
        [sys.executable, "-m", "memgrid.tui", "doctor", "--json"], {**base, **environ}
    )
    try:
        assert terminal.process.wait(timeout=120) == 0
    finally:
        terminal.close()
    text = visible_text(bytes(terminal.output)).decode().replace("\r", "")
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line == "{")
    end = max(i for i, line in enumerate(lines) if line == "}")
    return json.loads("\n".join(lines[start : end + 1]))


def advice_for(facts: dict, area: str) -> list[dict]:
    return [advice for advice in facts["advice"] if advice["area"] == area]


def test_doctor_json_over_ssh_without_colorterm(demo_project_dir: Path) -> None:
    facts = doctor_in_a_pty(
        demo_project_dir,
        {"TERM": "vt220", "SSH_CONNECTION": "10.0.0.2 50000 10.0.0.1 22"},
    )
    terminal = facts["terminal"]
    assert terminal["stdout_is_terminal"] is True and terminal["ssh"] is True
    assert (terminal["colour_system"], terminal["colours"]) == ("standard", 16)
    assert terminal["tmux"] is False and terminal["tmux_allow_passthrough"] is None
    assert terminal["image_protocol_requested"] == "auto"
    assert terminal["image_protocol_in_use"] == "halfcell"  # nothing answered the probes
    (colour,) = advice_for(facts, "colour")
    assert "posterised" in colour["finding"] and "MEMGRID_COLOR=truecolor" in colour["fix"]
    assert "SendEnv COLORTERM" in colour["fix"]
    assert facts["project"]["database"]["integrity"] == ["ok"]
    assert facts["extras"]["gen"]["installed"] is False and facts["torch"] is None


def test_doctor_json_in_tmux_with_passthrough_off(demo_project_dir: Path, tmp_path: Path) -> None:
    environ = {
        **fake_tmux(tmp_path / "bin", "off"),
        "TERM": "tmux-256color",
        "COLORTERM": "truecolor",
        "MEMGRID_IMAGE_PROTOCOL": "halfcell",
    }
    facts = doctor_in_a_pty(demo_project_dir, environ)
    terminal = facts["terminal"]
    assert (terminal["tmux"], terminal["tmux_allow_passthrough"]) == (True, "off")
    assert terminal["colour_system"] == "truecolor" and terminal["ssh"] is False
    assert terminal["image_protocol_requested"] == "halfcell"
    assert advice_for(facts, "colour") == []
    (images,) = advice_for(facts, "images")
    assert "tmux set -g allow-passthrough on" in images["fix"]


def test_doctor_json_on_a_dumb_terminal(demo_project_dir: Path) -> None:
    facts = doctor_in_a_pty(
        demo_project_dir, {"TERM": "dumb", "NO_COLOR": "1", "MEMGRID_IMAGE_PROTOCOL": "halfcell"}
    )
    terminal = facts["terminal"]
    assert (terminal["colour_system"], terminal["colours"], terminal["no_color"]) == (
        None,
        0,
        True,
    )
    assert "TERM=dumb" in terminal["colour_because"]


def test_doctor_reports_torch_and_the_weights_it_finds(
    demo_project_dir: Path,
    runner: CliRunner,
    tiny_weights: dict[str, Path],  # noqa: F811
    tmp_path: Path,
) -> None:
    import torch

    sscd = tmp_path / "sscd.pt"
    sscd.write_bytes(b"weights")
    arguments = ["--clip-model", TINY_MODEL, "--clip-pretrained", str(tiny_weights["pt"])]
    result = runner.invoke(
        app, ["doctor", "-p", str(demo_project_dir), *arguments, "--sscd", str(sscd), "--json"]
    )
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    assert facts["torch"]["version"] == str(torch.__version__)
    assert len(facts["torch"]["devices"]) >= torch.cuda.device_count()
    found = {weights["metric"]: weights["found"] for weights in facts["weights"]}
    assert found == {"clip": str(tiny_weights["pt"]), "sscd": str(sscd)}


def test_doctor_fits_one_screen_and_every_problem_has_a_fix(
    demo_project_dir: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in the base install, so the screen is checked without importing torch here.
    monkeypatch.setattr(
        "memgrid.tui.services.doctor.installed_extras", lambda: {"gen": ("torch",), "export": ()}
    )
    result = runner.invoke(
        app,
        ["doctor", "-p", str(demo_project_dir)],
        env={"TERM": "vt220", "COLORTERM": "", "SSH_TTY": "/dev/pts/1"},
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) <= 45
    problems = lines.index(next(line for line in lines if line.startswith("problems (")))
    assert lines[problems + 1].startswith("  colour: ")
    assert lines[problems + 2].startswith("    fix: export MEMGRID_COLOR=truecolor")
    for first, second in pairwise(lines):
        if first.startswith("  ") and not first.startswith("    "):
            assert second.startswith("    fix: "), first
