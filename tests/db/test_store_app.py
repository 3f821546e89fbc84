"""Store queries the annotation app adds: your labels, label times, disagreements, verdicts."""

from __future__ import annotations

from memgrid.core.records import GridImage
from memgrid.core.taxonomy import Category
from memgrid.db.store import Store


def store_with_grids(count: int) -> tuple[Store, list[int]]:
    store = Store.memory()
    grid_ids = [
        store.add_grid(f"prompt {i}", [GridImage(0, f"images/{i}.png", f"sha{i}", 8, 8)])[0]
        for i in range(count)
    ]
    return store, grid_ids


def test_labels_by_gives_current_labels_newest_first() -> None:
    store, (a, b, c) = store_with_grids(3)
    store.label(a, "ann", Category.NONE)
    store.skip(b, "ann")
    store.label(a, "ann", Category.EXPLICIT)  # a correction: a is now the newest
    store.label(c, "other", Category.NONE)
    labels = store.labels_by("ann")
    assert [(e.grid_id, e.action) for e in labels] == [(a, "label"), (b, "skip")]
    assert labels[0].category is Category.EXPLICIT
    store.undo_last("ann")
    assert [e.grid_id for e in store.labels_by("ann")] == [b, a]
    assert store.labels_by("ann")[1].category is Category.NONE


def test_label_times_count_labels_and_flags_that_still_count() -> None:
    store, (a, b, c) = store_with_grids(3)
    first = store.label(a, "ann", Category.NONE)
    store.skip(b, "ann")
    store.flag(c, "ann")
    store.label(b, "other", Category.NONE)
    assert len(store.label_times("ann", 0.0)) == 2
    store.undo_last("ann")
    assert store.label_times("ann", 0.0) == [first.created_at]
    assert store.label_times("ann", first.created_at + 3600) == []


def test_disagreements_use_each_annotators_latest_vote() -> None:
    store, (a, b, c) = store_with_grids(3)
    store.label(a, "x", Category.EXPLICIT)
    store.label(a, "y", Category.NONE)
    store.label(b, "x", Category.NONE)
    store.label(b, "y", Category.UNINTENDED)
    store.label(b, "y", Category.NONE)  # y changed their mind: b is agreed now
    store.label(c, "x", Category.NONE)
    store.skip(c, "y")  # a skip is no vote
    found = store.disagreements()
    assert list(found) == [a]
    assert {e.annotator: e.category for e in found[a]} == {
        "x": Category.EXPLICIT, "y": Category.NONE,
    }  # fmt: skip


def test_an_adjudication_is_no_vote_and_is_listed() -> None:
    store, (a,) = store_with_grids(1)
    store.label(a, "x", Category.EXPLICIT)
    store.label(a, "y", Category.NONE)
    store.adjudicate(a, "x", Category.NONE)  # x adjudicates their own disagreement
    assert {e.annotator: e.category for e in store.disagreements()[a]} == {
        "x": Category.EXPLICIT, "y": Category.NONE,
    }  # fmt: skip
    assert store.adjudications()[a].category is Category.NONE
    store.undo_last("x")
    assert store.adjudications() == {}
