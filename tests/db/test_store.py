"""The store: migrations, schema refusal, append-only labels, queues and leases."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from memgrid.core.errors import SchemaError
from memgrid.core.records import GridImage, Proposal, Score
from memgrid.core.taxonomy import Category, Feature, LabelState
from memgrid.db.migrations import SCHEMA_VERSION, migrations
from memgrid.db.store import Store


def image(seed: int, sha: str = "ab") -> GridImage:
    return GridImage(
        seed=seed, path=f"images/{sha}/{sha}{seed}.png", sha256=f"{sha}{seed}", width=8, height=8
    )


def add_grids(store: Store, count: int) -> list[int]:
    return [
        store.add_grid(f"prompt {i}", [image(s, f"g{i}") for s in range(4)])[0]
        for i in range(count)
    ]


def test_fresh_database_is_migrated_to_the_current_version(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "memgrid.db", create=True)
    assert store.schema_version == SCHEMA_VERSION
    assert migrations.pending(store.db) == []
    assert store.journal_mode == "wal"
    assert store.project_id


def test_older_database_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "memgrid.db"
    sqlite3.connect(path).close()  # an empty database: version 0, nothing applied
    store = Store.open(path)
    assert store.schema_version == SCHEMA_VERSION
    assert "label_events" in store.db.table_names()


def test_newer_schema_is_refused_naming_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "memgrid.db"
    Store.open(path, create=True).close()
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 3}")
    connection.commit()
    connection.close()
    with pytest.raises(SchemaError) as raised:
        Store.open(path)
    message = str(raised.value)
    assert f"version {SCHEMA_VERSION + 3}" in message
    assert f"version {SCHEMA_VERSION})" in message
    assert "\n" not in message


def test_unknown_applied_migration_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "memgrid.db"
    Store.open(path, create=True).close()
    connection = sqlite3.connect(path)
    connection.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('memgrid', 'm999_future', 'x')"
    )
    connection.commit()
    connection.close()
    with pytest.raises(SchemaError, match="newer than this memgrid"):
        Store.open(path)


def test_prompts_merge_exact_duplicates() -> None:
    store = Store.memory()
    assert store.add_prompts([("a cat", {}), ("a dog", {"src": "x"})]) == (2, 0)
    assert store.add_prompts([("a cat", {}), ("a bird", {})]) == (1, 1)
    assert [p.text for p in store.prompts()] == ["a cat", "a dog", "a bird"]
    assert store.prompts()[1].metadata == {"src": "x"}


def test_adding_a_grid_again_adds_only_missing_seeds() -> None:
    store = Store.memory()
    grid_id, added = store.add_grid("p", [image(0), image(1)], model="m", settings={"steps": 50})
    assert added == 2
    again, added_again = store.add_grid(
        "p", [image(1), image(2)], model="m", settings={"steps": 50}
    )
    assert again == grid_id and added_again == 1
    assert store.grid(grid_id).seeds == [0, 1, 2]
    other, _ = store.add_grid("p", [image(0)], model="m", settings={"steps": 20})
    assert other != grid_id
    assert store.find_grid("p", "m", {"steps": 50}) == grid_id


def test_label_history_is_append_only_and_undo_appends() -> None:
    store = Store.memory()
    (grid_id,) = add_grids(store, 1)
    first = store.label(
        grid_id,
        "ann",
        Category.UNINTENDED,
        features=[Feature(Category.UNINTENDED, "watermark", (62, 63))],
    )
    second = store.label(grid_id, "ann", Category.NONE)
    assert store.current_label(grid_id, "ann").id == second.id
    undone = store.undo_last("ann")
    assert undone is not None and undone.id == second.id
    current = store.current_label(grid_id, "ann")
    assert current is not None and current.id == first.id
    assert current.features[0].tiles == (62, 63)
    history = store.label_history(grid_id)
    assert [e.action for e in history] == ["label", "label", "undo"]
    assert history[-1].undoes == second.id
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("DELETE FROM label_events")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("UPDATE label_events SET category = 'none'")
    assert len(store.label_history(grid_id)) == 3


def test_undo_of_a_skip_reopens_the_grid() -> None:
    store = Store.memory()
    grid_ids = add_grids(store, 3)
    store.skip(grid_ids[0], "ann")
    assert grid_ids[0] not in store.next_open_grids("ann", order="prompt", limit=10)
    assert store.grids_in_state(LabelState.SKIPPED, "ann") == [grid_ids[0]]
    store.undo_last("ann")
    assert grid_ids[0] in store.next_open_grids("ann", order="prompt", limit=10)
    assert store.grids_in_state(LabelState.SKIPPED, "ann") == []


def test_label_counts_per_annotator_and_per_grid() -> None:
    store = Store.memory()
    a, b, c = add_grids(store, 3)
    store.label(a, "x", Category.NONE)
    store.skip(a, "y")
    store.flag(b, "y", Category.IMPLICIT)
    store.skip(c, "x")
    assert store.label_counts("x") == {"labelled": 1, "skipped": 1, "flagged": 0}
    assert store.label_counts() == {"labelled": 1, "skipped": 1, "flagged": 1}
    assert store.annotators() == ["x", "y"]


def test_queue_respects_overlap_and_leases() -> None:
    store = Store.memory()
    a, b = add_grids(store, 2)
    store.label(a, "x", Category.NONE)
    assert store.next_open_grids("y", order="prompt", limit=5) == [b]
    assert store.next_open_grids("y", order="prompt", limit=5, overlap=2) == [a, b]
    assert store.claim(b, "x", seconds=60, now=1000.0)
    assert not store.claim(b, "y", seconds=60, now=1010.0)
    assert store.next_open_grids("y", order="prompt", limit=5, now=1010.0) == []
    # The lease expires: the grid is handed to the next annotator.
    assert store.next_open_grids("y", order="prompt", limit=5, now=1061.0) == [b]
    assert store.claim(b, "y", seconds=60, now=1061.0)


def test_queue_orders_are_stable_and_distinct() -> None:
    store = Store.memory()
    grid_ids = add_grids(store, 20)
    thresholds = store.add_threshold_set("v0", {"tau_mem": 0.5}, activate=True)
    for grid_id in grid_ids:
        score = (grid_id * 37 % 20) / 20
        store.add_proposal(
            Proposal(grid_id, thresholds.id, Category.NONE, score=score, margin=score - 0.5)
        )
    by_threshold = store.next_open_grids("a", order="threshold", limit=20)
    margins = [abs((g * 37 % 20) / 20 - 0.5) for g in by_threshold]
    assert margins == sorted(margins)
    by_score = store.next_open_grids("a", order="score", limit=20)
    assert [(g * 37 % 20) for g in by_score] == sorted(
        (g * 37 % 20 for g in grid_ids), reverse=True
    )
    shuffled = store.next_open_grids("a", order="random", random_seed=7, limit=20)
    assert sorted(shuffled) == sorted(grid_ids)
    assert shuffled != sorted(grid_ids)
    assert shuffled == store.next_open_grids("a", order="random", random_seed=7, limit=20)
    assert shuffled != store.next_open_grids("a", order="random", random_seed=8, limit=20)


def test_threshold_sets_are_versioned_and_one_is_active() -> None:
    store = Store.memory()
    first = store.add_threshold_set("default", {"tau_mem": 0.5}, activate=True)
    second = store.add_threshold_set("default", {"tau_mem": 0.4})
    assert (first.version, second.version) == (0, 1)
    assert store.active_threshold_set().id == first.id
    store.activate_threshold_set(second.id)
    assert store.active_threshold_set().id == second.id
    per_model = store.add_threshold_set("sd2", {"tau_mem": 0.3}, model="sd2", activate=True)
    assert store.active_threshold_set("sd2").id == per_model.id
    assert store.active_threshold_set("sd1").id == second.id
    assert store.threshold_set("default").version == 1


def test_scores_replace_by_metric_and_params() -> None:
    store = Store.memory()
    (grid_id,) = add_grids(store, 1)
    assert store.grids_to_score("tiled-l2", {"delta": 0.15}, "1") == [grid_id]
    first = {"clique_share": 0.5, "n_seeds": 4}
    second = {"clique_share": 1.0, "n_seeds": 4}
    store.add_score(Score(grid_id, "tiled-l2", {"delta": 0.15}, "1", first, [[0.1]]))
    store.add_score(Score(grid_id, "tiled-l2", {"delta": 0.15}, "1", second, [[0.9]]))
    assert store.grids_to_score("tiled-l2", {"delta": 0.15}, "1") == []
    assert store.grids_to_score("tiled-l2", {"delta": 0.1}, "1") == [grid_id]
    (score,) = store.scores(grid_id)
    assert score.values == second and score.heatmap == [[0.9]]


def test_embeddings_cache_round_trip() -> None:
    store = Store.memory()
    store.put_embeddings("clip:x", {"sha1": b"\x00\x01", "sha2": b"\x02"})
    assert store.get_embeddings("clip:x", ["sha1", "sha3"]) == {"sha1": b"\x00\x01"}


@pytest.mark.parametrize("per_model", [False, True])
def test_indexed_and_general_queue_orders_agree(per_model: bool) -> None:
    """One project-wide set walks an index; per-model sets sort: both give one order."""
    store = Store.memory()
    grid_ids = add_grids(store, 30)
    values = {"tau_mem": 0.5}
    if per_model:
        thresholds = store.add_threshold_set("by-model", values, model="", activate=True)
    else:
        thresholds = store.add_threshold_set("v0", values, activate=True)
    assert (store._only_active_set() is None) == per_model
    keys: dict[int, float | None] = {}
    for grid_id in grid_ids[:25]:  # five grids have no proposal at all
        score = None if grid_id % 7 == 0 else ((grid_id * 13) % 30) / 30
        keys[grid_id] = score
        margin = None if score is None else score - 0.5
        store.add_proposal(
            Proposal(grid_id, thresholds.id, Category.NONE, score=score, margin=margin)
        )
    store.label(grid_ids[3], "other", Category.NONE)
    store.claim(grid_ids[4], "other", seconds=60, now=100.0)
    open_ids = [g for g in grid_ids if g not in (grid_ids[3], grid_ids[4], grid_ids[5])]
    with_key = [g for g in open_ids if keys.get(g) is not None]
    without_key = [g for g in open_ids if keys.get(g) is None]
    expected_threshold = sorted(with_key, key=lambda g: (abs(keys[g] - 0.5), g)) + without_key
    expected_score = sorted(with_key, key=lambda g: (-keys[g], g)) + without_key
    common = {"limit": 40, "exclude": [grid_ids[5]], "now": 110.0}
    assert store.next_open_grids("me", order="threshold", **common) == expected_threshold
    assert store.next_open_grids("me", order="score", **common) == expected_score
    assert (
        store.next_open_grids("me", order="threshold", **{**common, "limit": 3})
        == expected_threshold[:3]
    )


def test_grid_progress_follows_the_current_labels_through_undo_and_adjudication() -> None:
    store = Store.memory()
    grid_ids = add_grids(store, 4)

    def progress() -> dict[int, int]:
        return dict(store.db.execute("SELECT grid_id, done FROM grid_progress").fetchall())

    def from_view() -> dict[int, int]:
        rows = store.db.execute(
            """SELECT grid_id, count(DISTINCT annotator) FROM current_labels
            WHERE state IN ('labelled', 'flagged') GROUP BY grid_id"""
        ).fetchall()
        return dict(rows)

    a, b, c, _ = grid_ids
    store.label(a, "x", Category.NONE)
    store.flag(a, "y")
    store.skip(b, "x")
    store.label(c, "x", Category.EXPLICIT)
    store.skip(c, "x")  # a later skip replaces the label: not done any more
    store.adjudicate(b, "judge", Category.IMPLICIT)
    store.undo_last("y")
    assert {g: n for g, n in progress().items() if n} == from_view() == {a: 1, b: 1}


def test_provenance_lists_every_run_that_added_seeds() -> None:
    store = Store.memory()
    first = {"seeds": [0, 1, 2, 3], "device": "cuda", "batch_size": 4}
    grid_id, _ = store.add_grid("p", [image(s) for s in range(4)], provenance=first)
    assert store.grid(grid_id).provenance == first  # one run: as it was given
    store.add_grid("p", [image(s) for s in range(4)], provenance={"device": "cpu"})
    assert store.grid(grid_id).provenance == first  # nothing added: nothing to record
    second = {"seeds": [0, 1, 2, 3, 4, 5], "device": "cpu", "batch_size": 2}
    _, added = store.add_grid("p", [image(s) for s in range(6)], provenance=second)
    assert added == 2
    provenance = store.grid(grid_id).provenance
    assert provenance["seeds"] == [0, 1, 2, 3, 4, 5]
    assert provenance["device"] == "cuda"  # the first run stays on top
    assert provenance["runs"] == [first, {**second, "seeds": [4, 5]}]
    store.add_grid("p", [image(s) for s in range(8)], provenance={"imported_from": "x"})
    runs = store.grid(grid_id).provenance["runs"]
    assert [run["seeds"] for run in runs] == [[0, 1, 2, 3], [4, 5], [6, 7]]
    assert runs[2] == {"imported_from": "x", "seeds": [6, 7]}


def test_a_merged_grid_keeps_the_runs_behind_the_seeds_it_brings() -> None:
    from memgrid.core.provenance import extend_provenance

    shard = {
        "device": "a",
        "seeds": [0, 1, 4],
        "runs": [{"device": "a", "seeds": [0, 1]}, {"device": "b", "seeds": [4]}],
    }
    merged = extend_provenance({"device": "t", "seeds": [0, 1]}, [0, 1], shard, [4])
    assert merged["seeds"] == [0, 1, 4]
    assert merged["runs"] == [{"device": "t", "seeds": [0, 1]}, {"device": "b", "seeds": [4]}]
