"""The app on a project where every user string is hostile: nothing raw reaches the terminal.

Each screen is drawn in full as Textual would write it to the terminal (the compositor's
update rendered to the bytes a driver sends), and those bytes are searched for escape
sequences and bidi characters that came from the data; the app's own cursor moves and
styles are allowed. Markup in names (`[/oops]`) must neither crash a screen nor style it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App
from textual.widgets import Input

from memgrid.tui.app import make_app
from memgrid.tui.app.screens import (
    AdjudicationScreen,
    GridListScreen,
    HelpScreen,
    HistoryScreen,
    NoteScreen,
    ZoomScreen,
)
from memgrid.tui.app.screens.calibration import CalibrationScreen
from memgrid.tui.services.project import open_project
from tests.app.conftest import settings_for
from tests.app.pilot_helpers import SIZE, press, settle
from tests.hostile.corpus import raw_escapes
from tests.hostile.project import HOSTILE_ANNOTATOR, build_hostile_project

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_hostile_project(tmp_path_factory.mktemp("hostile") / "project")


def frame(app: App[None]) -> str:
    """The whole screen as the terminal would receive it (headless Pilot writes nothing)."""
    update = app.screen._compositor.render_update(full=True)
    return update.render_segments(app.console)


# The key, the screen it opens, and a string the screen must show, escaped.
SCREENS = [
    (None, None, "\\x1b]0;owned\\x07[/oops]\\u202e"),  # the annotator in the progress line
    ("r", HistoryScreen, "[/oops]"),
    ("S", GridListScreen, "prompt 0: a cat \\x1b]52;c;"),
    ("F", GridListScreen, "prompt 1: a cat \\x1b]52;c;"),
    ("A", AdjudicationScreen, "bob\\x1b]52;c;Y2xpcA==\\x07[/x]"),
    ("C", CalibrationScreen, "set\\x1b]0;t\\x07[/x]"),
    ("?", HelpScreen, "memgrid annotate: keys"),
    ("z", ZoomScreen, "seed"),
]


@pytest.mark.parametrize(("key", "screen_type", "expected"), SCREENS)
async def test_every_screen_shows_hostile_text_escaped(
    hostile_dir: Path, key: str | None, screen_type: type | None, expected: str
) -> None:
    with open_project(hostile_dir) as project:
        app = make_app(project, settings_for(HOSTILE_ANNOTATOR))
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            if key is not None:
                await press(pilot, key)
                await settle(pilot)
                assert isinstance(app.screen, screen_type)
            await pilot.pause()
            written = frame(app)
            assert app.is_running and app.return_code is None
            assert raw_escapes(written, app_frame=True) == 0
            assert expected in written


async def test_the_grid_on_screen_shows_prompt_model_reasons_and_notes_escaped(
    hostile_dir: Path,
) -> None:
    with open_project(hostile_dir) as project:
        app = make_app(project, settings_for("reader"))
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            shown = []
            for _ in range(len(project.store.grids.ids_all())):
                assert raw_escapes(frame(app), app_frame=True) == 0
                # The panels' text before wrapping, to find whole strings in it.
                shown.extend(str(app.screen.query_one(f"#{name}").render()) for name in PANELS)
                await press(pilot, "s")  # skip: every grid comes on screen once
            everything = "\n".join(shown)
            assert "model\\x1b[2J[/x]\\u202eevil" in everything
            assert "reason \\u202eevil.png\\u202c" in everything
            assert "reason [/oops]" in everything
            assert "[bold red]shout[/bold red]" in everything  # shown, not applied
            assert app.return_code is None


PANELS = ("prompt", "proposal", "labels", "status", "progress")


async def test_the_note_editor_shows_a_hostile_note_escaped_and_keeps_it_unless_edited(
    hostile_dir: Path,
) -> None:
    note = "n \x1b]0;t\x07 \u202e [/x]"
    with open_project(hostile_dir) as project:
        app = make_app(project, settings_for("reader"))
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            saved: list[str | None] = []
            app.push_screen(NoteScreen(note), saved.append)
            await pilot.pause()
            assert raw_escapes(frame(app), app_frame=True) == 0
            await pilot.press("enter")
            await pilot.pause()
            assert saved == [note]  # unedited: the stored note keeps its characters
            app.push_screen(NoteScreen(""), saved.append)
            await pilot.pause()
            app.screen.query_one(Input).insert_text_at_cursor("pasted \x1b]52;c;eA==\x07")
            await pilot.pause()
            assert raw_escapes(frame(app), app_frame=True) == 0
            await pilot.press("enter")
            await pilot.pause()
            assert saved[-1] == "pasted \\x1b]52;c;eA==\\x07"
