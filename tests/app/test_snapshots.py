"""SVG snapshots of the main screens with half-cell images (kept few: each is large).

The annotate screen at the three sizes annotators use: 100 x 30 (a laptop split), 160 x 50
with the heat map tile on, 220 x 60 with the side panel folded.

Update after an intended change with `pytest tests/app/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot

from memgrid.core.taxonomy import Category
from memgrid.tui.app import make_app
from memgrid.tui.services.project import Project, open_project
from tests.app.conftest import add_signals, settings_for
from tests.app.pilot_helpers import SIZE, press, settle


def app_on(project: Project, annotator: str = "alice"):
    return make_app(project, settings_for(annotator), session_id="snapshot")


async def ready(pilot: Pilot[None], *keys: str) -> None:
    await settle(pilot)
    await press(pilot, *keys)


class TestAnnotateScreen:
    def test_at_100_by_30(self, snap_compare, demo_project: Project) -> None:
        app = app_on(demo_project)
        assert snap_compare(app, terminal_size=(100, 30), run_before=lambda pilot: ready(pilot))

    def test_at_160_by_50_with_the_heat_map(self, snap_compare, demo_project: Project) -> None:
        app = app_on(demo_project)
        assert snap_compare(app, terminal_size=SIZE, run_before=lambda pilot: ready(pilot, "h"))

    def test_at_220_by_60_with_the_panel_folded(self, snap_compare, demo_project: Project) -> None:
        app = app_on(demo_project)
        assert snap_compare(
            app, terminal_size=(220, 60), run_before=lambda pilot: ready(pilot, "p")
        )


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
