"""Shared annotation at the session level: overlap held, drafts kept, flags kept, progress."""

from __future__ import annotations

from memgrid.core.taxonomy import Category
from memgrid.tui.services.project import Project

from tests.app.conftest import FakeClock
from tests.app.test_session import session_on
from tests.conftest import vote_of


def done_voters(project: Project, grid_id: int) -> list[str]:
    votes = project.store.labels.votes_where(grid_ids=[grid_id])
    return sorted(v.annotator for v in votes if v.state is not None and v.state.done)


def test_a_skipped_grid_labelled_by_another_does_not_come_back(demo_project: Project) -> None:
    # Defect 1 (a): Alice skips grid 1 and quits; Bob labels it; it must not return to her.
    alice = session_on(demo_project, "alice")
    first = alice.start().view
    assert first is not None
    alice.skip()
    alice.release_all()
    bob = session_on(demo_project, "bob")
    bob.start()
    bob.reopen(first.grid_id)
    bob.label(Category.EXPLICIT)
    alice = session_on(demo_project, "alice")
    alice.start()
    shown = set()
    while alice.current_id is not None:
        shown.add(alice.current_id)
        alice.label(Category.UNINTENDED)
    assert first.grid_id not in shown
    assert done_voters(demo_project, first.grid_id) == ["bob"]


def test_undo_then_label_on_a_grid_another_labelled_is_refused(demo_project: Project) -> None:
    # Defect 1 (b): skip, Bob labels, u then 3: only Bob's vote counts, and Alice is told.
    alice = session_on(demo_project, "alice")
    first = alice.start().view
    assert first is not None
    alice.skip()
    bob = session_on(demo_project, "bob")
    bob.start()
    bob.reopen(first.grid_id)
    bob.label(Category.EXPLICIT)
    undone = alice.undo()
    assert undone.view is not None and undone.view.grid_id == first.grid_id
    refused = alice.label(Category.UNINTENDED)
    assert "not stored" in refused.message and "bob" in refused.message
    assert refused.event is None and "\n" not in refused.message
    assert refused.view is None or refused.view.grid_id != first.grid_id  # it moved on
    assert done_voters(demo_project, first.grid_id) == ["bob"]


def test_a_stalled_annotator_past_the_lease_cannot_double_label(demo_project: Project) -> None:
    # Defect 1 (c): Alice stops past her lease, Bob takes and labels the grid, Alice resumes.
    clock = FakeClock()
    alice = session_on(demo_project, "alice", clock, lease_seconds=60.0)
    grid = alice.start().view
    assert grid is not None
    clock.advance(120)
    bob = session_on(demo_project, "bob", clock, lease_seconds=60.0)
    assert bob.start().view.grid_id == grid.grid_id  # type: ignore[union-attr]
    resumed = alice.label(Category.IMPLICIT)  # Bob holds it now: refused
    assert "not stored" in resumed.message and "bob" in resumed.message
    bob.label(Category.EXPLICIT)
    assert done_voters(demo_project, grid.grid_id) == ["bob"]
    assert vote_of(demo_project.store, grid.grid_id, "alice") is None


def test_overlap_two_still_lets_two_annotators_label(demo_project: Project) -> None:
    alice = session_on(demo_project, "alice", overlap=2)
    bob = session_on(demo_project, "bob", overlap=2)
    carol = session_on(demo_project, "carol", overlap=2)
    grid = alice.start().view
    assert grid is not None
    alice.label(Category.NONE)
    bob.start()
    bob.reopen(grid.grid_id)
    bob.label(Category.NONE)
    carol.start()
    carol.reopen(grid.grid_id)
    refused = carol.label(Category.EXPLICIT)
    assert "not stored" in refused.message
    assert done_voters(demo_project, grid.grid_id) == ["alice", "bob"]
