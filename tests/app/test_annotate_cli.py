"""`memgrid annotate` wiring: the CLI builds settings and hands them to make_app; no TUI runs."""

from __future__ import annotations

import json
from pathlib import Path
from unittest.mock import MagicMock

import pytest
from typer.testing import CliRunner

import memgrid.tui.app
from memgrid.core.annotators import OsIdentity
from memgrid.tui.app.config import AppSettings
from memgrid.tui.cli import app as cli


@pytest.fixture
def fake_make_app(monkeypatch: pytest.MonkeyPatch) -> MagicMock:
    made = MagicMock(name="make_app")
    made.return_value.return_code = 0  # the app ran and quit normally
    monkeypatch.setattr(memgrid.tui.app, "make_app", made)
    monkeypatch.setattr("memgrid.tui.app.collector.tune_for_interaction", lambda: None)
    monkeypatch.setattr("memgrid.tui.commands.annotate.require_terminal", lambda command: None)
    return made


def settings_passed(made: MagicMock) -> AppSettings:
    (project, settings), _ = made.call_args
    assert project.root.exists()
    return settings


def test_an_app_that_failed_makes_the_command_fail(
    demo_project_dir: Path, runner: CliRunner, fake_make_app: MagicMock
) -> None:
    # Textual prints the traceback of a crashed app and returns 1; the shell must see it.
    fake_make_app.return_value.return_code = 1
    arguments = ["annotate", "-p", str(demo_project_dir), "--image-protocol", "halfcell"]
    result = runner.invoke(cli, arguments)
    assert result.exit_code == 1
    fake_make_app.return_value.session.release_all.assert_called_once()


def test_options_reach_the_app_settings(
    demo_project_dir: Path, runner: CliRunner, fake_make_app: MagicMock
) -> None:
    result = runner.invoke(
        cli,
        [
            "annotate",
            "-p",
            str(demo_project_dir),
            "--annotator",
            "zoe",
            "--order",
            "random",
            "--seed",
            "7",
            "--show-others",
            "--overlap",
            "2",
            "--image-protocol",
            "halfcell",
        ],
    )
    assert result.exit_code == 0, result.output
    settings = settings_passed(fake_make_app)
    assert (settings.annotator, settings.order, settings.random_seed) == ("zoe", "random", 7)
    assert (settings.show_others, settings.overlap, settings.image_protocol) == (
        True,
        2,
        "halfcell",
    )
    app = fake_make_app.return_value
    app.run.assert_called_once_with()
    app.session.release_all.assert_called_once_with()


def test_annotator_defaults_to_the_login_name(
    demo_project_dir: Path,
    runner: CliRunner,
    fake_make_app: MagicMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "login-name")
    monkeypatch.setenv("MEMGRID_IMAGE_PROTOCOL", "halfcell")
    result = runner.invoke(cli, ["annotate", "-p", str(demo_project_dir)])
    assert result.exit_code == 0, result.output
    settings = settings_passed(fake_make_app)
    assert (settings.annotator, settings.order, settings.image_protocol) == (
        "login-name",
        "threshold",
        "halfcell",
    )


def test_project_config_reaches_the_app(
    demo_project_dir: Path, runner: CliRunner, fake_make_app: MagicMock
) -> None:
    (demo_project_dir / "memgrid.toml").write_text('[keys]\nskip = "k"\n')
    result = runner.invoke(
        cli, ["annotate", "-p", str(demo_project_dir), "-a", "x", "--image-protocol", "halfcell"]
    )
    assert result.exit_code == 0, result.output
    assert settings_passed(fake_make_app).keys["skip"] == "k"


@pytest.mark.parametrize(
    ("arguments", "config", "problem"),
    [
        (["--order", "alphabetical"], None, "unknown order 'alphabetical'"),
        (["--image-protocol", "ascii"], None, "unknown image protocol 'ascii'"),
        (["--color", "millions"], None, "unknown colour depth 'millions'"),
        ([], "[keys]\nskip = 3\n", "skip: keys must be a non-empty string"),
    ],
)
def test_bad_input_is_one_line_and_no_app_starts(
    demo_project_dir: Path,
    runner: CliRunner,
    fake_make_app: MagicMock,
    arguments: list[str],
    config: str | None,
    problem: str,
) -> None:
    if config:
        (demo_project_dir / "memgrid.toml").write_text(config)
    result = runner.invoke(cli, ["annotate", "-p", str(demo_project_dir), "-a", "x", *arguments])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and problem in lines[0]
    fake_make_app.assert_not_called()


def test_missing_project_is_one_line(tmp_path: Path, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["annotate", "-p", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "not a memgrid project" in result.output


def test_demo_opens_the_app_unless_told_not_to(
    demo_project_dir: Path,
    runner: CliRunner,
    fake_make_app: MagicMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The demo project exists already, so `demo` only tops it up (quick), then opens it.
    monkeypatch.setenv("MEMGRID_IMAGE_PROTOCOL", "halfcell")
    result = runner.invoke(cli, ["demo", "--project", str(demo_project_dir)])
    assert result.exit_code == 0, result.output
    fake_make_app.return_value.run.assert_called_once_with()
    result = runner.invoke(cli, ["demo", "--project", str(demo_project_dir), "--no-open"])
    assert result.exit_code == 0, result.output
    assert fake_make_app.call_count == 1


def bind_annotators(project_dir: Path, table: str) -> Path:
    config = project_dir / "memgrid.toml"
    config.write_text(f"[annotators]\n{table}\n")
    config.chmod(0o644)
    return config


def test_the_annotators_table_names_who_labels_and_refuses_others(
    demo_project_dir: Path, runner: CliRunner, fake_make_app: MagicMock
) -> None:
    me = OsIdentity.of_this_process()
    bind_annotators(
        demo_project_dir, f'zoe = {{ users = ["{me.user}"] }}\nyan = {{ users = ["x"] }}'
    )
    default = runner.invoke(cli, ["annotate", "-p", str(demo_project_dir)])
    assert default.exit_code == 0, default.output
    assert settings_passed(fake_make_app).annotator == "zoe"
    fake_make_app.reset_mock()
    for name, problem in (
        ("mallory", "not in the [annotators] table of"),
        ("yan", f"OS user {me.user} may not label as yan"),
    ):
        refused = runner.invoke(cli, ["annotate", "-p", str(demo_project_dir), "-a", name])
        assert refused.exit_code == 1
        assert refused.stderr.startswith(f"memgrid: error: --annotator {name}: {problem}")
        assert len(refused.stderr.strip().splitlines()) == 1
    fake_make_app.assert_not_called()


def test_memgrid_label_takes_the_name_the_table_binds_as_annotate_does(
    demo_project_dir: Path, runner: CliRunner
) -> None:
    me = OsIdentity.of_this_process()
    bind_annotators(demo_project_dir, f'zoe = {{ users = ["{me.user}"] }}')
    result = runner.invoke(cli, ["label", "3", "none", "-p", str(demo_project_dir), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["annotator"] == "zoe"


def test_an_annotators_table_anyone_could_have_written_is_refused(
    demo_project_dir: Path, runner: CliRunner, fake_make_app: MagicMock
) -> None:
    config = bind_annotators(demo_project_dir, 'zoe = { users = ["zoe"] }')
    config.chmod(0o666)
    result = runner.invoke(cli, ["status", "-p", str(demo_project_dir)])
    assert result.exit_code == 1
    assert f"{config}: holds [annotators] but is writable by others (-rw-rw-rw-)" in result.stderr


def test_an_annotators_table_outside_the_project_is_refused(
    demo_project_dir: Path, runner: CliRunner, fake_make_app: MagicMock, tmp_path: Path
) -> None:
    user_config = tmp_path / "xdg-config" / "memgrid" / "memgrid.toml"
    user_config.parent.mkdir(parents=True)
    user_config.write_text('[annotators]\nzoe = { users = ["zoe"] }\n')
    result = runner.invoke(cli, ["annotate", "-p", str(demo_project_dir), "-a", "zoe"])
    assert result.exit_code == 1
    assert "[annotators] is read only from a project's memgrid.toml" in result.stderr
    fake_make_app.assert_not_called()


def test_without_a_terminal_the_app_is_not_started(
    demo_project_dir: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Output to a file or pipe: the app would write screen codes into it until killed.
    made = MagicMock(name="make_app")
    monkeypatch.setattr(memgrid.tui.app, "make_app", made)
    result = runner.invoke(cli, ["annotate", "-p", str(demo_project_dir), "-a", "zoe"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "memgrid: error: memgrid annotate: needs a terminal, and standard input is not one "
        "(over SSH: ssh -t); label from a script with `memgrid label`"
    )
    made.assert_not_called()
