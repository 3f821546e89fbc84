"""The annotation queue: open grids in a stable order, overlap, leases, skipped grids back."""

from __future__ import annotations

import pytest

from memgrid.core.errors import InputError
from memgrid.core.records import GridImage, Proposal, QueueOrder
from memgrid.core.taxonomy import Category, LabelState
from memgrid.db.queue import AnnotationQueue
from memgrid.db.store import Store


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def add_grids(store: Store, count: int) -> list[int]:
    return [
        store.grids.add(
            f"prompt {i}",
            [GridImage(s, f"images/g{i}{s}.png", f"g{i}{s}", 8, 8) for s in range(4)],
        )[0]
        for i in range(count)
    ]


def queue(store: Store, annotator: str, **options: object) -> AnnotationQueue:
    return AnnotationQueue(store, annotator, **{"order": QueueOrder.PROMPT, **options})  # type: ignore[arg-type]


def test_an_unknown_order_is_refused_naming_the_option() -> None:
    assert QueueOrder.parse("score", "--order") is QueueOrder.SCORE
    with pytest.raises(InputError, match="--order: unknown order 'best'; choose from threshold"):
        QueueOrder.parse("best", "--order")


def test_undo_of_a_skip_reopens_the_grid() -> None:
    store = Store.memory()
    grid_ids = add_grids(store, 3)
    ann = queue(store, "ann")
    store.labels.skip(grid_ids[0], "ann")
    assert grid_ids[0] not in ann.next_open(limit=10)
    skipped = store.labels.votes_where(annotator="ann", state=LabelState.SKIPPED)
    assert [vote.grid_id for vote in skipped] == [grid_ids[0]]
    store.labels.undo_last("ann")
    assert grid_ids[0] in ann.next_open(limit=10)
    assert store.labels.votes_where(annotator="ann", state=LabelState.SKIPPED) == []


def test_queue_respects_overlap_and_leases() -> None:
    store = Store.memory()
    a, b = add_grids(store, 2)
    clock = Clock(1000.0)
    store.labels.label(a, "x", Category.NONE)
    y = queue(store, "y", clock=clock, lease_seconds=60)
    assert y.next_open(limit=5) == [b]
    assert queue(store, "y", overlap=2, clock=clock).next_open(limit=5) == [a, b]
    assert y.is_open(b) and not y.is_open(a)
    assert queue(store, "x", clock=clock, lease_seconds=60).claim(b)
    clock.now = 1010.0
    assert not y.claim(b)
    assert y.next_open(limit=5) == [] and not y.is_open(b)
    # The lease expires: the grid is handed to the next annotator.
    clock.now = 1061.0
    assert y.next_open(limit=5) == [b]
    assert y.claim(b)


def test_queue_orders_are_stable_and_distinct() -> None:
    store = Store.memory()
    grid_ids = add_grids(store, 20)
    thresholds = store.thresholds.add("v0", {"tau_mem": 0.5}, activate=True)
    for grid_id in grid_ids:
        score = (grid_id * 37 % 20) / 20
        store.proposals.add(
            Proposal(grid_id, thresholds.id, Category.NONE, score=score, margin=score - 0.5)
        )
    by_threshold = queue(store, "a", order=QueueOrder.THRESHOLD).next_open(limit=20)
    margins = [abs((g * 37 % 20) / 20 - 0.5) for g in by_threshold]
    assert margins == sorted(margins)
    by_score = queue(store, "a", order=QueueOrder.SCORE).next_open(limit=20)
    assert [(g * 37 % 20) for g in by_score] == sorted(
        (g * 37 % 20 for g in grid_ids), reverse=True
    )

    def shuffled(seed: int) -> list[int]:
        return queue(store, "a", order=QueueOrder.RANDOM, random_seed=seed).next_open(limit=20)

    assert sorted(shuffled(7)) == sorted(grid_ids)
    assert shuffled(7) != sorted(grid_ids)
    assert shuffled(7) == shuffled(7)
    assert shuffled(7) != shuffled(8)


@pytest.mark.parametrize("per_model", [False, True])
def test_indexed_and_general_queue_orders_agree(per_model: bool) -> None:
    """One project-wide set walks an index; per-model sets sort: both give one order."""
    store = Store.memory()
    grid_ids = add_grids(store, 30)
    values = {"tau_mem": 0.5}
    if per_model:
        thresholds = store.thresholds.add("by-model", values, model="", activate=True)
    else:
        thresholds = store.thresholds.add("v0", values, activate=True)
    clock = Clock(100.0)
    assert (queue(store, "me")._only_active_set() is None) == per_model
    keys: dict[int, float | None] = {}
    for grid_id in grid_ids[:25]:  # five grids have no proposal at all
        score = None if grid_id % 7 == 0 else ((grid_id * 13) % 30) / 30
        keys[grid_id] = score
        margin = None if score is None else score - 0.5
        store.proposals.add(
            Proposal(grid_id, thresholds.id, Category.NONE, score=score, margin=margin)
        )
    store.labels.label(grid_ids[3], "other", Category.NONE)
    queue(store, "other", clock=clock, lease_seconds=60).claim(grid_ids[4])
    clock.now = 110.0
    open_ids = [g for g in grid_ids if g not in (grid_ids[3], grid_ids[4], grid_ids[5])]
    with_key = [g for g in open_ids if keys.get(g) is not None]
    without_key = [g for g in open_ids if keys.get(g) is None]
    expected_threshold = sorted(with_key, key=lambda g: (abs(keys[g] - 0.5), g)) + without_key
    expected_score = sorted(with_key, key=lambda g: (-keys[g], g)) + without_key
    by_threshold = queue(store, "me", order=QueueOrder.THRESHOLD, clock=clock)
    by_score = queue(store, "me", order=QueueOrder.SCORE, clock=clock)
    excluded = [grid_ids[5]]
    assert by_threshold.next_open(limit=40, exclude=excluded) == expected_threshold
    assert by_score.next_open(limit=40, exclude=excluded) == expected_score
    assert by_threshold.next_open(limit=3, exclude=excluded) == expected_threshold[:3]


def test_next_grid_claims_it_and_skipped_grids_come_back_last() -> None:
    store = Store.memory()
    a, b, c = add_grids(store, 3)
    clock = Clock()
    ann = queue(store, "ann", clock=clock)
    bob = queue(store, "bob", clock=clock)
    assert ann.next_grid(seen=[]) == a
    assert not bob.claim(a)  # leased to ann
    store.labels.skip(a, "ann")
    assert ann.next_grid(seen=[a]) == b
    store.labels.label(b, "ann", Category.NONE)
    assert ann.next_grid(seen=[a, b]) == c
    store.labels.skip(c, "ann")
    # Nothing open is left: the skipped grids, oldest first, but not the one on screen.
    assert ann.next_grid(seen=[a, b, c], current=a) == c
    assert ann.next_grid(seen=[a, b, c], current=c) == a


def test_a_grid_read_ahead_and_finished_by_someone_else_is_dropped() -> None:
    store = Store.memory()
    a, b, c = add_grids(store, 3)
    ann = queue(store, "ann", read_ahead=2)
    assert ann.ahead(seen=[]) == [a, b]
    assert queue(store, "bob").claim(a)  # reading ahead claims nothing
    store.labels.label(a, "bob", Category.NONE)
    assert ann.next_grid(seen=[]) == b
    assert list(ann.upcoming) == [c]
    ann.release_all(held=[b])
    assert queue(store, "bob").claim(b) and queue(store, "bob").claim(c)
