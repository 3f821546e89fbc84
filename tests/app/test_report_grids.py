"""A report's moved prompts in the app: `annotate --grids-from` and the key that cycles models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import Static
from typer.testing import CliRunner

from memgrid.core.records import Proposal
from memgrid.core.taxonomy import Category
from memgrid.tui.app import make_app
from memgrid.tui.cli import app as cli
from memgrid.tui.services.project import Project
from memgrid.tui.services.report import grids_from
from tests.app.conftest import settings_for
from tests.app.pilot_helpers import SIZE, annotate_screen, current_grid, press, settle, status_text
from tests.app.test_session import session_on

MITIGATED = "memgrid-demo (ablated)"
ORIGINAL = "memgrid-demo (synthetic)"  # core.demo.DEMO_MODEL


def add_mitigated_grids(project: Project, count: int = 3) -> list[tuple[int, int]]:
    """The first `count` demo prompts again under a second model; (original, mitigated) ids.

    The mitigated grid reuses the original's images: what matters here is which grid shows.
    """
    store = project.store
    active = store.thresholds.find_active()
    pairs = []
    for grid in store.grids.all()[:count]:
        mitigated, _ = store.grids.add(grid.prompt, grid.images, model=MITIGATED)
        store.proposals.add(Proposal(mitigated, active.id, Category.NONE))
        pairs.append((grid.id, mitigated))
    return pairs


def test_the_other_model_key_cycles_the_grids_of_the_prompt(demo_project: Project) -> None:
    (original, mitigated), *_ = add_mitigated_grids(demo_project)
    session = session_on(demo_project, grid_ids=(original,))
    assert session.start().view.grid_id == original
    shown = session.other_model()
    assert shown.view.grid_id == mitigated and shown.view.grid.model == MITIGATED
    assert shown.message == f"Grid {mitigated}: this prompt under model 1 of 2."
    assert session.other_model().view.grid_id == original  # round to the first again
    session.other_model()
    session.label(Category.NONE)  # labels the mitigated grid, then returns
    assert session.current_id == original


def test_a_prompt_with_one_model_says_so(demo_project: Project) -> None:
    session = session_on(demo_project)
    first = session.start().view
    outcome = session.other_model()
    assert outcome.view.grid_id == first.grid_id
    assert outcome.message == "No other model has a grid of this prompt."


def test_a_listed_queue_shows_its_grids_in_order_labelled_or_not(demo_project: Project) -> None:
    pairs = add_mitigated_grids(demo_project)
    listed = (pairs[1][1], pairs[0][0], pairs[0][1])
    demo_project.store.labels.label(pairs[0][0], "alice", Category.EXPLICIT)
    session = session_on(demo_project, grid_ids=listed)
    shown = [session.start().view.grid_id]
    shown.append(session.skip().view.grid_id)
    shown.append(session.label(Category.NONE).view.grid_id)
    assert shown == list(listed)
    # The list is done; what was skipped in it comes back, nothing from outside it.
    assert session.label(Category.NONE).view.grid_id == listed[0]
    assert session.label(Category.NONE).view is None


@pytest.mark.anyio
async def test_the_app_opens_on_the_listed_grids_and_o_shows_the_other_model(
    demo_project: Project,
) -> None:
    (original, mitigated), *_ = add_mitigated_grids(demo_project)
    app = make_app(demo_project, settings_for(grid_ids=(original, mitigated)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert current_grid(pilot) == original
        await press(pilot, "o")
        assert current_grid(pilot) == mitigated
        prompt = str(annotate_screen(pilot).query_one("#prompt", Static).render())
        assert MITIGATED in prompt and f"grid {mitigated}" in prompt
        assert "model 1 of 2" in status_text(pilot)
        await press(pilot, "o")
        assert current_grid(pilot) == original


def test_grids_from_a_saved_report(demo_project: Project, tmp_path: Path) -> None:
    pairs = add_mitigated_grids(demo_project)
    saved = tmp_path / "report.json"
    result = CliRunner().invoke(
        cli,
        ["report", "-p", str(demo_project.root), "--compare", ORIGINAL, MITIGATED, "--json"],
    )
    assert result.exit_code == 0, result.output
    saved.write_text(result.output)
    listed = grids_from(demo_project, saved)
    assert listed == tuple(json.loads(result.output)["grid_ids"])
    assert set(listed) <= {grid for pair in pairs for grid in pair}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "invalid JSON"),
        ('{"kind": "memgrid-report"}', 'no "grid_ids"'),
        ('{"grid_ids": [1, "two"]}', "must be a list of grid ids"),
        ('{"grid_ids": []}', "lists no grids"),
        ("[1, 999999]", "grids not in this project: 999999"),
    ],
)
def test_a_bad_grid_list_is_one_line_naming_the_file(
    demo_project: Project, tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "list.json"
    path.write_text(text)
    result = CliRunner().invoke(
        cli, ["annotate", "-p", str(demo_project.root), "--grids-from", str(path)]
    )
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"memgrid: error: {path}") and problem in line
