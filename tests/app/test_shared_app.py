"""Shared annotation driven through the app (Pilot): overlap refusals, keys and their grid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import OptionList, Static
from typer.testing import CliRunner

from memgrid.core.taxonomy import Category, LabelState
from memgrid.db.queue import AnnotationQueue
from memgrid.tui.app import make_app
from memgrid.tui.app.config import AnnotateOptions
from memgrid.tui.app.screens import NoteScreen
from memgrid.tui.app.views import in_blind_share
from memgrid.tui.app.widgets import LabelsPanel, ProposalPanel, SeedGrid
from memgrid.tui.cli import app as cli
from memgrid.tui.services.project import Project
from tests.app.conftest import FakeClock, settings_for
from tests.app.pilot_helpers import (
    SIZE,
    annotate_screen,
    current_grid,
    open_review,
    press,
    reopen,
    settle,
    status_text,
)
from tests.app.test_session import session_on
from tests.conftest import vote_of

pytestmark = pytest.mark.anyio


async def test_a_key_after_the_lease_passed_to_another_is_refused_and_moves_on(
    demo_project: Project,
) -> None:
    # Defect 1 (c): Alice stalls past her lease, Bob takes the grid and labels it; Alice's
    # key is refused in one line, nothing of hers is stored, and the app moves on.
    clock = FakeClock()
    app = make_app(demo_project, settings_for(), clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        grid = current_grid(pilot)
        assert grid is not None
        clock.advance(3600)
        bob = session_on(demo_project, "bob", clock)
        assert bob.start().view.grid_id == grid  # type: ignore[union-attr]
        bob.label(Category.EXPLICIT)
        await press(pilot, "2")
        status = status_text(pilot)
        assert "not stored" in status and "bob" in status and "\n" not in status.strip()
        assert vote_of(demo_project.store, grid, "alice") is None
        assert current_grid(pilot) not in (None, grid)


async def test_keys_before_any_grid_is_drawn_are_dropped_with_a_notice(
    demo_project: Project,
) -> None:
    # Defect 6: a key that arrives before the first grid is drawn labels nothing.
    app = make_app(demo_project, settings_for())
    with app.session._lock:  # the first grid cannot be read yet
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("3")
            assert "no grid on screen" in status_text(pilot)
            app.session._lock.release()
            try:
                await settle(pilot)
                assert current_grid(pilot) is not None
                assert demo_project.store.labels.votes_where(annotator="alice") == []
            finally:
                app.session._lock.acquire()


async def test_a_flag_asks_why_and_export_sees_it_after_another_label(
    demo_project: Project, tmp_path: Path
) -> None:
    # Defect 4: `export --state flagged` exported nothing once someone else labelled the grid.
    app = make_app(demo_project, settings_for(overlap=2))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        grid = current_grid(pilot)
        assert grid is not None
        await press(pilot, "f")
        assert isinstance(app.screen, NoteScreen)
        await pilot.press(*"logo?")
        await press(pilot, "enter")
        flag = vote_of(demo_project.store, grid, "alice")
        assert flag is not None and flag.state is LabelState.FLAGGED and flag.note == "logo?"
    bob = session_on(demo_project, "bob", overlap=2)
    bob.start()
    bob.reopen(grid)
    bob.label(Category.NONE)
    out = tmp_path / "flagged"
    result = CliRunner().invoke(
        cli,
        [
            "export",
            "-p",
            str(demo_project.root),
            "--state",
            "flagged",
            "-f",
            "jsonl",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "grids.jsonl").read_text().splitlines()]
    assert [row["grid_id"] for row in rows] == [grid]


async def test_the_end_of_the_queue_clears_the_last_grid_and_says_what_is_left(
    demo_project: Project,
) -> None:
    # Defect 8: the side panel kept the last grid's proposal; a label key then failed.
    store = demo_project.store
    *labelled, last, held = store.grids.ids_all()
    for grid_id in labelled:
        store.labels.label(grid_id, "carol", Category.NONE)
    assert AnnotationQueue(store, "bob").claim(held)  # Bob has it on screen
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert current_grid(pilot) == last
        await press(pilot, "3")
        screen = annotate_screen(pilot)
        assert screen is not None and screen.view is None
        assert "Proposal" not in str(screen.query_one(ProposalPanel).render())
        prompt = str(screen.query_one("#prompt", Static).render())
        assert "No grid needs your vote now" in prompt and "held by other annotators" in prompt
        await press(pilot, "1")
        assert "no grid on screen" in status_text(pilot)
        assert "failed" not in status_text(pilot)


async def test_a_proposal_hidden_grid_hides_scores_and_others_wait_for_your_vote(
    demo_project: Project,
) -> None:
    # Defect 9: the blind share leaked the detector through the scores; others' labels
    # anchored the vote unless --blind was given.
    project_id = demo_project.store.project_id or ""
    hidden = next(
        g for g in demo_project.store.grids.ids_all() if in_blind_share(project_id, g, 0.3)
    )
    demo_project.store.labels.label(hidden, "bob", Category.EXPLICIT)
    settings = settings_for(overlap=2, annotate=AnnotateOptions(blind_share=0.3))
    app = make_app(demo_project, settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await reopen(pilot, hidden)
        panel = str(screen.query_one(ProposalPanel).render())
        assert "Proposal hidden" in panel and "Scores" not in panel and "clique" not in panel
        labels = str(screen.query_one(LabelsPanel).render())
        assert "hidden until you vote" in labels and "bob" not in labels


async def test_the_proposals_number_key_stores_its_region_like_enter(
    demo_project: Project,
) -> None:
    # Defect 3: the proposal's number key stored no features while Enter kept the region.
    store = demo_project.store
    grid_id, proposal = next(
        (g, p) for g in store.grids.ids_all() if (p := store.proposals.find(g)) and p.features
    )
    key = str(list(Category).index(proposal.category) + 1)
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await reopen(pilot, grid_id)
        await press(pilot, key)
        saved = vote_of(store, grid_id, "alice")
        assert saved is not None and saved.features == proposal.features


async def test_adjudication_moves_on_and_an_empty_queue_says_so(demo_project: Project) -> None:
    # Defect 10: an empty queue showed "Loading..." forever; a verdict did not move on.
    app = make_app(demo_project, settings_for("judge"))
    async with app.run_test(size=SIZE) as pilot:
        review = await open_review(pilot)
        info = str(review.query_one("#adj-info", Static).render())
        seeds = review.query_one("#adj-seeds", SeedGrid)
        assert "Nothing to review" in info and "Loading" not in seeds.message
        await press(pilot, "escape")
    store = demo_project.store
    grids = store.grids.ids_all()[:2]
    for grid_id in grids:
        store.labels.label(grid_id, "a", Category.EXPLICIT)
        store.labels.label(grid_id, "b", Category.NONE)
    app = make_app(demo_project, settings_for("judge"))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_review(pilot)
        first = screen.highlighted
        assert first in grids
        await press(pilot, "4")
        await settle(pilot)
        assert screen.highlighted in grids and screen.highlighted != first


async def test_a_note_survives_quit_and_undo_reaches_the_earlier_run(demo_project: Project) -> None:
    # Defects 2 and 7: a note typed with `n` was gone after `q`; `u` and back worked only
    # within one run.
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        labelled = current_grid(pilot)
        await press(pilot, "2")
        noted = current_grid(pilot)
        await press(pilot, "n")
        await pilot.press(*"odd corner")
        await press(pilot, "enter", "q")
    assert labelled is not None and noted is not None
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert current_grid(pilot) == noted
        screen = annotate_screen(pilot)
        assert screen is not None and "odd corner" in str(screen.query_one(LabelsPanel).render())
        await press(pilot, "left")
        assert current_grid(pilot) == labelled
        await press(pilot, "right", "u")  # undoes the note first, then the earlier run's label
        assert current_grid(pilot) == noted and screen.view is not None
        assert screen.view.draft is None
        await press(pilot, "u")
        assert current_grid(pilot) == labelled
        assert vote_of(demo_project.store, labelled, "alice") is None


async def test_one_review_queue_for_flags_disagreements_and_skips(demo_project: Project) -> None:
    # One review queue: flags with their reasons, disagreements and skips, filters by kind
    # and annotator, the verdict recorded as an event, and on to the next open item.
    store = demo_project.store
    flagged, contested, skipped = store.grids.ids_all()[:3]
    store.labels.flag(flagged, "alice", note="logo or texture?")
    store.labels.label(contested, "alice", Category.EXPLICIT)
    store.labels.label(contested, "bob", Category.NONE)
    store.labels.skip(skipped, "carol")
    app = make_app(demo_project, settings_for("judge"))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_review(pilot)
        options = screen.query_one(OptionList)
        assert [options.get_option_at_index(i).id for i in range(3)] == [
            str(flagged),
            str(contested),
            str(skipped),
        ]
        assert "logo or texture?" in str(options.get_option_at_index(0).prompt)
        await press(pilot, "k")  # flags only
        assert list(screen.items) == [flagged]
        await press(pilot, "k", "k", "k", "a")  # all kinds again, then alice's only
        assert sorted(screen.items) == sorted([flagged, contested])
        await press(pilot, "a", "a", "a")  # bob, carol, then everyone again
        assert len(screen.items) == 3
        options.highlighted = 0
        await settle(pilot)
        await press(pilot, "3")
        await settle(pilot)
        verdict = store.labels.adjudications_where()[flagged]
        assert verdict.category is Category.UNINTENDED and "review of a flag" in verdict.note
        assert store.labels.state_counts_where()["flagged"] == 0
        assert flagged not in screen.items and screen.highlighted == contested


async def test_the_progress_line_follows_the_votes_of_others_between_keys(
    demo_project: Project,
) -> None:
    """Between Alice's keys, Bob's vote and then his undo change how many grids need votes:
    her progress line reads the counts again on its timer, not only after her own action."""
    from memgrid.tui.app.widgets import ProgressBar

    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = annotate_screen(pilot)
        assert screen is not None
        bar = screen.query_one(ProgressBar)
        assert "26 need votes" in str(bar.render())
        grid = next(g for g in demo_project.store.grids.ids_all() if g != current_grid(pilot))
        demo_project.store.labels.label(grid, "bob", Category.NONE)
        screen.refresh_progress()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert "25 need votes" in str(bar.render())
        demo_project.store.labels.undo_last("bob")
        screen.refresh_progress()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert "26 need votes" in str(bar.render())
