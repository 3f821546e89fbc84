"""The store: migrations, schema refusal, append-only labels, queues and leases."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from memgrid.core.errors import SchemaError
from memgrid.core.metrics.keypoints import Keypoints
from memgrid.core.records import GridImage, Score
from memgrid.core.taxonomy import Category, Feature
from memgrid.db.migrations import SCHEMA_VERSION, migrations
from memgrid.db.store import Store
from tests.conftest import vote_of


def image(seed: int, sha: str = "ab") -> GridImage:
    return GridImage(
        seed=seed, path=f"images/{sha}/{sha}{seed}.png", sha256=f"{sha}{seed}", width=8, height=8
    )


def add_grids(store: Store, count: int) -> list[int]:
    return [
        store.grids.add(f"prompt {i}", [image(s, f"g{i}") for s in range(4)])[0]
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
    older = Database(path)  # a project made by the first memgrid: only m001 applied
    migrations.apply(older, stop_before="m002_queue_indexes")
    older.execute("PRAGMA user_version = 1")
    older.close()
    store = Store.open(path)
    assert store.schema_version == SCHEMA_VERSION
    assert "grid_progress" in store.db.table_names()


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
    assert store.prompts.add_many([("a cat", {}), ("a dog", {"src": "x"})]) == (2, 0)
    assert store.prompts.add_many([("a cat", {}), ("a bird", {})]) == (1, 1)
    assert [p.text for p in store.prompts.all()] == ["a cat", "a dog", "a bird"]
    assert store.prompts.all()[1].metadata == {"src": "x"}


def test_adding_a_grid_again_adds_only_missing_seeds() -> None:
    store = Store.memory()
    grid_id, added = store.grids.add("p", [image(0), image(1)], model="m", settings={"steps": 50})
    assert added == 2
    again, added_again = store.grids.add(
        "p", [image(1), image(2)], model="m", settings={"steps": 50}
    )
    assert again == grid_id and added_again == 1
    assert store.grids.get(grid_id).seeds == [0, 1, 2]
    other, _ = store.grids.add("p", [image(0)], model="m", settings={"steps": 20})
    assert other != grid_id
    assert store.grids.find("p", "m", {"steps": 50}) == grid_id


def test_label_history_is_append_only_and_undo_appends() -> None:
    store = Store.memory()
    (grid_id,) = add_grids(store, 1)
    first = store.labels.label(
        grid_id,
        "ann",
        Category.UNINTENDED,
        features=[Feature(Category.UNINTENDED, "watermark", (62, 63))],
    )
    second = store.labels.label(grid_id, "ann", Category.NONE)
    assert vote_of(store, grid_id, "ann").id == second.id
    undone = store.labels.undo_last("ann")
    assert undone is not None and undone.id == second.id
    current = vote_of(store, grid_id, "ann")
    assert current is not None and current.id == first.id
    assert current.features[0].tiles == (62, 63)
    history = store.labels.events_where(grid_id=grid_id)
    assert [e.action for e in history] == ["label", "label", "undo"]
    assert history[-1].undoes == second.id
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("DELETE FROM label_events")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("UPDATE label_events SET category = 'none'")
    assert len(store.labels.events_where(grid_id=grid_id)) == 3


def test_label_counts_per_annotator_and_per_grid() -> None:
    store = Store.memory()
    a, b, c = add_grids(store, 3)
    store.labels.label(a, "x", Category.NONE)
    store.labels.skip(a, "y")
    store.labels.flag(b, "y", Category.IMPLICIT)
    store.labels.skip(c, "x")
    assert store.labels.state_counts_where(annotator="x") == {
        "labelled": 1,
        "skipped": 1,
        "flagged": 0,
    }
    assert store.labels.state_counts_where() == {"labelled": 1, "skipped": 1, "flagged": 1}
    assert store.labels.annotators_all() == ["x", "y"]


def test_threshold_sets_are_versioned_and_one_is_active() -> None:
    store = Store.memory()
    first = store.thresholds.add("default", {"tau_mem": 0.5}, activate=True)
    second = store.thresholds.add("default", {"tau_mem": 0.4})
    assert (first.version, second.version) == (0, 1)
    assert store.thresholds.find_active().id == first.id
    store.thresholds.activate(second.id)
    assert store.thresholds.find_active().id == second.id
    per_model = store.thresholds.add("sd2", {"tau_mem": 0.3}, model="sd2", activate=True)
    assert store.thresholds.find_active("sd2").id == per_model.id
    assert store.thresholds.find_active("sd1").id == second.id
    assert store.thresholds.find("default").version == 1


TILED = {"metric": "tiled-l2", "params": {"delta": 0.15}}


def test_scores_replace_by_metric_and_params() -> None:
    store = Store.memory()
    (grid_id,) = add_grids(store, 1)
    assert store.scores.unscored_ids_where(**TILED, version="1") == [grid_id]
    first = {"clique_share": 0.5, "n_seeds": 4}
    second = {"clique_share": 1.0, "n_seeds": 4}
    store.scores.add(Score(grid_id, "tiled-l2", {"delta": 0.15}, "1", first, [[0.1]]))
    store.scores.add(Score(grid_id, "tiled-l2", {"delta": 0.15}, "1", second, [[0.9]]))
    assert store.scores.unscored_ids_where(**TILED, version="1") == []
    assert store.scores.unscored_ids_where(**TILED, version="2") == [grid_id]
    other_params = {"metric": "tiled-l2", "params": {"delta": 0.1}, "version": "1"}
    assert store.scores.unscored_ids_where(**other_params) == [grid_id]
    (score,) = store.scores.where(grid_ids=[grid_id])
    assert score.values == second and score.heatmap == [[0.9]]


def test_embeddings_cache_round_trip() -> None:
    store = Store.memory()
    store.images.put_embeddings("clip:x", {"sha1": b"\x00\x01", "sha2": b"\x02"})
    assert store.images.get_embeddings("clip:x", ["sha1", "sha3"]) == {"sha1": b"\x00\x01"}


def test_grid_progress_counts_the_done_votes_through_undo_and_adjudication() -> None:
    store = Store.memory()
    grid_ids = add_grids(store, 4)

    def progress() -> dict[int, int]:
        return dict(store.db.execute("SELECT grid_id, done FROM grid_progress").fetchall())

    def from_view() -> dict[int, int]:
        rows = store.db.execute(
            """SELECT grid_id, count(*) FROM votes
            WHERE state IN ('labelled', 'flagged') GROUP BY grid_id"""
        ).fetchall()
        return dict(rows)

    a, b, c, _ = grid_ids
    store.labels.label(a, "x", Category.NONE)
    store.labels.flag(a, "y")
    store.labels.skip(b, "x")
    store.labels.label(c, "x", Category.EXPLICIT)
    store.labels.skip(c, "x")  # a later skip replaces the label: not done any more
    store.labels.adjudicate(b, "judge", Category.IMPLICIT)  # a verdict is no vote: b stays open
    store.labels.undo_last("y")
    assert {g: n for g, n in progress().items() if n} == from_view() == {a: 1}


def test_provenance_lists_every_run_that_added_seeds() -> None:
    store = Store.memory()
    first = {"seeds": [0, 1, 2, 3], "device": "cuda", "batch_size": 4}
    grid_id, _ = store.grids.add("p", [image(s) for s in range(4)], provenance=first)
    assert store.grids.get(grid_id).provenance == first  # one run: as it was given
    store.grids.add("p", [image(s) for s in range(4)], provenance={"device": "cpu"})
    assert store.grids.get(grid_id).provenance == first  # nothing added: nothing to record
    second = {"seeds": [0, 1, 2, 3, 4, 5], "device": "cpu", "batch_size": 2}
    _, added = store.grids.add("p", [image(s) for s in range(6)], provenance=second)
    assert added == 2
    provenance = store.grids.get(grid_id).provenance
    assert provenance["seeds"] == [0, 1, 2, 3, 4, 5]
    assert provenance["device"] == "cuda"  # the first run stays on top
    assert provenance["runs"] == [first, {**second, "seeds": [4, 5]}]
    store.grids.add("p", [image(s) for s in range(8)], provenance={"imported_from": "x"})
    runs = store.grids.get(grid_id).provenance["runs"]
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


def test_grids_imported_before_origins_get_their_folder_as_origin(tmp_path: Path) -> None:
    from memgrid.core.records import GridImage
    from memgrid.db.migrations import m005_grid_origin
    from memgrid.db.rows import content_key

    store = Store.open(tmp_path / "memgrid.db", create=True)
    image = GridImage(0, "images/aa/a.png", "a" * 64, 8, 8)
    grid_id, _ = store.grids.add(
        "p", [image], model="m", provenance={"imported_from": "/x/fig1"}, source="import"
    )
    # Undo what m005 adds, to stand for a grid imported under schema version 4.
    store.db.execute("ALTER TABLE grids DROP COLUMN origin")
    store.db.execute("UPDATE grids SET settings_key = ?", (content_key({}),))
    m005_grid_origin(store.db)
    assert store.grids.get(grid_id).origin == "fig1"
    assert store.grids.find("p", "m", {}, "fig1") == grid_id


def labels_schema(store: Store) -> dict[str, object]:
    """What m006 adds, as the database describes it."""
    db = store.db
    return {
        "label_events": db["label_events"].columns_dict,
        "threshold_sets": db["threshold_sets"].columns_dict,
        "triage_results": db["triage_results"].columns_dict,
        "indexes": sorted(index.name for index in db["label_events"].indexes),
        "origins": db.execute("SELECT id, origin FROM threshold_sets ORDER BY id").fetchall(),
    }


def test_the_labels_migration_fills_origins_on_an_older_database(tmp_path: Path) -> None:
    """An m008 database: a v0 set, a file's set and a calibration's fitted set, one label."""
    from sqlite_utils import Database

    from memgrid.core.thresholds import v0_notes
    from memgrid.db.migrations import m009_labels_in_and_out

    path = tmp_path / "memgrid.db"
    database = Database(path)
    migrations.apply(database, stop_before="m009_labels_in_and_out")
    database.execute("INSERT INTO prompts (id, text, created_at) VALUES (1, 'p', 'now')")
    database.execute(
        "INSERT INTO grids (id, prompt_id, model, settings_key, created_at) VALUES (1, 1, '', 'k', 'now')"
    )
    for set_id, version, notes in [(1, 0, v0_notes()), (2, 1, "from my.toml"), (3, 2, "fit")]:
        database.execute(
            """INSERT INTO threshold_sets (id, name, version, "values", notes, created_at)
            VALUES (?, 'default', ?, '{}', ?, 'now')""",
            (set_id, version, notes),
        )
    database.execute(
        """INSERT INTO calibration_runs (id, created_at, threshold_set_id, fitted_threshold_set_id,
        label_count) VALUES (7, 'now', 1, 3, 20)"""
    )
    database.execute(
        """INSERT INTO label_events (grid_id, annotator, action, state, category, created_at)
        VALUES (1, 'ana', 'label', 'labelled', 'none', 0)"""
    )
    database.close()

    store = Store.open(path)
    assert store.schema_version == SCHEMA_VERSION and migrations.pending(store.db) == []
    assert [t.origin for t in store.thresholds.all()] == ["v0", "", "calibration run 7"]
    (event,) = store.labels.current_all()
    assert (event.annotator, event.origin, event.external_id, event.imported) == (
        "ana",
        "",
        None,
        False,
    )
    assert store.triage.counts_all() == {"triaged": 0, "kept": 0, "skipped": 0}
    # Run again, or on a database that has a part of it already, it adds only what is missing.
    migrated = labels_schema(store)
    m009_labels_in_and_out(store.db)
    assert labels_schema(store) == migrated
    store.db.execute("DROP TABLE triage_results")
    store.db.execute("ALTER TABLE threshold_sets DROP COLUMN origin")
    m009_labels_in_and_out(store.db)
    assert labels_schema(store) == migrated
    store.close()


def cached_keys_after_migrating(tmp_path: Path, stop_before: str, keys: list[str]) -> list[str]:
    """A database migrated up to `stop_before`, with a cached feature under each key, then
    opened (so migrated to the end): the feature keys left, in order."""
    path = tmp_path / "memgrid.db"
    database = Database(path)
    migrations.apply(database, stop_before=stop_before)
    for key in keys:
        database.execute(
            "INSERT INTO embeddings (model_key, sha256, vector) VALUES (?, 'ab', x'00')", (key,)
        )
    database.close()
    store = Store.open(path)
    assert store.schema_version == SCHEMA_VERSION
    kept = [row[0] for row in store.db.execute("SELECT model_key FROM embeddings ORDER BY 1")]
    store.close()
    return kept


def test_the_500_orb_keypoints_are_dropped_and_the_250_kept(tmp_path: Path) -> None:
    """An m011 database with keypoints v3's 500 ORB keypoints beside v4's 250 and pHash bits."""
    kept = cached_keys_after_migrating(
        tmp_path,
        "m012_drop_500_orb_features",
        [
            "orb/2/size=192/features=500/patch=15",
            "orb/1/size=192/features=500/patch=15",
            "orb/2/size=192/features=250/patch=15",
            "phash/1/hash_size=8",
        ],
    )
    assert kept == ["orb/2/size=192/features=250/patch=15", "phash/1/hash_size=8"]
    assert Keypoints().feature_key == kept[0]  # the key the metric reads is the one kept


def test_the_sift_features_are_dropped_and_other_cached_features_kept(tmp_path: Path) -> None:
    """An m010 database with version 1's SIFT keypoints beside pHash bits and embeddings."""
    kept = cached_keys_after_migrating(
        tmp_path,
        "m011_drop_sift_features",
        ["sift/1/size=192/features=500", "phash/1/hash_size=8", "clip/ViT-B-32"],
    )
    assert kept == ["clip/ViT-B-32", "phash/1/hash_size=8"]
