"""The annotation session without Textual: queue, resume, leases, blind share, undo."""

from __future__ import annotations

from pathlib import Path

import pytest

from memgrid.core.errors import NotFoundError
from memgrid.core.records import QueueOrder
from memgrid.core.taxonomy import Category, Feature, LabelState
from memgrid.tui.app.session import AnnotationSession, SessionOptions
from memgrid.tui.app.views import in_blind_share
from memgrid.tui.services.project import Project, open_project
from tests.app.conftest import FakeClock
from tests.conftest import open_grids, vote_of


def session_on(
    project: Project, annotator: str = "alice", clock: FakeClock | None = None, **options: object
) -> AnnotationSession:
    settings = {"order": QueueOrder.PROMPT, "blind_share": 0.0, **options}
    return AnnotationSession(
        project.store,
        SessionOptions(annotator=annotator, **settings),  # type: ignore[arg-type]
        clock=clock or FakeClock(),
    )


def test_blind_share_is_fixed_and_about_the_asked_share() -> None:
    chosen = [g for g in range(10_000) if in_blind_share("project-a", g, 0.1)]
    assert 900 < len(chosen) < 1100
    assert chosen == [g for g in range(10_000) if in_blind_share("project-a", g, 0.1)]
    other_project = [g for g in range(10_000) if in_blind_share("project-b", g, 0.1)]
    assert chosen != other_project
    assert not any(in_blind_share("project-a", g, 0.0) for g in range(1000))


def test_blind_share_hides_the_proposal_and_records_that(demo_project: Project) -> None:
    project_id = demo_project.store.project_id or ""
    blind = next(
        g for g in demo_project.store.grids.ids_all() if in_blind_share(project_id, g, 0.5)
    )
    shown = next(
        g for g in demo_project.store.grids.ids_all() if not in_blind_share(project_id, g, 0.5)
    )
    session = session_on(demo_project, blind_share=0.5)
    assert session.view(blind).visible_proposal is None
    assert session.view(blind).proposal is not None
    assert session.view(shown).visible_proposal is not None

    session.start()
    session.reopen(blind)
    event = session.label(Category.NONE).event
    assert event is not None and not event.proposal_shown
    assert event.proposal_category == session.view(blind).proposal.category  # type: ignore[union-attr]
    refused = session.reopen(blind)
    assert "No proposal to accept" in session.accept_proposal().message
    assert refused.view is not None


def test_a_vote_cast_again_after_an_undo_is_not_recorded_as_blind(demo_project: Project) -> None:
    """The marks came back with the first vote; undoing it cannot unsee them, so they stay
    on screen and the second vote is recorded as cast having seen the proposal."""
    project_id = demo_project.store.project_id or ""
    blind = next(
        g for g in demo_project.store.grids.ids_all() if in_blind_share(project_id, g, 0.5)
    )
    session = session_on(demo_project, blind_share=0.5)
    session.start()
    assert session.reopen(blind).view.detector_hidden  # type: ignore[union-attr]
    first = session.label(Category.NONE).event
    assert first is not None and not first.proposal_shown
    after_undo = session.undo().view
    assert after_undo is not None and after_undo.grid_id == blind
    assert not after_undo.voted and not after_undo.detector_hidden
    second = session.label(Category.UNINTENDED).event
    assert second is not None and second.proposal_shown
    # Another annotator who never voted on it still sees nothing before voting.
    other = session_on(demo_project, annotator="bob", blind_share=0.5)
    other.start()
    assert other.reopen(blind).view.detector_hidden  # type: ignore[union-attr]


def test_labels_are_in_the_database_when_the_call_returns(demo_project: Project) -> None:
    session = session_on(demo_project)
    first = session.start().view
    assert first is not None
    outcome = session.label(Category.UNINTENDED)
    current = vote_of(demo_project.store, first.grid_id, "alice")
    assert current is not None and current.category is Category.UNINTENDED
    assert current.session == session.session_id
    assert outcome.view is not None and outcome.view.grid_id != first.grid_id
    assert outcome.progress.done == 1


def test_resume_after_a_crash_starts_at_the_next_open_grid(demo_project_dir: Path) -> None:
    with open_project(demo_project_dir) as project:
        crashed = session_on(project)
        crashed.start()
        labelled = []
        for _ in range(3):
            view = crashed.current()
            assert view is not None
            labelled.append(view.grid_id)
            crashed.label(Category.NONE)
        on_screen = crashed.current_id
        # No release_all, no close: the process died here.
    with open_project(demo_project_dir) as project:
        resumed = session_on(project)
        view = resumed.start().view
        assert view is not None
        assert view.grid_id == on_screen
        assert view.grid_id not in labelled
        assert resumed.progress().done == 3


def test_two_annotators_get_different_grids_and_a_lease_hands_over(
    demo_project: Project,
) -> None:
    clock = FakeClock()
    alice = session_on(demo_project, "alice", clock, lease_seconds=60.0)
    bob = session_on(demo_project, "bob", clock, lease_seconds=60.0)
    alice_grid = alice.start().view
    bob_grid = bob.start().view
    assert alice_grid is not None and bob_grid is not None
    assert alice_grid.grid_id != bob_grid.grid_id
    # Alice walks away; her lease runs out and the grid goes to the next annotator.
    carol = session_on(demo_project, "carol", clock, lease_seconds=60.0)
    carol.prefetch()
    assert alice_grid.grid_id not in carol.queue.upcoming
    clock.advance(61)
    dave = session_on(demo_project, "dave", clock, lease_seconds=60.0)
    handed = dave.start().view
    assert handed is not None and handed.grid_id == alice_grid.grid_id
    # Alice is back: renewing fails, since dave holds it now.
    assert not alice.renew_lease()


def test_renewing_keeps_the_lease(demo_project: Project) -> None:
    clock = FakeClock()
    alice = session_on(demo_project, "alice", clock, lease_seconds=60.0)
    grid = alice.start().view
    assert grid is not None
    for _ in range(5):
        clock.advance(40)
        assert alice.renew_lease()
    bob = session_on(demo_project, "bob", clock, lease_seconds=60.0)
    assert bob.start().view.grid_id != grid.grid_id  # type: ignore[union-attr]


def test_a_prefetched_grid_labelled_by_someone_else_is_dropped(demo_project: Project) -> None:
    clock = FakeClock()
    alice = session_on(demo_project, "alice", clock)
    bob = session_on(demo_project, "bob", clock)
    alice.start()
    alice.prefetch()
    taken = alice.queue.upcoming[0]
    bob.reopen(taken)
    bob.label(Category.NONE)
    alice.label(Category.NONE)
    assert alice.current_id != taken


def test_overlap_two_puts_both_annotators_on_a_grid(demo_project: Project) -> None:
    alice = session_on(demo_project, "alice", overlap=2)
    bob = session_on(demo_project, "bob", overlap=2)
    first = alice.start().view
    assert first is not None
    alice.label(Category.EXPLICIT)
    assert bob.start().view.grid_id == first.grid_id  # type: ignore[union-attr]
    # Bob does not see Alice's label before his own vote (issue 13, defect 9)...
    view = bob.current()
    assert view is not None and view.others == () and view.others_hidden
    bob.label(Category.NONE)
    # ...then he does; --show-others shows them from the start.
    assert [e.annotator for e in bob.view(first.grid_id).others] == ["alice"]
    shown = session_on(demo_project, "carol", overlap=2, show_others=True)
    assert [e.annotator for e in shown.view(first.grid_id).others] == ["alice", "bob"]


def test_undo_of_a_skip_brings_the_grid_back(demo_project: Project) -> None:
    session = session_on(demo_project)
    skipped = session.start().view
    assert skipped is not None
    moved_on = session.skip()
    assert moved_on.view is not None and moved_on.view.grid_id != skipped.grid_id
    assert skipped.grid_id not in session.queue.next_open(limit=50)
    undone = session.undo()
    assert undone.view is not None and undone.view.grid_id == skipped.grid_id
    assert skipped.grid_id in open_grids(demo_project.store, "alice", 50)
    assert vote_of(demo_project.store, skipped.grid_id, "alice") is None
    assert "Nothing to undo" in session.undo().message


def test_skipped_grids_come_back_when_the_queue_is_empty(demo_project: Project) -> None:
    session = session_on(demo_project)
    first = session.start().view
    assert first is not None
    session.skip()
    for _ in range(demo_project.store.grids.count - 1):
        session.label(Category.NONE)
    assert session.current_id == first.grid_id
    outcome = session.label(Category.EXPLICIT)
    assert outcome.view is None and "No open grids left" in outcome.message


def test_back_forward_and_correcting_an_earlier_label(demo_project: Project) -> None:
    session = session_on(demo_project)
    first = session.start().view
    assert first is not None
    session.label(Category.NONE)
    second = session.current_id
    session.label(Category.NONE)
    third = session.current_id
    assert session.back().view.grid_id == second  # type: ignore[union-attr]
    assert session.back().view.grid_id == first.grid_id  # type: ignore[union-attr]
    assert "first grid" in session.back().message
    assert session.forward().view.grid_id == second  # type: ignore[union-attr]
    session.back()
    corrected = session.label(Category.UNINTENDED)
    assert corrected.view is not None and corrected.view.grid_id == second
    history = demo_project.store.labels.events_where(grid_id=first.grid_id)
    assert [e.category for e in history] == [Category.NONE, Category.UNINTENDED]
    session.forward()
    assert session.current_id == third


def test_reopen_returns_to_where_you_were(demo_project: Project) -> None:
    session = session_on(demo_project)
    first = session.start().view
    assert first is not None
    session.label(Category.NONE)
    unfinished = session.current_id
    session.reopen(first.grid_id)
    assert session.current_id == first.grid_id
    session.label(Category.EXPLICIT)
    assert session.current_id == unfinished
    with pytest.raises(NotFoundError):
        session.reopen(999_999)


def test_note_and_features_are_drafted_then_saved_with_the_label(demo_project: Project) -> None:
    session = session_on(demo_project)
    view = session.start().view
    assert view is not None
    watermark = Feature(Category.UNINTENDED, "watermark", (56, 57))
    session.set_note("corner logo")
    session.add_feature(watermark)
    assert vote_of(demo_project.store, view.grid_id, "alice") is None
    session.label(Category.UNINTENDED)
    saved = vote_of(demo_project.store, view.grid_id, "alice")
    assert saved is not None and saved.note == "corner logo" and saved.features == (watermark,)
    # On a labelled grid, a note is a new event at once, keeping category and features.
    session.back()
    session.set_note("checked twice")
    amended = vote_of(demo_project.store, view.grid_id, "alice")
    assert amended is not None and amended.id != saved.id
    assert (amended.category, amended.features, amended.note) == (
        Category.UNINTENDED,
        (watermark,),
        "checked twice",
    )


def test_accepting_the_proposal_takes_its_category_and_features(demo_project: Project) -> None:
    session = session_on(demo_project)
    view = session.start().view
    assert view is not None and view.proposal is not None
    session.accept_proposal()
    saved = vote_of(demo_project.store, view.grid_id, "alice")
    assert saved is not None
    assert saved.category is view.proposal.category
    assert saved.features == view.proposal.features
    assert saved.proposal_shown and saved.proposal_category is view.proposal.category


def test_flag_keeps_the_category_and_is_listed(demo_project: Project) -> None:
    session = session_on(demo_project)
    view = session.start().view
    assert view is not None
    session.label(Category.IMPLICIT)
    session.back()
    session.flag("is that a logo?")
    flagged = vote_of(demo_project.store, view.grid_id, "alice")
    assert flagged is not None and flagged.state is LabelState.FLAGGED
    assert flagged.category is Category.IMPLICIT
    assert [g.id for g in session.views.grids_in_state(LabelState.FLAGGED)] == [view.grid_id]


def test_progress_counts_and_labels_per_hour(demo_project: Project) -> None:
    clock = FakeClock(now=__import__("time").time())
    session = session_on(demo_project, clock=clock)
    session.start()
    assert session.progress().labels_per_hour is None
    for _ in range(4):
        session.label(Category.NONE)
    session.skip()
    progress = session.progress()
    assert (progress.done, progress.total, progress.skipped) == (4, 26, 1)
    # Four labels within the minimum span of five minutes: 48 an hour.
    assert progress.labels_per_hour == pytest.approx(48.0, rel=0.01)


def test_adjudication_sees_disagreements(demo_project: Project) -> None:
    alice = session_on(demo_project, "alice", overlap=2)
    bob = session_on(demo_project, "bob", overlap=2)
    grid = alice.start().view
    assert grid is not None
    alice.label(Category.EXPLICIT)
    bob.start()
    bob.label(Category.NONE)
    judge = session_on(demo_project, "judge")
    assert list(judge.views.disagreements()) == [grid.grid_id]
    judge.adjudicate(grid.grid_id, Category.EXPLICIT)
    assert judge.views.adjudications()[grid.grid_id].category is Category.EXPLICIT
    assert alice.view(grid.grid_id).adjudication is not None
