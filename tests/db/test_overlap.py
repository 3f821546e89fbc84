"""The overlap rule in the write itself: a vote that would exceed it is refused, not stored."""

from __future__ import annotations

import contextlib
import multiprocessing
from pathlib import Path

import pytest

from memgrid.core.errors import VoteRefused
from memgrid.core.records import QueueOrder
from memgrid.core.taxonomy import Category
from memgrid.db.overlap import OverlapRule
from memgrid.db.queue import AnnotationQueue
from memgrid.db.store import Store
from tests.db.test_queue import add_grids

NOW = 1000.0


def done_votes(store: Store, grid_id: int) -> int:
    return sum(1 for vote in store.labels.votes_where(grid_ids=[grid_id]) if vote.state.done)  # type: ignore[union-attr]


def test_a_label_on_a_grid_that_has_its_votes_is_refused_and_not_stored() -> None:
    store = Store.memory()
    (grid,) = add_grids(store, 1)
    rule = OverlapRule(overlap=1, now=NOW)
    store.labels.label(grid, "bob", Category.EXPLICIT, rule=rule)
    events_before = len(store.labels.events_where(grid_id=grid))
    with pytest.raises(VoteRefused, match="bob"):
        store.labels.label(grid, "alice", Category.UNINTENDED, rule=rule)
    with pytest.raises(VoteRefused):
        store.labels.flag(grid, "alice", rule=rule)
    assert len(store.labels.events_where(grid_id=grid)) == events_before
    assert done_votes(store, grid) == 1


def test_overlap_two_takes_two_votes_then_refuses_the_third() -> None:
    store = Store.memory()
    (grid,) = add_grids(store, 1)
    rule = OverlapRule(overlap=2, now=NOW)
    store.labels.label(grid, "alice", Category.NONE, rule=rule)
    store.labels.label(grid, "bob", Category.NONE, rule=rule)
    with pytest.raises(VoteRefused):
        store.labels.label(grid, "carol", Category.NONE, rule=rule)
    # Correcting one's own vote never adds a vote: it is always allowed.
    store.labels.label(grid, "alice", Category.EXPLICIT, rule=rule)
    assert done_votes(store, grid) == 2


def test_a_live_lease_of_another_annotator_refuses_the_vote_an_expired_one_does_not() -> None:
    store = Store.memory()
    (grid,) = add_grids(store, 1)
    bob = AnnotationQueue(
        store, "bob", order=QueueOrder.PROMPT, lease_seconds=60, clock=lambda: NOW
    )
    assert bob.claim(grid)
    with pytest.raises(VoteRefused, match="bob holds"):
        store.labels.label(grid, "alice", Category.NONE, rule=OverlapRule(1, NOW + 10))
    store.labels.skip(grid, "alice", rule=OverlapRule(1, NOW + 10))  # a skip adds no vote
    store.labels.label(grid, "alice", Category.NONE, rule=OverlapRule(1, NOW + 61))
    with pytest.raises(VoteRefused):
        store.labels.label(grid, "bob", Category.NONE, rule=OverlapRule(1, NOW + 62))


def test_an_undo_that_would_bring_back_a_vote_over_the_overlap_is_refused() -> None:
    store = Store.memory()
    (grid,) = add_grids(store, 1)
    rule = OverlapRule(overlap=1, now=NOW)
    store.labels.label(grid, "alice", Category.NONE, rule=rule)
    store.labels.skip(grid, "alice", rule=rule)  # alice changes her mind: grid open again
    store.labels.label(grid, "bob", Category.EXPLICIT, rule=rule)
    with pytest.raises(VoteRefused):
        store.labels.undo_last("alice", rule=rule)
    assert done_votes(store, grid) == 1


def _label_everything(path: str, annotator: str) -> None:
    store = Store.open(Path(path))
    for grid in store.grids.ids_all():
        with contextlib.suppress(VoteRefused):
            store.labels.label(grid, annotator, Category.NONE, rule=OverlapRule(1, NOW))
    store.close()


def test_racing_processes_never_put_two_votes_on_a_grid(tmp_path: Path) -> None:
    path = tmp_path / "memgrid.db"
    store = Store.open(path, create=True)
    grids = add_grids(store, 60)
    store.close()
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_label_everything, args=(str(path), f"a{k}")) for k in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    store = Store.open(path)
    assert [done_votes(store, grid) for grid in grids] == [1] * len(grids)
