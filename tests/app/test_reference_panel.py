"""The app shows the matched training image in the side panel; `t` draws it beside the seeds."""

from __future__ import annotations

import pytest

from memgrid.tui.app import make_app
from memgrid.tui.app.widgets import ReferencePanel
from memgrid.tui.services.project import Project
from memgrid.tui.services.references import match_grids
from tests.app.conftest import settings_for
from tests.app.pilot_helpers import SIZE, annotate_screen, press, settle, status_text

pytestmark = pytest.mark.anyio


def panel_text(panel: ReferencePanel) -> str:
    return str(panel.render())


async def test_reference_caption_url_and_picture(bare_demo_project: Project) -> None:
    app = make_app(bare_demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = annotate_screen(pilot)
        assert screen is not None and screen.view is not None
        panel = screen.query_one(ReferencePanel)
        assert not panel.display  # not matched yet: the side panel is as before
        await press(pilot, "t")  # says why nothing shows, and leaves the picture off
        assert "No training image matched this grid" in status_text(pilot)
        assert not panel.picture_shown
    match_grids(bare_demo_project)
    app = make_app(bare_demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = annotate_screen(pilot)
        assert screen is not None and screen.view is not None
        assert screen.view.grid.prompt == '"The Lighthouse at Dusk" poster by Aldo Vessel'
        panel = screen.query_one(ReferencePanel)
        text = panel_text(panel)
        assert panel.display and "Copies its own training image (MV)" in text
        assert "8/8 seeds" in text and "demo-000003" in text
        assert "https://example.invalid/demo/demo-000003.png" in text
        assert "▀" not in text
        await press(pilot, "t")
        assert "▀" in panel_text(panel)  # the reference image, in half cells
        picture_rows = [line for line in panel_text(panel).splitlines() if "▀" in line]
        assert max(len(row) for row in picture_rows) <= panel.content_region.width  # no wrap
        await press(pilot, "4")  # label and go on: the next grid's match, picture still on
        assert screen.view.grid.prompt != '"The Lighthouse at Dusk" poster by Aldo Vessel'
        assert "No training image copied" in panel_text(panel)
        await press(pilot, "t")  # matched against the pool, nothing found: nothing to draw
        assert "No training image matched this grid" in status_text(pilot)
        assert "▀" not in panel_text(panel)
