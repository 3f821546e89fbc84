"""Shared annotation at the session level: overlap held, drafts kept, flags kept, progress."""

from __future__ import annotations

from memgrid.core.taxonomy import Category, Feature
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


def test_a_note_typed_before_the_label_survives_quit_and_reopen(demo_project: Project) -> None:
    # Defect 2: a note typed with `n` was gone after `q` and reopen.
    first = session_on(demo_project)
    grid = first.start().view
    assert grid is not None
    first.set_note("corner logo")
    first.release_all()
    again = session_on(demo_project)
    view = again.start().view
    assert view is not None and view.grid_id == grid.grid_id
    assert view.draft_note == "corner logo"
    again.label(Category.NONE)
    saved = vote_of(demo_project.store, grid.grid_id, "alice")
    assert saved is not None and saved.note == "corner logo"
    assert again.view(grid.grid_id).draft is None  # the label took the draft over


def test_undo_takes_back_a_drafted_feature_and_only_it(demo_project: Project) -> None:
    # Defect 2: `u` dropped a feature drafted with `m` (and undid the previous grid instead).
    session = session_on(demo_project)
    session.start()
    session.label(Category.NONE)
    grid = session.current_id
    assert grid is not None
    logo = Feature(Category.UNINTENDED, "logo", (0, 1))
    face = Feature(Category.IMPLICIT, "face", (9,))
    session.add_feature(logo)
    session.add_feature(face)
    undone = session.undo()
    assert undone.view is not None and undone.view.grid_id == grid
    assert undone.view.draft_features == (logo,)
    session.label(Category.UNINTENDED)
    saved = vote_of(demo_project.store, grid, "alice")
    assert saved is not None and saved.features == (logo,)


def test_undo_and_back_reach_labels_of_an_earlier_run(demo_project: Project) -> None:
    # Defect 7: undo and back worked only within one app run (lost with an SSH connection).
    crashed = session_on(demo_project)
    crashed.start()
    crashed.label(Category.NONE)
    second = crashed.current_id
    crashed.label(Category.EXPLICIT)
    # No release_all: the connection dropped.
    resumed = session_on(demo_project)
    resumed.start()
    back = resumed.back()
    assert back.view is not None and back.view.grid_id == second
    resumed.forward()
    undone = resumed.undo()
    assert undone.view is not None and undone.view.grid_id == second
    assert vote_of(demo_project.store, second, "alice") is None  # type: ignore[arg-type]


def test_a_flag_keeps_its_reason_and_stays_until_a_verdict(demo_project: Project) -> None:
    # Defect 4: after Alice flagged a grid and Bob labelled it, status said flagged 0.
    from memgrid.tui.commands.project import project_status

    alice = session_on(demo_project, "alice", overlap=2)
    grid = alice.start().view
    assert grid is not None
    assert "needs a reason" in alice.flag("  ").message
    alice.flag("is that a logo or a texture?")
    flag = vote_of(demo_project.store, grid.grid_id, "alice")
    assert flag is not None and flag.note == "is that a logo or a texture?"
    bob = session_on(demo_project, "bob", overlap=2)
    bob.start()
    bob.reopen(grid.grid_id)
    bob.label(Category.EXPLICIT)
    assert project_status(demo_project)["labels"]["flagged"] == 1
    judge = session_on(demo_project, "judge")
    judge.adjudicate(grid.grid_id, Category.EXPLICIT)
    assert project_status(demo_project)["labels"]["flagged"] == 0


def test_progress_is_per_annotator_and_the_end_says_what_is_left(demo_project: Project) -> None:
    # Defects 5 and 8: Bob was told every grid was done for him with the bar at 8/26,
    # when the rest were merely leased by others.
    clock = FakeClock()
    bob = session_on(demo_project, "bob", clock)
    held = bob.start().view
    assert held is not None
    alice = session_on(demo_project, "alice", clock)
    outcome = alice.start()
    alice.skip()
    while outcome.view is not None:
        outcome = alice.label(Category.NONE)
    total = demo_project.store.grids.count
    assert (outcome.progress.done, outcome.progress.total) == (total - 1, total)
    assert outcome.progress.project_done == total - 1
    assert outcome.progress.needing_votes == 1
    assert "No grid needs your vote now" in outcome.left
    assert "1 held by other annotators (the first frees at" in outcome.left
    assert "every grid is done" not in outcome.left + outcome.message


def proposed_with_features(project: Project) -> int:
    """A grid whose proposal is a memorized category with a marked region."""
    return next(
        grid_id
        for grid_id in project.store.grids.ids_all()
        if (proposal := project.store.proposals.find(grid_id)) is not None and proposal.features
    )


def test_the_proposals_number_key_keeps_its_features_like_enter(demo_project: Project) -> None:
    # Defect 3: the proposal's number key stored no features while Enter kept its region.
    grid_id = proposed_with_features(demo_project)
    proposal = demo_project.store.proposals.find(grid_id)
    assert proposal is not None
    session = session_on(demo_project)
    session.start()
    session.reopen(grid_id)
    session.label(proposal.category)
    saved = vote_of(demo_project.store, grid_id, "alice")
    assert saved is not None and saved.features == proposal.features


def test_a_key_less_serious_than_a_feature_asks_once_then_drops_it(demo_project: Project) -> None:
    # Defect 3: grid 25 stored primary "none" with an "unintended" feature, without a word.
    session = session_on(demo_project)
    grid = session.start().view
    assert grid is not None
    logo = Feature(Category.UNINTENDED, "logo", (0,))
    face = Feature(Category.EXPLICIT, "face", (9,))
    session.add_feature(logo)
    session.add_feature(face)
    asked = session.label(Category.EXPLICIT)
    assert asked.event is None
    assert asked.message == (
        "Explicit intended drops your unintended feature: same key to confirm."
    )
    assert len(asked.message) <= 80  # one status line, whole
    assert vote_of(demo_project.store, grid.grid_id, "alice") is None
    session.label(Category.EXPLICIT)
    saved = vote_of(demo_project.store, grid.grid_id, "alice")
    assert saved is not None and saved.category is Category.EXPLICIT
    assert saved.features == (face,)
    stored = [vote_of(demo_project.store, g, "alice") for g in demo_project.store.grids.ids_all()]
    for vote in filter(None, stored):
        assert all(f.category.severity <= vote.category.severity for f in vote.features)  # type: ignore[union-attr]
