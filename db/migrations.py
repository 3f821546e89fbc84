"""The schema, as an append-only list of migrations: never edit an applied one, add another."""

from __future__ import annotations

import json
from pathlib import PurePath

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("memgrid")


@migrations()
def m001_initial_schema(db: Database) -> None:
    db.execute("CREATE TABLE project_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute(
        """CREATE TABLE prompts (
            id INTEGER PRIMARY KEY,
            text TEXT NOT NULL UNIQUE,
            metadata TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE grids (
            id INTEGER PRIMARY KEY,
            prompt_id INTEGER NOT NULL REFERENCES prompts(id),
            model TEXT NOT NULL,
            settings TEXT NOT NULL DEFAULT '{}',
            settings_key TEXT NOT NULL,
            provenance TEXT NOT NULL DEFAULT '{}',
            source TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            UNIQUE (prompt_id, model, settings_key)
        )"""
    )
    db.execute(
        """CREATE TABLE images (
            id INTEGER PRIMARY KEY,
            grid_id INTEGER NOT NULL REFERENCES grids(id),
            seed INTEGER NOT NULL,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            UNIQUE (grid_id, seed)
        )"""
    )
    db.execute("CREATE INDEX images_sha256 ON images (sha256)")
    db.execute(
        """CREATE TABLE scores (
            id INTEGER PRIMARY KEY,
            grid_id INTEGER NOT NULL REFERENCES grids(id),
            metric TEXT NOT NULL,
            params TEXT NOT NULL DEFAULT '{}',
            params_key TEXT NOT NULL,
            version TEXT NOT NULL,
            "values" TEXT NOT NULL DEFAULT '{}',
            heatmap TEXT,
            available INTEGER NOT NULL DEFAULT 1,
            note TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            UNIQUE (grid_id, metric, params_key)
        )"""
    )
    db.execute("CREATE INDEX scores_metric ON scores (metric, params_key)")
    db.execute(
        """CREATE TABLE embeddings (
            model_key TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (model_key, sha256)
        )"""
    )
    db.execute(
        """CREATE TABLE threshold_sets (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            model TEXT,
            "values" TEXT NOT NULL,
            notes TEXT NOT NULL DEFAULT '',
            active INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            UNIQUE (name, version)
        )"""
    )
    db.execute(
        """CREATE TABLE proposals (
            id INTEGER PRIMARY KEY,
            grid_id INTEGER NOT NULL REFERENCES grids(id),
            threshold_set_id INTEGER NOT NULL REFERENCES threshold_sets(id),
            category TEXT NOT NULL,
            features TEXT NOT NULL DEFAULT '[]',
            reasons TEXT NOT NULL DEFAULT '[]',
            webster TEXT,
            score REAL,
            margin REAL,
            created_at TEXT NOT NULL,
            UNIQUE (grid_id, threshold_set_id)
        )"""
    )
    db.execute("CREATE INDEX proposals_margin ON proposals (threshold_set_id, margin)")
    db.execute("CREATE INDEX proposals_score ON proposals (threshold_set_id, score)")
    db.execute(
        """CREATE TABLE label_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            grid_id INTEGER NOT NULL REFERENCES grids(id),
            annotator TEXT NOT NULL,
            action TEXT NOT NULL,
            state TEXT,
            category TEXT,
            features TEXT NOT NULL DEFAULT '[]',
            note TEXT NOT NULL DEFAULT '',
            webster TEXT,
            undoes INTEGER REFERENCES label_events(id),
            proposal_shown INTEGER NOT NULL DEFAULT 1,
            proposal_category TEXT,
            session TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX label_events_grid ON label_events (grid_id, annotator, id)")
    db.execute("CREATE INDEX label_events_annotator ON label_events (annotator, id)")
    db.execute("CREATE INDEX label_events_undoes ON label_events (undoes)")
    # History is append-only: the database itself refuses edits and deletions.
    db.execute(
        """CREATE TRIGGER label_events_no_update BEFORE UPDATE ON label_events
        BEGIN SELECT RAISE(ABORT, 'label history is append-only'); END"""
    )
    db.execute(
        """CREATE TRIGGER label_events_no_delete BEFORE DELETE ON label_events
        BEGIN SELECT RAISE(ABORT, 'label history is append-only'); END"""
    )
    # An event counts unless it is an undo or has been undone; the current label of an
    # annotator on a grid is their latest event that counts.
    db.execute(
        """CREATE VIEW effective_label_events AS
        SELECT e.* FROM label_events e
        WHERE e.action != 'undo'
          AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes = e.id)"""
    )
    db.execute(
        """CREATE VIEW current_labels AS
        SELECT e.* FROM effective_label_events e
        WHERE e.id = (
            SELECT max(x.id) FROM effective_label_events x
            WHERE x.grid_id = e.grid_id AND x.annotator = e.annotator
        )"""
    )
    db.execute(
        """CREATE TABLE leases (
            grid_id INTEGER PRIMARY KEY REFERENCES grids(id),
            annotator TEXT NOT NULL,
            expires_at REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE entities (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            aliases TEXT NOT NULL DEFAULT '[]'
        )"""
    )
    db.execute(
        """CREATE TABLE calibration_runs (
            id INTEGER PRIMARY KEY,
            created_at TEXT NOT NULL,
            threshold_set_id INTEGER REFERENCES threshold_sets(id),
            fitted_threshold_set_id INTEGER REFERENCES threshold_sets(id),
            label_count INTEGER NOT NULL,
            objective TEXT NOT NULL DEFAULT '',
            thresholds TEXT NOT NULL DEFAULT '{}',
            metrics TEXT NOT NULL DEFAULT '{}',
            accepted INTEGER NOT NULL DEFAULT 0
        )"""
    )


@migrations()
def m002_queue_indexes(db: Database) -> None:
    # The annotation queue walks these in order and stops at the first open grids, instead
    # of sorting every grid on each call (61 ms -> well under 1 ms at 62,500 grids).
    db.execute(
        "CREATE INDEX proposals_queue_margin ON proposals (threshold_set_id, abs(margin), grid_id)"
    )
    db.execute(
        "CREATE INDEX proposals_queue_score ON proposals (threshold_set_id, score DESC, grid_id)"
    )


@migrations()
def m003_grid_progress(db: Database) -> None:
    # How many annotators' current label on a grid is labelled or flagged: derived from
    # label_events, kept by SQLite in the same transaction as each event, so the queue
    # rejects a done grid with one key lookup instead of evaluating the current_labels view.
    db.execute(
        """CREATE TABLE grid_progress (
            grid_id INTEGER PRIMARY KEY REFERENCES grids(id),
            done INTEGER NOT NULL
        )"""
    )
    db.execute(
        """INSERT INTO grid_progress (grid_id, done)
        SELECT grid_id, count(DISTINCT annotator) FROM current_labels
        WHERE state IN ('labelled', 'flagged') GROUP BY grid_id"""
    )
    db.execute(
        """CREATE TRIGGER label_events_progress AFTER INSERT ON label_events
        BEGIN
            INSERT INTO grid_progress (grid_id, done) VALUES (
                NEW.grid_id,
                (SELECT count(DISTINCT c.annotator) FROM current_labels c
                 WHERE c.grid_id = NEW.grid_id AND c.state IN ('labelled', 'flagged'))
            )
            ON CONFLICT (grid_id) DO UPDATE SET done = excluded.done;
        END"""
    )


@migrations()
def m004_votes(db: Database) -> None:
    # One definition of an annotator's vote (docs/design.md, "The label model"): their latest
    # event that still counts, adjudications aside. current_labels let an adjudication replace
    # the adjudicator's own vote while every bulk reader kept it; the view goes, every reader
    # reads `votes` and `adjudications`, and grid_progress is recounted from votes.
    db.execute("DROP TRIGGER label_events_progress")
    db.execute("DROP VIEW current_labels")
    # "No later one" rather than "= max(id)": the usual single event per annotator and grid
    # is settled by one index probe, without testing every earlier event for an undo.
    db.execute(
        """CREATE VIEW votes AS
        SELECT e.* FROM effective_label_events e
        WHERE e.action != 'adjudicate' AND NOT EXISTS (
            SELECT 1 FROM effective_label_events later
            WHERE later.grid_id = e.grid_id AND later.annotator = e.annotator
              AND later.id > e.id AND later.action != 'adjudicate'
        )"""
    )
    db.execute(
        """CREATE VIEW adjudications AS
        SELECT e.* FROM effective_label_events e
        WHERE e.action = 'adjudicate' AND NOT EXISTS (
            SELECT 1 FROM effective_label_events later
            WHERE later.grid_id = e.grid_id AND later.annotator = e.annotator
              AND later.id > e.id AND later.action = 'adjudicate'
        )"""
    )
    # done: the annotators whose vote is labelled or flagged (LabelState.done).
    db.execute("DELETE FROM grid_progress")
    db.execute(
        """INSERT INTO grid_progress (grid_id, done)
        SELECT grid_id, count(*) FROM votes
        WHERE state IN ('labelled', 'flagged') GROUP BY grid_id"""
    )
    db.execute(
        """CREATE TRIGGER label_events_progress AFTER INSERT ON label_events
        BEGIN
            INSERT INTO grid_progress (grid_id, done) VALUES (
                NEW.grid_id,
                (SELECT count(*) FROM votes v
                 WHERE v.grid_id = NEW.grid_id AND v.state IN ('labelled', 'flagged'))
            )
            ON CONFLICT (grid_id) DO UPDATE SET done = excluded.done;
        END"""
    )


@migrations()
def m005_grid_origin(db: Database) -> None:
    # Where an imported grid came from (its source folder, or a manifest's grid key): two
    # folders with one prompt are two grids. The origin joins the grid's identity through
    # settings_key (grid_key in db/grids.py), so the UNIQUE constraint needs no table rebuild;
    # grids made here (generated, demo) have no origin and keep their key.
    db.execute("ALTER TABLE grids ADD COLUMN origin TEXT NOT NULL DEFAULT ''")
    # Grids imported before: their origin is the folder (or manifest) their provenance
    # names, so importing the same folder again still finds them.
    from memgrid.db.grids import grid_key  # the store imports this module: import late

    rows = db.execute(
        "SELECT id, settings, provenance FROM grids WHERE source = 'import'"
    ).fetchall()
    for grid_id, settings, provenance in rows:
        imported_from = json.loads(provenance).get("imported_from")
        if not imported_from:
            continue
        origin = PurePath(str(imported_from)).name
        db.execute(
            "UPDATE grids SET origin = ?, settings_key = ? WHERE id = ?",
            (origin, grid_key(json.loads(settings), origin), grid_id),
        )


@migrations()
def m006_draft_events(db: Database) -> None:
    # A note or feature typed before a grid's label is an event too (action 'draft'),
    # committed when entered so that quitting or a dropped connection loses nothing, and
    # undone like any other. A draft is never a vote: the votes view leaves it out, as it
    # leaves out adjudications (grid_progress's trigger reads votes, so it follows).
    db.execute("DROP VIEW votes")
    db.execute(
        """CREATE VIEW votes AS
        SELECT e.* FROM effective_label_events e
        WHERE e.action NOT IN ('adjudicate', 'draft') AND NOT EXISTS (
            SELECT 1 FROM effective_label_events later
            WHERE later.grid_id = e.grid_id AND later.annotator = e.annotator
              AND later.id > e.id AND later.action NOT IN ('adjudicate', 'draft')
        )"""
    )


@migrations()
def m007_no_replacing_label_events(db: Database) -> None:
    # INSERT OR REPLACE deletes the row it collides with without firing the delete trigger
    # (SQLite's recursive_triggers is off by default): refuse an insert of an existing id.
    # This step and the next may run again harmlessly (IF NOT EXISTS, only missing columns).
    db.execute(
        """CREATE TRIGGER IF NOT EXISTS label_events_no_replace BEFORE INSERT ON label_events
        WHEN EXISTS (SELECT 1 FROM label_events WHERE id = NEW.id)
        BEGIN SELECT RAISE(ABORT, 'label history is append-only'); END"""
    )


@migrations()
def m008_label_event_accounts(db: Database) -> None:
    # docs/design.md, "Who labelled": the OS account and SSH client of the process that wrote
    # each event, beside the name it labelled as; '' for events stored before this.
    for column in ("os_user", "ssh_client"):
        _add_column(db, "label_events", f"{column} TEXT NOT NULL DEFAULT ''")


@migrations()
def m009_labels_in_and_out(db: Database) -> None:
    # Labels made elsewhere (docs/design.md, "Labels in and out"): each imported event names
    # the file it came from (`origin`; '' for labels typed in memgrid) and a stable id from
    # that file (`external_id`), so importing the file again adds nothing. Each step checks
    # first: run on a database that already has a part of it, it adds only what is missing.
    _add_column(db, "label_events", "origin TEXT NOT NULL DEFAULT ''")
    _add_column(db, "label_events", "external_id TEXT")
    db.execute(
        """CREATE UNIQUE INDEX IF NOT EXISTS label_events_external_id ON label_events (external_id)
        WHERE external_id IS NOT NULL"""
    )
    # Where each threshold set came from: 'v0', 'file PATH', 'calibration run N'.
    _add_column(db, "threshold_sets", "origin TEXT NOT NULL DEFAULT ''")
    db.execute(
        """UPDATE threshold_sets SET origin = 'calibration run ' || (
            SELECT min(r.id) FROM calibration_runs r WHERE r.fitted_threshold_set_id = threshold_sets.id)
        WHERE origin = '' AND id IN (SELECT fitted_threshold_set_id FROM calibration_runs)"""
    )
    db.execute(
        "UPDATE threshold_sets SET origin = 'v0' WHERE origin = '' AND notes LIKE 'tiled_l2_delta = %'"
    )
    # The triage signal of every prompt a `generate --triage-steps` run looked at, kept or not,
    # per model, settings and number of steps (a rerun replaces it).
    db.execute(
        """CREATE TABLE IF NOT EXISTS triage_results (
            prompt_id INTEGER NOT NULL REFERENCES prompts(id),
            model TEXT NOT NULL,
            settings TEXT NOT NULL,
            settings_key TEXT NOT NULL,
            triage_steps INTEGER NOT NULL,
            seeds TEXT NOT NULL,
            value REAL NOT NULL,
            threshold REAL NOT NULL,
            kept INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (prompt_id, model, settings_key, triage_steps)
        )"""
    )


def _add_column(db: Database, table: str, column: str) -> None:
    """ALTER TABLE ADD COLUMN, unless the table has that column already."""
    name = column.split()[0]
    if name not in db[table].columns_dict:
        db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")


@migrations()
def m010_reference_images(db: Database) -> None:
    # Training images a grid may copy (docs/design.md, "Reference images"), stored
    # content-addressed like seeds. "references" is an SQL keyword, hence the name. One row
    # per (image, key, url, caption): LAION holds one image under several captions. A
    # reference is linked to a prompt whose metadata names its key (laion_key) or url, or
    # whose text is its caption, through these indexes; phash is the pool's hash index.
    db.execute(
        """CREATE TABLE IF NOT EXISTS reference_images (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            key TEXT NOT NULL DEFAULT '',
            url TEXT NOT NULL DEFAULT '',
            caption TEXT NOT NULL DEFAULT '',
            phash INTEGER NOT NULL,
            origin TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            UNIQUE (sha256, key, url, caption)
        )"""
    )
    db.execute(
        "CREATE INDEX IF NOT EXISTS reference_images_key ON reference_images (key) WHERE key != ''"
    )
    db.execute(
        "CREATE INDEX IF NOT EXISTS reference_images_url ON reference_images (url) WHERE url != ''"
    )
    db.execute(
        "CREATE INDEX IF NOT EXISTS reference_images_caption ON reference_images (caption) WHERE caption != ''"
    )


@migrations()
def m011_drop_sift_features(db: Database) -> None:
    # The keypoints metric matches ORB keypoints since its version 2 (docs/design.md,
    # "Signals"); the SIFT keypoints cached per image by version 1 (about 68 KB an image)
    # are never read again. They are derived data: dropping them loses nothing, and the
    # pages they held are reused by the ORB keypoints the next `memgrid score` stores.
    db.execute("DELETE FROM embeddings WHERE model_key LIKE 'sift/%'")


@migrations()
def m012_drop_500_orb_features(db: Database) -> None:
    # Keypoints version 4 keeps the 250 strongest ORB keypoints (docs/design.md, "Signals");
    # the 500 cached per image by versions 2 and 3 (about 20 KB an image) are never read
    # again. Derived data, as in m011: dropping them loses nothing.
    db.execute("DELETE FROM embeddings WHERE model_key LIKE 'orb/%/features=500/%'")


SCHEMA_VERSION = len(migrations._migrations)
