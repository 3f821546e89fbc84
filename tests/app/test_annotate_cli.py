"""`memgrid annotate` wiring: the CLI builds settings and hands them to make_app; no TUI runs."""

from __future__ import annotations

from pathlib import Path
from unittest.mock import MagicMock

import memgrid.tui.app
import pytest
from memgrid.tui.app.config import AppSettings
from memgrid.tui.cli import app as cli
from typer.testing import CliRunner


@pytest.fixture
def fake_make_app(monkeypatch: pytest.MonkeyPatch) -> MagicMock:
    made = MagicMock(name="make_app")
    made.return_value.return_code = 0  # the app ran and quit normally
    monkeypatch.setattr(memgrid.tui.app, "make_app", made)
    monkeypatch.setattr("memgrid.tui.app.collector.tune_for_interaction", lambda: None)
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
            "--blind",
            "--overlap",
            "2",
            "--image-protocol",
            "halfcell",
        ],
    )
    assert result.exit_code == 0, result.output
    settings = settings_passed(fake_make_app)
    assert (settings.annotator, settings.order, settings.random_seed) == ("zoe", "random", 7)
    assert (settings.hide_others, settings.overlap, settings.image_protocol) == (
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
        (["--image-protocol", "kitty"], None, "unknown image protocol 'kitty'"),
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
