"""The proposal-hidden share in the app: before this annotator votes on such a grid, nothing
the detector derived is on screen (proposal, reasons, scores, heat map, seed-group badges,
region outline, training-image match, prompt highlights, compare's starting pair); after
the vote, all of it is back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from rich.color import Color
from textual.pilot import Pilot

from memgrid.core.records import Score
from memgrid.tui.app import make_app
from memgrid.tui.app.app import MemgridApp
from memgrid.tui.app.config import AnnotateOptions
from memgrid.tui.app.drawing import GridPicture
from memgrid.tui.app.evidence import OUTLINE_RGB
from memgrid.tui.app.screens import CompareScreen, FeatureScreen, HelpScreen
from memgrid.tui.app.screens.annotate import AnnotateScreen
from memgrid.tui.app.screens.help import BLIND_HINT
from memgrid.tui.app.views import DETECTOR_HIDDEN, in_blind_share
from memgrid.tui.app.widgets import (
    EvidenceBar,
    HeatMap,
    PromptView,
    ProposalPanel,
    ReferencePanel,
    SeedGrid,
)
from memgrid.tui.app.widgets.evidence_bar import MARKS_HIDDEN
from memgrid.tui.services.project import Project
from memgrid.tui.services.references import match_grids
from tests.app.conftest import settings_for
from tests.app.pilot_helpers import SIZE, current_grid, press, reopen, settle, status_text
from tests.conftest import vote_of

pytestmark = pytest.mark.anyio

OUTLINE = Color.from_rgb(*OUTLINE_RGB)
GROUP = [2, 5, 7]  # the near-identical seeds added to the grid under test (not 0 and 1)


def app_with_a_blind_grid(
    project: Project, grid_id: int | None = None, share: float = 0.3
) -> tuple[int, MemgridApp]:
    """The app with a blind share holding `grid_id` (the smallest step of 5% that does), or
    with a 30% share and its first grid."""
    project_id = project.store.project_id or ""
    if grid_id is None:
        grid_id = next(
            g for g in project.store.grids.ids_all() if in_blind_share(project_id, g, share)
        )
    else:
        share = next(s / 20 for s in range(1, 21) if in_blind_share(project_id, grid_id, s / 20))
    return grid_id, make_app(project, settings_for(annotate=AnnotateOptions(blind_share=share)))


@asynccontextmanager
async def on_a_blind_grid(
    project: Project, grid_id: int | None = None
) -> AsyncIterator[tuple[Pilot[None], AnnotateScreen, int]]:
    """The app at 160 x 50 with a blind grid on screen (app_with_a_blind_grid's)."""
    blind, app = app_with_a_blind_grid(project, grid_id)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        yield pilot, await reopen(pilot, blind), blind


def grid_with_every_mark(project: Project) -> int:
    """A grid whose prompt names something, with a region, a near-identical group of seeds
    2, 5 and 7 (sscd: tiled-l2 found none on it), a heat map, and a training-image match."""
    store = project.store
    match_grids(project)
    grid_id = next(
        g
        for g in store.grids.ids_all()
        if "Orbital Sunrise" in store.grids.get(g).prompt and "album" in store.grids.get(g).prompt
    )
    store.scores.add(Score(grid_id, "sscd", {}, "1", {"cliques": [GROUP]}))
    return grid_id


def outlined(picture: GridPicture | None) -> bool:
    """Whether any cell of the picture is drawn in the region outline's colour."""
    assert picture is not None
    return any(
        OUTLINE in (segment.style.color, segment.style.bgcolor)
        for line in picture.lines
        for segment in line
        if segment.style is not None
    )


def captions(picture: GridPicture | None) -> str:
    assert picture is not None
    return "\n".join(line.text for line in picture.lines)


def on_screen(screen: AnnotateScreen) -> dict[str, str]:
    """The text of everything around the seeds."""
    reference = screen.query_one(ReferencePanel)
    return {
        "prompt": str(screen.query_one(PromptView).render()),
        "bar": str(screen.query_one(EvidenceBar).render()),
        "proposal": str(screen.query_one(ProposalPanel).render()),
        "reference": str(reference.render()) if reference.display else "",
    }


async def compare_pair(pilot: Pilot[None]) -> list[int]:
    await press(pilot, "c")
    compare = pilot.app.screen
    assert isinstance(compare, CompareScreen)
    chosen = list(compare.chosen)
    await press(pilot, "escape")
    return chosen


async def test_nothing_the_detector_found_shows_on_a_blind_grid_until_the_vote(
    demo_project: Project,
) -> None:
    grid_id = grid_with_every_mark(demo_project)
    async with on_a_blind_grid(demo_project, grid_id) as (pilot, screen, blind):
        await press(pilot, "h")
        seeds = screen.query_one(SeedGrid)
        text, picture = on_screen(screen), seeds.picture
        before_the_vote = {
            # The line above the grid says once what waits for the vote, and shows none of it.
            "bar says what is hidden": "detector marks hidden until you vote" in text["bar"],
            "bar: groups": "alike" not in text["bar"],
            "bar: region": "fixed region" not in text["bar"],
            "seed group badges": "◆" not in captions(picture),
            "region outline": not outlined(picture),
            "heat map tile": "heat map" not in captions(picture),
            "proposal": "Proposal hidden" in text["proposal"],
            "proposal says until the vote": "until you vote" in text["proposal"],
            "scores": "Scores" not in text["proposal"] and "clique" not in text["proposal"],
            "training-image match": text["reference"] == "",
            "prompt highlights": "names work" not in text["prompt"],
            "compare's pair": await compare_pair(pilot) == [0, 1],
        }
        leaks = [leak for leak, kept in before_the_vote.items() if not kept]
        assert not leaks, f"shown before the vote: {leaks}"
        await press(pilot, "t")
        assert status_text(pilot) == DETECTOR_HIDDEN and on_screen(screen)["reference"] == ""

        await press(pilot, "3")  # the vote: everything comes back
        assert current_grid(pilot) != blind
        screen = await reopen(pilot, blind)
        text = on_screen(screen)
        assert "hidden" not in text["bar"]
        assert "◆A 3 alike" in text["bar"] and "fixed region, 9 of 64 tiles" in text["bar"]
        assert "heat map ON" in text["bar"]
        assert "seed" in captions(seeds.picture) and "◆A" in captions(seeds.picture)
        assert outlined(seeds.picture) and "heat map" in captions(seeds.picture)
        assert "Proposal" in text["proposal"] and "Scores" in text["proposal"]
        assert "hidden" not in text["proposal"]
        assert "training image" in text["reference"] or "Copies" in text["reference"]
        assert "names work" in text["prompt"]
        assert await compare_pair(pilot) == GROUP[:2]
        saved = vote_of(demo_project.store, blind, "alice")
        assert saved is not None and not saved.proposal_shown  # recorded as a blind vote
        await press(pilot, "4")  # changed with the marks in view: no longer blind
        changed = vote_of(demo_project.store, blind, "alice")
        assert changed is not None and changed.category.value == "none"
        assert changed.proposal_shown


async def test_a_shown_grid_keeps_its_marks(demo_project: Project) -> None:
    grid_id = grid_with_every_mark(demo_project)
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await reopen(pilot, grid_id)
        text = on_screen(screen)
        assert "◆A 3 alike" in text["bar"] and "◆A" in captions(screen.seeds.picture)
        assert outlined(screen.seeds.picture) and "Scores" in text["proposal"]
        assert text["reference"] and "names work" in text["prompt"]
        assert await compare_pair(pilot) == GROUP[:2]


async def test_blind_share_grid_hides_the_proposal_and_enter_does_nothing(
    demo_project: Project,
) -> None:
    async with on_a_blind_grid(demo_project) as (pilot, screen, blind):
        assert "Proposal hidden" in str(screen.query_one(ProposalPanel).render())
        await press(pilot, "enter")
        assert "No proposal to accept" in status_text(pilot)
        assert vote_of(demo_project.store, blind, "alice") is None
        await press(pilot, "2")
        saved = vote_of(demo_project.store, blind, "alice")
        assert saved is not None and not saved.proposal_shown


async def test_blind_share_grid_hides_the_heat_map_until_this_annotator_votes(
    demo_project: Project,
) -> None:
    async with on_a_blind_grid(demo_project) as (pilot, screen, blind):
        assert screen.view is not None and screen.view.heatmap  # it has one, kept back
        seeds, bar = screen.query_one(SeedGrid), screen.query_one(EvidenceBar)
        await press(pilot, "h")
        assert screen.heat_on
        assert "heat map" not in captions(seeds.picture)
        assert "detector marks hidden until you vote" in str(bar.render())
        assert status_text(pilot) == DETECTOR_HIDDEN
        # Marking a feature before the vote: the whole image only, and the screen says why.
        await press(pilot, "m")
        assert isinstance(pilot.app.screen, FeatureScreen) and pilot.app.screen.heatmap is None
        assert str(pilot.app.screen.query_one(HeatMap).render()) == DETECTOR_HIDDEN
        await press(pilot, "escape")
        await press(pilot, "2")  # the vote; the heat map stays on for the grids after it
        assert current_grid(pilot) != blind
        screen = await reopen(pilot, blind)
        assert screen.view is not None and screen.view.voted
        assert "heat map" in captions(seeds.picture)
        assert "heat map ON" in str(bar.render())
        assert "hidden" not in status_text(pilot)
        await press(pilot, "m")
        assert isinstance(pilot.app.screen, FeatureScreen) and pilot.app.screen.heatmap
        await press(pilot, "space", "right", "space", "tab")
        await pilot.press(*"sign")
        await press(pilot, "enter", "2")
        saved = vote_of(demo_project.store, blind, "alice")
        assert saved is not None and saved.proposal_shown  # re-voted with the marks in view
        (feature,) = saved.features
        assert (feature.name, feature.tiles) == ("sign", (0, 1))


def test_the_line_above_the_grid_names_everything_that_waits() -> None:
    for part in ("proposal", "scores", "seed groups", "region", "heat map", "match"):
        assert part in MARKS_HIDDEN
    assert len(f"◇ {MARKS_HIDDEN}") <= 98  # whole at 100 columns


async def test_help_says_what_waits_for_the_vote(demo_project: Project) -> None:
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        hints = [str(hint.render()) for hint in app.screen.query(".hint")]
        assert BLIND_HINT in hints
