"""Store queries the annotation app adds: your labels, label times, disagreements, verdicts."""

from __future__ import annotations

from memgrid.core.records import GridImage
from memgrid.core.taxonomy import Category
from memgrid.db.store import Store


def store_with_grids(count: int) -> tuple[Store, list[int]]:
    store = Store.memory()
    grid_ids = [
        store.grids.add(f"prompt {i}", [GridImage(0, f"images/{i}.png", f"sha{i}", 8, 8)])[0]
        for i in range(count)
    ]
    return store, grid_ids


def test_an_annotators_votes_newest_first() -> None:
    store, (a, b, c) = store_with_grids(3)

    def mine() -> list:
        return store.labels.votes_where(annotator="ann", newest_first=True)

    store.labels.label(a, "ann", Category.NONE)
    store.labels.skip(b, "ann")
    store.labels.label(a, "ann", Category.EXPLICIT)  # a correction: a is now the newest
    store.labels.label(c, "other", Category.NONE)
    assert [(e.grid_id, e.action) for e in mine()] == [(a, "label"), (b, "skip")]
    assert mine()[0].category is Category.EXPLICIT
    assert [e.grid_id for e in store.labels.votes_where(annotator="ann", limit=1)] == [b]
    store.labels.undo_last("ann")
    assert [e.grid_id for e in mine()] == [b, a]
    assert mine()[1].category is Category.NONE


def test_label_times_count_labels_and_flags_that_still_count() -> None:
    store, (a, b, c) = store_with_grids(3)
    first = store.labels.label(a, "ann", Category.NONE)
    store.labels.skip(b, "ann")
    store.labels.flag(c, "ann")
    store.labels.label(b, "other", Category.NONE)
    assert len(store.labels.times_where(annotator="ann", since=0.0)) == 2
    store.labels.undo_last("ann")
    assert store.labels.times_where(annotator="ann", since=0.0) == [first.created_at]
    assert store.labels.times_where(annotator="ann", since=first.created_at + 3600) == []


def test_disagreements_use_each_annotators_latest_vote() -> None:
    store, (a, b, c) = store_with_grids(3)
    store.labels.label(a, "x", Category.EXPLICIT)
    store.labels.label(a, "y", Category.NONE)
    store.labels.label(b, "x", Category.NONE)
    store.labels.label(b, "y", Category.UNINTENDED)
    store.labels.label(b, "y", Category.NONE)  # y changed their mind: b is agreed now
    store.labels.label(c, "x", Category.NONE)
    store.labels.skip(c, "y")  # a skip is no vote
    found = store.labels.disagreements_all()
    assert list(found) == [a]
    assert {e.annotator: e.category for e in found[a]} == {
        "x": Category.EXPLICIT, "y": Category.NONE,
    }  # fmt: skip


def test_an_adjudication_is_no_vote_and_is_listed() -> None:
    store, (a,) = store_with_grids(1)
    store.labels.label(a, "x", Category.EXPLICIT)
    store.labels.label(a, "y", Category.NONE)
    store.labels.adjudicate(a, "x", Category.NONE)  # x adjudicates their own disagreement
    assert {e.annotator: e.category for e in store.labels.disagreements_all()[a]} == {
        "x": Category.EXPLICIT, "y": Category.NONE,
    }  # fmt: skip
    assert store.labels.adjudications_where()[a].category is Category.NONE
    store.labels.undo_last("x")
    assert store.labels.adjudications_where() == {}
