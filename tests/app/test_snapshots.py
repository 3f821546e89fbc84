"""SVG snapshots of the main screens at 160x50 with half-cell images (kept few: each is large).

Update after an intended change with `pytest tests/app/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from pathlib import Path

from memgrid.core.taxonomy import Category
from memgrid.tui.app import make_app
from memgrid.tui.services.project import Project, open_project
from textual.pilot import Pilot

from tests.app.conftest import add_signals, settings_for
from tests.app.pilot_helpers import SIZE, press, settle


def app_on(project: Project, annotator: str = "alice"):
    return make_app(project, settings_for(annotator), session_id="snapshot")


async def ready(pilot: Pilot[None], *keys: str) -> None:
    await settle(pilot)
    await press(pilot, *keys)


class TestAnnotateScreen:
    def test_grid_with_proposal_reasons_and_heat_map(
        self, snap_compare, demo_project: Project
    ) -> None:
        app = app_on(demo_project)
        assert snap_compare(app, terminal_size=SIZE, run_before=lambda pilot: ready(pilot, "h"))


class TestAdjudicationScreen:
    def test_disagreements_most_contested_first(self, snap_compare, demo_project_dir: Path) -> None:
        with open_project(demo_project_dir) as project:
            add_signals(project.store)
            grids = project.store.grids.ids_all()
            for grid_id, votes in (
                (grids[2], "explicit none none"),
                (grids[5], "implicit unintended none"),
            ):
                for annotator, vote in zip(("ann", "bob", "cat"), votes.split(), strict=True):
                    project.store.labels.label(grid_id, annotator, Category(vote))
            app = app_on(project, "judge")
            assert snap_compare(app, terminal_size=SIZE, run_before=lambda pilot: ready(pilot, "A"))


class TestHelpScreen:
    def test_every_key_listed(self, snap_compare, demo_project: Project) -> None:
        app = app_on(demo_project)
        assert snap_compare(
            app, terminal_size=SIZE, run_before=lambda pilot: ready(pilot, "question_mark")
        )
