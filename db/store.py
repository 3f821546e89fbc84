"""The typed store: every read and write of memgrid.db goes through `Store`."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memgrid.core.errors import NotFoundError, ProjectError, SchemaError
from memgrid.core.provenance import extend_provenance
from memgrid.core.records import (
    Entity,
    Grid,
    GridIdentity,
    GridImage,
    LabelEvent,
    Prompt,
    Proposal,
    Reason,
    Score,
    ThresholdSet,
)
from memgrid.core.taxonomy import Category, Feature, LabelState, Webster
from memgrid.db.migrations import SCHEMA_VERSION, migrations
from sqlite_utils import Database
from sqlite_utils.db import Table

DATABASE_NAME = "memgrid.db"
BUSY_TIMEOUT_SECONDS = 30.0
# WAL needs shared memory that network filesystems do not provide reliably.
NETWORK_FILESYSTEMS = {"nfs", "nfs4", "cifs", "smbfs", "smb3", "fuse.sshfs", "9p", "afs", "ceph"}
QUEUE_ORDERS = ("threshold", "score", "prompt", "random")
# SQLite refuses more than 32,766 bound variables in one statement.
IDS_PER_QUERY = 30000


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def content_key(value: Any) -> str:
    """A short stable key for a settings or params dict, for uniqueness constraints."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:24]


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def filesystem_type(path: Path) -> str | None:
    """The type of the filesystem holding `path`, from /proc/mounts (Linux); None elsewhere."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    resolved = str(path.resolve())
    best, best_type = "", None
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount_point = parts[1].replace("\\040", " ")
        inside = resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, parts[2]
    return best_type


class Store:
    """One memgrid database, shaped after sqlite-utils: nouns are properties, verbs act."""

    def __init__(self, db: Database, path: Path | None = None) -> None:
        self.db = db
        self.path = path

    # ---- opening -------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, create: bool = False) -> Store:
        """Open (and migrate) the database at `path`; refuse one of a newer schema."""
        if not path.exists() and not create:
            raise ProjectError(f"{path}: no memgrid database here (run `memgrid init`)")
        try:
            connection = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False
            )
            connection.execute("PRAGMA foreign_keys = ON")
            store = cls(Database(connection), path)
            store._check_schema_version()
            store._choose_journal_mode()
            store._migrate()
        except sqlite3.DatabaseError as error:
            raise ProjectError(f"{path}: not a usable SQLite database ({error})") from None
        return store

    @classmethod
    def memory(cls) -> Store:
        store = cls(Database(memory=True))
        store._migrate()
        return store

    def close(self) -> None:
        self.db.close()

    def _check_schema_version(self) -> None:
        on_disk = self.schema_version
        known_names = {m.name for m in migrations._migrations}
        unknown = [m.name for m in migrations.applied(self.db) if m.name not in known_names]
        if on_disk > SCHEMA_VERSION or unknown:
            found = max(on_disk, SCHEMA_VERSION + len(unknown))
            raise SchemaError(
                f"{self.path}: database schema version {found} is newer than this memgrid "
                f"understands (version {SCHEMA_VERSION}); upgrade memgrid to open it"
            )

    def _choose_journal_mode(self) -> None:
        if self.path is None:
            return
        fs_type = filesystem_type(self.path.parent)
        if fs_type in NETWORK_FILESYSTEMS:
            self.db.execute("PRAGMA journal_mode = DELETE")
        else:
            self.db.enable_wal()
        self.db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
        # FULL: a label acknowledged on screen survives a power cut too, not only a crash
        # (WAL's NORMAL would give back the last commits); an fsync per label is cheap.
        self.db.execute("PRAGMA synchronous = FULL")

    def _migrate(self) -> None:
        if migrations.pending(self.db):
            migrations.apply(self.db)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        if not self.project_id:
            with self.db.atomic():
                self.table("project_meta").insert(
                    {"key": "project_id", "value": uuid.uuid4().hex}, ignore=True
                )
                self.table("project_meta").insert(
                    {"key": "created_at", "value": now_text()}, ignore=True
                )

    def table(self, name: str) -> Table:
        return self.db.table(name)

    @contextmanager
    def atomic(self) -> Iterator[None]:
        with self.db.atomic():
            yield

    # ---- project facts -------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    @property
    def journal_mode(self) -> str:
        return str(self.db.execute("PRAGMA journal_mode").fetchone()[0]).lower()

    @property
    def project_id(self) -> str | None:
        if not self.table("project_meta").exists():
            return None
        row = self.db.execute("SELECT value FROM project_meta WHERE key = 'project_id'").fetchone()
        return row[0] if row else None

    def _count(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self.db.execute(sql, params).fetchone()[0])

    @property
    def prompt_count(self) -> int:
        return self._count("SELECT count(*) FROM prompts")

    @property
    def grid_count(self) -> int:
        return self._count("SELECT count(*) FROM grids")

    @property
    def image_count(self) -> int:
        return self._count("SELECT count(*) FROM images")

    # ---- prompts -------------------------------------------------------------------

    def add_prompts(self, items: Iterable[tuple[str, dict[str, Any]]]) -> tuple[int, int]:
        """Insert prompts, merging exact duplicates; returns (added, merged)."""
        added = merged = 0
        created_at = now_text()
        with self.db.atomic():
            for text, metadata in items:
                cursor = self.db.execute(
                    "INSERT OR IGNORE INTO prompts (text, metadata, created_at) VALUES (?, ?, ?)",
                    (text, canonical_json(metadata), created_at),
                )
                if cursor.rowcount:
                    added += 1
                else:
                    merged += 1
        return added, merged

    def ensure_prompt(self, text: str, metadata: dict[str, Any] | None = None) -> int:
        self.db.execute(
            "INSERT OR IGNORE INTO prompts (text, metadata, created_at) VALUES (?, ?, ?)",
            (text, canonical_json(metadata or {}), now_text()),
        )
        return int(self.db.execute("SELECT id FROM prompts WHERE text = ?", (text,)).fetchone()[0])

    def prompts(self) -> list[Prompt]:
        return [
            Prompt(id=row[0], text=row[1], metadata=json.loads(row[2]))
            for row in self.db.execute("SELECT id, text, metadata FROM prompts ORDER BY id")
        ]

    # ---- grids and images -----------------------------------------------------------

    def add_grid(
        self,
        prompt: str,
        images: Sequence[GridImage],
        *,
        model: str = "",
        settings: dict[str, Any] | None = None,
        provenance: dict[str, Any] | None = None,
        source: str = "",
        prompt_metadata: dict[str, Any] | None = None,
    ) -> tuple[int, int]:
        """Add a grid and its images in one transaction; returns (grid id, images added).

        A grid is identified by prompt, model and settings: adding it again adds only
        the seeds it lacks, so an interrupted run resumes without duplicates, and its
        provenance then lists each run that added seeds (core.provenance).
        """
        settings = settings or {}
        with self.db.atomic():
            prompt_id = self.ensure_prompt(prompt, prompt_metadata)
            settings_key = content_key(settings)
            created = self.db.execute(
                """INSERT OR IGNORE INTO grids
                (prompt_id, model, settings, settings_key, provenance, source, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (
                    prompt_id,
                    model,
                    canonical_json(settings),
                    settings_key,
                    canonical_json(provenance or {}),
                    source,
                    now_text(),
                ),
            )
            grid_id, stored_provenance = self.db.execute(
                """SELECT id, provenance FROM grids
                WHERE prompt_id = ? AND model = ? AND settings_key = ?""",
                (prompt_id, model, settings_key),
            ).fetchone()
            seeds_before = set() if created.rowcount else self.seeds_of(grid_id)
            added_seeds = []
            for image in images:
                cursor = self.db.execute(
                    """INSERT OR IGNORE INTO images (grid_id, seed, path, sha256, width, height)
                    VALUES (?, ?, ?, ?, ?, ?)""",
                    (grid_id, image.seed, image.path, image.sha256, image.width, image.height),
                )
                if cursor.rowcount:
                    added_seeds.append(image.seed)
            if seeds_before and added_seeds:
                extended = extend_provenance(
                    json.loads(stored_provenance), seeds_before, provenance or {}, added_seeds
                )
                self.db.execute(
                    "UPDATE grids SET provenance = ? WHERE id = ?",
                    (canonical_json(extended), grid_id),
                )
        return int(grid_id), len(added_seeds)

    def find_grid(
        self, prompt: str, model: str = "", settings: dict[str, Any] | None = None
    ) -> int | None:
        row = self.db.execute(
            """SELECT g.id FROM grids g JOIN prompts p ON p.id = g.prompt_id
            WHERE p.text = ? AND g.model = ? AND g.settings_key = ?""",
            (prompt, model, content_key(settings or {})),
        ).fetchone()
        return int(row[0]) if row else None

    def grid_ids(self) -> list[int]:
        return [row[0] for row in self.db.execute("SELECT id FROM grids ORDER BY id")]

    def grid(self, grid_id: int) -> Grid:
        grids = self.grids([grid_id])
        if not grids:
            raise NotFoundError(f"grid {grid_id}", "no grid with this id in the project")
        return grids[0]

    def grids(self, grid_ids: Sequence[int] | None = None) -> list[Grid]:
        """Grids with their images, in id order (or in the order of `grid_ids`)."""
        where, params = "", []
        if grid_ids is not None:
            if not grid_ids:
                return []
            where = f"WHERE g.id IN ({','.join('?' * len(grid_ids))})"
            params = list(grid_ids)
        rows = self.db.execute(
            f"""SELECT g.id, g.prompt_id, p.text, g.model, g.settings, g.provenance, g.source,
                p.metadata
            FROM grids g JOIN prompts p ON p.id = g.prompt_id {where} ORDER BY g.id""",
            params,
        ).fetchall()
        images: dict[int, list[GridImage]] = {row[0]: [] for row in rows}
        image_where = where.replace("g.id", "grid_id")
        for grid_id, seed, path, sha256, width, height in self.db.execute(
            f"""SELECT grid_id, seed, path, sha256, width, height FROM images
            {image_where} ORDER BY grid_id, seed""",
            params,
        ):
            images[grid_id].append(GridImage(seed, path, sha256, width, height))
        grids = {
            row[0]: Grid(
                id=row[0],
                prompt_id=row[1],
                prompt=row[2],
                model=row[3],
                settings=json.loads(row[4]),
                provenance=json.loads(row[5]),
                source=row[6],
                images=tuple(images[row[0]]),
                prompt_metadata=json.loads(row[7]),
            )
            for row in rows
        }
        order = grid_ids if grid_ids is not None else sorted(grids)
        return [grids[grid_id] for grid_id in order if grid_id in grids]

    def grid_identities(
        self, *, ids: Sequence[int] | None = None, prompts: Sequence[str] | None = None
    ) -> list[GridIdentity]:
        """The identities of the grids with these ids, or of these prompts, in id order."""
        column, values = ("g.id", ids) if ids is not None else ("p.text", prompts or ())
        found: list[GridIdentity] = []
        wanted = list(dict.fromkeys(values))
        for start in range(0, len(wanted), IDS_PER_QUERY):
            chunk = wanted[start : start + IDS_PER_QUERY]
            found += [
                GridIdentity(*row)
                for row in self.db.execute(
                    f"""SELECT g.id, p.text, g.model, g.source,
                        coalesce(json_extract(g.provenance, '$.imported_from'), '')
                    FROM grids g JOIN prompts p ON p.id = g.prompt_id
                    WHERE {column} IN ({_placeholders(chunk)}) ORDER BY g.id""",
                    chunk,
                )
            ]
        return sorted(found, key=lambda identity: identity.id)

    def seeds_of(self, grid_id: int) -> set[int]:
        return {
            row[0]
            for row in self.db.execute("SELECT seed FROM images WHERE grid_id = ?", (grid_id,))
        }

    def image_paths(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT DISTINCT path FROM images")}

    # ---- scores and embeddings -------------------------------------------------------

    def add_score(self, score: Score) -> None:
        """Store a metric's result, replacing an earlier one with the same metric and params."""
        self.db.execute(
            """INSERT INTO scores (grid_id, metric, params, params_key, version, "values",
                heatmap, available, note, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (grid_id, metric, params_key) DO UPDATE SET
                version = excluded.version, "values" = excluded."values",
                heatmap = excluded.heatmap, available = excluded.available,
                note = excluded.note, created_at = excluded.created_at""",
            (
                score.grid_id,
                score.metric,
                canonical_json(score.params),
                content_key(score.params),
                score.version,
                canonical_json(score.values),
                None if score.heatmap is None else json.dumps(score.heatmap),
                int(score.available),
                score.note,
                now_text(),
            ),
        )

    def scores(self, grid_id: int, metric: str | None = None) -> list[Score]:
        sql = """SELECT grid_id, metric, params, version, "values", heatmap, available, note
            FROM scores WHERE grid_id = ?"""
        params: list[Any] = [grid_id]
        if metric is not None:
            sql += " AND metric = ?"
            params.append(metric)
        return [_score(row) for row in self.db.execute(sql + " ORDER BY metric, id", params)]

    def grids_to_score(
        self, metric: str, params: dict[str, Any], version: str, *, retry_unavailable: bool = True
    ) -> list[int]:
        """Grids without a current score for metric+params+version, in id order.

        Current means available and covering every seed the grid has now, so a grid that
        gained seeds (a merge) is rescored. An unavailable score (no weights) counts as not
        current unless `retry_unavailable` is False: then it is held until the metric can run.
        """
        held = "" if retry_unavailable else "OR s.available = 0"
        return [
            row[0]
            for row in self.db.execute(
                f"""SELECT g.id FROM grids g WHERE NOT EXISTS (
                    SELECT 1 FROM scores s WHERE s.grid_id = g.id AND s.metric = ?
                    AND s.params_key = ? AND s.version = ? AND ((s.available = 1
                    AND json_extract(s."values", '$.n_seeds') =
                        (SELECT count(*) FROM images i WHERE i.grid_id = g.id)) {held})
                ) ORDER BY g.id""",
                (metric, content_key(params), version),
            )
        ]

    def get_embeddings(self, model_key: str, shas: Iterable[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(shas))
        found: dict[str, bytes] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for sha, vector in self.db.execute(
                f"""SELECT sha256, vector FROM embeddings WHERE model_key = ?
                AND sha256 IN ({",".join("?" * len(chunk))})""",
                [model_key, *chunk],
            ):
                found[sha] = bytes(vector)
        return found

    def put_embeddings(self, model_key: str, vectors: dict[str, bytes]) -> None:
        with self.db.atomic():
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO embeddings (model_key, sha256, vector) VALUES (?, ?, ?)",
                [(model_key, sha, vector) for sha, vector in vectors.items()],
            )

    # ---- threshold sets and proposals ------------------------------------------------

    def add_threshold_set(
        self,
        name: str,
        values: dict[str, float],
        *,
        notes: str = "",
        model: str | None = None,
        activate: bool = False,
        origin: str = "",
    ) -> ThresholdSet:
        """Store a new version of the named set (versions count up from 0).

        `origin` says where it came from: v0, file PATH, calibration run N.
        """
        with self.db.atomic():
            row = self.db.execute(
                "SELECT max(version) FROM threshold_sets WHERE name = ?", (name,)
            ).fetchone()
            version = 0 if row[0] is None else int(row[0]) + 1
            cursor = self.db.execute(
                """INSERT INTO threshold_sets (name, version, model, "values", notes, origin,
                    created_at) VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (name, version, model, canonical_json(values), notes, origin, now_text()),
            )
            set_id = int(cursor.lastrowid or 0)
            if activate:
                self.activate_threshold_set(set_id)
        return self.threshold_set_by_id(set_id)

    def activate_threshold_set(self, set_id: int) -> None:
        """Make one set active for its model (or for all grids when it names none)."""
        with self.db.atomic():
            model = self.threshold_set_by_id(set_id).model
            self.db.execute("UPDATE threshold_sets SET active = 0 WHERE model IS ?", (model,))
            self.db.execute("UPDATE threshold_sets SET active = 1 WHERE id = ?", (set_id,))

    def threshold_set_by_id(self, set_id: int) -> ThresholdSet:
        row = self.db.execute(
            f"SELECT {_THRESHOLD_COLUMNS} FROM threshold_sets WHERE id = ?", (set_id,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"threshold set {set_id}", "no threshold set with this id")
        return _threshold_set(row)

    def threshold_set(self, name: str, version: int | None = None) -> ThresholdSet:
        sql = f"SELECT {_THRESHOLD_COLUMNS} FROM threshold_sets WHERE name = ?"
        params: list[Any] = [name]
        if version is not None:
            sql += " AND version = ?"
            params.append(version)
        row = self.db.execute(sql + " ORDER BY version DESC LIMIT 1", params).fetchone()
        if row is None:
            suffix = "" if version is None else f" version {version}"
            raise NotFoundError(f"threshold set {name!r}{suffix}", "no threshold set of this name")
        return _threshold_set(row)

    def threshold_sets(self) -> list[ThresholdSet]:
        return [
            _threshold_set(row)
            for row in self.db.execute(
                f"SELECT {_THRESHOLD_COLUMNS} FROM threshold_sets ORDER BY name, version"
            )
        ]

    def active_threshold_set(self, model: str | None = None) -> ThresholdSet | None:
        """The active set for `model`, falling back to the project-wide active set."""
        for candidate in [model, None] if model else [None]:
            row = self.db.execute(
                f"SELECT {_THRESHOLD_COLUMNS} FROM threshold_sets WHERE active = 1 AND model IS ?",
                (candidate,),
            ).fetchone()
            if row is not None:
                return _threshold_set(row)
        return None

    def add_proposal(self, proposal: Proposal) -> None:
        self.db.execute(
            """INSERT INTO proposals (grid_id, threshold_set_id, category, features, reasons,
                webster, score, margin, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (grid_id, threshold_set_id) DO UPDATE SET
                category = excluded.category, features = excluded.features,
                reasons = excluded.reasons, webster = excluded.webster,
                score = excluded.score, margin = excluded.margin,
                created_at = excluded.created_at""",
            (
                proposal.grid_id,
                proposal.threshold_set_id,
                proposal.category.value,
                json.dumps([f.to_dict() for f in proposal.features]),
                json.dumps([r.to_dict() for r in proposal.reasons]),
                proposal.webster.value if proposal.webster else None,
                proposal.score,
                proposal.margin,
                now_text(),
            ),
        )

    def add_proposals(self, proposals: Iterable[Proposal]) -> int:
        count = 0
        with self.db.atomic():
            for proposal in proposals:
                self.add_proposal(proposal)
                count += 1
        return count

    def proposal(self, grid_id: int, threshold_set_id: int | None = None) -> Proposal | None:
        """The grid's proposal under a set (default: the active set for the grid's model)."""
        if threshold_set_id is None:
            model_row = self.db.execute(
                "SELECT model FROM grids WHERE id = ?", (grid_id,)
            ).fetchone()
            active = self.active_threshold_set(model_row[0] if model_row else None)
            if active is None:
                return None
            threshold_set_id = active.id
        row = self.db.execute(
            f"SELECT {_PROPOSAL_COLUMNS} FROM proposals WHERE grid_id = ? AND threshold_set_id = ?",
            (grid_id, threshold_set_id),
        ).fetchone()
        return None if row is None else _proposal(row)

    def proposal_counts(self) -> dict[str, int]:
        """Proposals per category under each grid's active threshold set."""
        counts = {category.value: 0 for category in Category}
        for category, count in self.db.execute(
            """SELECT p.category, count(*) FROM proposals p
            JOIN threshold_sets t ON t.id = p.threshold_set_id AND t.active = 1
            GROUP BY p.category"""
        ):
            counts[category] = count
        return counts

    # ---- entities ----------------------------------------------------------------------

    def add_entities(self, entities: Iterable[Entity]) -> int:
        """Insert or update lexicon entries by name; returns how many were written."""
        rows = [(e.name, e.type, json.dumps(list(e.aliases))) for e in entities]
        with self.db.atomic():
            self.db.conn.executemany(
                """INSERT INTO entities (name, type, aliases) VALUES (?, ?, ?)
                ON CONFLICT (name) DO UPDATE SET type = excluded.type, aliases = excluded.aliases""",
                rows,
            )
        return len(rows)

    def entities(self) -> list[Entity]:
        return [
            Entity(name=row[0], type=row[1], aliases=tuple(json.loads(row[2])))
            for row in self.db.execute("SELECT name, type, aliases FROM entities ORDER BY name")
        ]

    # ---- labels ------------------------------------------------------------------------

    def append_label_event(
        self,
        grid_id: int,
        annotator: str,
        action: str,
        *,
        state: LabelState | None = None,
        category: Category | None = None,
        features: Sequence[Feature] = (),
        note: str = "",
        webster: Webster | None = None,
        undoes: int | None = None,
        proposal_shown: bool = True,
        proposal_category: Category | None = None,
        session: str = "",
    ) -> LabelEvent:
        """Append one event and commit it at once: a label is durable when this returns."""
        created_at = time.time()
        with self.db.atomic():
            cursor = self.db.execute(
                """INSERT INTO label_events (grid_id, annotator, action, state, category,
                    features, note, webster, undoes, proposal_shown, proposal_category,
                    session, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    grid_id,
                    annotator,
                    action,
                    state.value if state else None,
                    category.value if category else None,
                    json.dumps([f.to_dict() for f in features]),
                    note,
                    webster.value if webster else None,
                    undoes,
                    int(proposal_shown),
                    proposal_category.value if proposal_category else None,
                    session,
                    created_at,
                ),
            )
            event_id = int(cursor.lastrowid or 0)
        return self.label_event(event_id)

    def import_label_events(self, events: Sequence[LabelEvent]) -> int:
        """Append label events made elsewhere, all in one transaction (all or none).

        Each keeps its own time, `origin` (the file) and `external_id`; ids are assigned
        here. Returns how many were added.
        """
        rows = [
            (
                event.grid_id,
                event.annotator,
                event.action,
                event.state.value if event.state else None,
                event.category.value if event.category else None,
                json.dumps([f.to_dict() for f in event.features]),
                event.note,
                event.webster.value if event.webster else None,
                int(event.proposal_shown),
                event.proposal_category.value if event.proposal_category else None,
                event.session,
                event.created_at,
                event.origin,
                event.external_id,
            )
            for event in events
        ]
        with self.db.atomic():
            self.db.conn.executemany(
                """INSERT INTO label_events (grid_id, annotator, action, state, category,
                    features, note, webster, proposal_shown, proposal_category, session,
                    created_at, origin, external_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                rows,
            )
        return len(rows)

    def events_by_external_id(self, external_ids: Sequence[str]) -> dict[str, LabelEvent]:
        """The imported events with these external ids (undone ones too), by id."""
        found: dict[str, LabelEvent] = {}
        wanted = list(dict.fromkeys(external_ids))
        for start in range(0, len(wanted), IDS_PER_QUERY):
            chunk = wanted[start : start + IDS_PER_QUERY]
            for row in self.db.execute(
                f"""SELECT {_EVENT_COLUMNS} FROM label_events
                WHERE external_id IN ({_placeholders(chunk)})""",
                chunk,
            ):
                event = _label_event(row)
                found[event.external_id or ""] = event
        return found

    def label(
        self,
        grid_id: int,
        annotator: str,
        category: Category,
        **details: Any,
    ) -> LabelEvent:
        return self.append_label_event(
            grid_id, annotator, "label", state=LabelState.LABELLED, category=category, **details
        )

    def skip(self, grid_id: int, annotator: str, **details: Any) -> LabelEvent:
        return self.append_label_event(
            grid_id, annotator, "skip", state=LabelState.SKIPPED, **details
        )

    def flag(
        self, grid_id: int, annotator: str, category: Category | None = None, **details: Any
    ) -> LabelEvent:
        return self.append_label_event(
            grid_id, annotator, "flag", state=LabelState.FLAGGED, category=category, **details
        )

    def adjudicate(
        self, grid_id: int, adjudicator: str, category: Category, **details: Any
    ) -> LabelEvent:
        return self.append_label_event(
            grid_id,
            adjudicator,
            "adjudicate",
            state=LabelState.LABELLED,
            category=category,
            **details,
        )

    def undo_last(self, annotator: str, session: str | None = None) -> LabelEvent | None:
        """Undo the annotator's latest event that still counts; returns the undone event."""
        sql = "SELECT id, grid_id FROM effective_label_events WHERE annotator = ?"
        params: list[Any] = [annotator]
        if session is not None:
            sql += " AND session = ?"
            params.append(session)
        row = self.db.execute(sql + " ORDER BY id DESC LIMIT 1", params).fetchone()
        if row is None:
            return None
        self.append_label_event(row[1], annotator, "undo", undoes=row[0], session=session or "")
        return self.label_event(row[0])

    def label_event(self, event_id: int) -> LabelEvent:
        row = self.db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM label_events WHERE id = ?", (event_id,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"label event {event_id}", "no label event with this id")
        return _label_event(row)

    def label_history(self, grid_id: int) -> list[LabelEvent]:
        """Every event on a grid, undos included, oldest first: the audit trail."""
        return [
            _label_event(row)
            for row in self.db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM label_events WHERE grid_id = ? ORDER BY id",
                (grid_id,),
            )
        ]

    def current_label(self, grid_id: int, annotator: str) -> LabelEvent | None:
        row = self.db.execute(
            f"""SELECT {_EVENT_COLUMNS} FROM effective_label_events
            WHERE grid_id = ? AND annotator = ? ORDER BY id DESC LIMIT 1""",
            (grid_id, annotator),
        ).fetchone()
        return None if row is None else _label_event(row)

    def current_labels(self, grid_id: int | None = None) -> list[LabelEvent]:
        """The current label of every annotator (on one grid, or on all grids)."""
        sql = f"SELECT {_EVENT_COLUMNS} FROM current_labels"
        params: list[Any] = []
        if grid_id is not None:
            sql += " WHERE grid_id = ?"
            params.append(grid_id)
        return [_label_event(row) for row in self.db.execute(sql + " ORDER BY grid_id, id", params)]

    def label_counts(self, annotator: str | None = None) -> dict[str, int]:
        """Grids per current state (labelled/skipped/flagged), counted once per grid.

        For one annotator it is their own state; over all annotators a grid counts as
        labelled if anyone labelled it, else flagged, else skipped.
        """
        counts = {state.value: 0 for state in LabelState}
        if annotator is not None:
            rows = self.db.execute(
                "SELECT state, count(*) FROM current_labels WHERE annotator = ? GROUP BY state",
                (annotator,),
            )
        else:
            rows = self.db.execute(
                """SELECT CASE
                        WHEN sum(state = 'labelled') > 0 THEN 'labelled'
                        WHEN sum(state = 'flagged') > 0 THEN 'flagged'
                        ELSE 'skipped' END AS grid_state, 1
                FROM current_labels GROUP BY grid_id"""
            )
            rows = [(state, 1) for state, _ in rows]
        for state, count in rows:
            if state in counts:
                counts[state] += count
        return counts

    def annotators(self) -> list[str]:
        return [
            row[0]
            for row in self.db.execute(
                "SELECT DISTINCT annotator FROM label_events ORDER BY annotator"
            )
        ]

    # ---- what the annotation app asks ----------------------------------------------------

    def labels_by(self, annotator: str, limit: int = 500) -> list[LabelEvent]:
        """The annotator's current label on each grid they acted on, newest first."""
        return [
            _label_event(row)
            for row in self.db.execute(
                f"""SELECT {_EVENT_COLUMNS} FROM current_labels WHERE annotator = ?
                ORDER BY id DESC LIMIT ?""",
                (annotator, limit),
            )
        ]

    def label_times(self, annotator: str, since: float) -> list[float]:
        """When the annotator's labels and flags that still count were made, since `since`."""
        return [
            row[0]
            for row in self.db.execute(
                """SELECT created_at FROM effective_label_events
                WHERE annotator = ? AND created_at >= ? AND action IN ('label', 'flag')
                ORDER BY created_at""",
                (annotator, since),
            )
        ]

    def disagreements(self) -> dict[int, list[LabelEvent]]:
        """Grids whose annotators' current labels differ in category, with those labels.

        An annotator's vote is their latest labelling event that counts, adjudications
        aside (an adjudicator's verdict is not a vote); skips and flags do not vote.
        """
        rows = self.db.execute(
            f"""WITH votes AS (
                SELECT {_EVENT_COLUMNS} FROM effective_label_events e
                WHERE e.action = 'label' AND e.id = (
                    SELECT max(x.id) FROM effective_label_events x
                    WHERE x.grid_id = e.grid_id AND x.annotator = e.annotator
                      AND x.action != 'adjudicate')
            )
            SELECT * FROM votes WHERE grid_id IN (
                SELECT grid_id FROM votes GROUP BY grid_id HAVING count(DISTINCT category) > 1)
            ORDER BY grid_id, annotator"""
        ).fetchall()
        grouped: dict[int, list[LabelEvent]] = {}
        for row in rows:
            event = _label_event(row)
            grouped.setdefault(event.grid_id, []).append(event)
        return grouped

    def adjudications(self) -> dict[int, LabelEvent]:
        """The final label an adjudicator set on each grid (the latest that counts)."""
        found: dict[int, LabelEvent] = {}
        for row in self.db.execute(
            f"""SELECT {_EVENT_COLUMNS} FROM effective_label_events
            WHERE action = 'adjudicate' ORDER BY id"""
        ):
            event = _label_event(row)
            found[event.grid_id] = event
        return found

    # ---- queues and leases ---------------------------------------------------------------

    def next_open_grids(
        self,
        annotator: str,
        *,
        order: str = "threshold",
        limit: int = 1,
        overlap: int = 1,
        random_seed: int = 0,
        exclude: Sequence[int] = (),
        now: float | None = None,
    ) -> list[int]:
        """Grids the annotator has not acted on, in a stable order, skipping leased grids.

        A grid is open to an annotator while fewer than `overlap` annotators have labelled
        or flagged it and no other annotator holds an unexpired lease on it.
        """
        if order not in QUEUE_ORDERS:
            raise ValueError(f"unknown order {order!r}; choose from {', '.join(QUEUE_ORDERS)}")
        params = {
            "annotator": annotator,
            "overlap": overlap,
            "now": time.time() if now is None else now,
            "limit": limit,
        }
        excluded = ",".join(str(int(g)) for g in exclude) or "-1"
        keyed_set = self._only_active_set() if order in _INDEXED_ORDERS else None
        if keyed_set is not None:
            return self._open_grids_by_proposal_key(order, keyed_set, excluded, params)
        order_sql, join_sql = _order_clause(order, random_seed)
        rows = self.db.execute(
            f"""SELECT g.id FROM grids g {join_sql}
            WHERE g.id NOT IN ({excluded}) AND {_open_to_annotator("g.id")}
            ORDER BY {order_sql} LIMIT :limit""",
            params,
        ).fetchall()
        return [row[0] for row in rows]

    def _only_active_set(self) -> int | None:
        """The active threshold set when one project-wide set is the only active one."""
        rows = self.db.execute("SELECT id, model FROM threshold_sets WHERE active = 1").fetchall()
        return rows[0][0] if len(rows) == 1 and rows[0][1] is None else None

    def _open_grids_by_proposal_key(
        self, order: str, set_id: int, excluded: str, params: dict[str, Any]
    ) -> list[int]:
        """The threshold and score orders, walked along an index instead of sorting every grid.

        Same order as the general query: grids with a key first, by the key, then grids
        without one (no proposal, or no score) by id.
        """
        key, index_order = _INDEXED_ORDERS[order]
        params = {**params, "set": set_id}
        keyed = self.db.execute(
            f"""SELECT p.grid_id FROM proposals p
            WHERE p.threshold_set_id = :set AND p.{key} IS NOT NULL
              AND p.grid_id NOT IN ({excluded}) AND {_open_to_annotator("p.grid_id")}
            ORDER BY {index_order}, p.grid_id LIMIT :limit""",
            params,
        ).fetchall()
        found = [row[0] for row in keyed]
        if len(found) < params["limit"]:
            rest = self.db.execute(
                f"""SELECT g.id FROM grids g
                WHERE NOT EXISTS (SELECT 1 FROM proposals p WHERE p.grid_id = g.id
                                  AND p.threshold_set_id = :set AND p.{key} IS NOT NULL)
                  AND g.id NOT IN ({excluded}) AND {_open_to_annotator("g.id")}
                ORDER BY g.id LIMIT :limit""",
                {**params, "limit": params["limit"] - len(found)},
            ).fetchall()
            found += [row[0] for row in rest]
        return found

    def grids_in_state(self, state: LabelState, annotator: str | None = None) -> list[int]:
        """Grids whose current label (by `annotator`, or by anyone) is in `state`, oldest first."""
        sql = "SELECT grid_id FROM current_labels WHERE state = ?"
        params: list[Any] = [state.value]
        if annotator is not None:
            sql += " AND annotator = ?"
            params.append(annotator)
        return list(dict.fromkeys(row[0] for row in self.db.execute(sql + " ORDER BY id", params)))

    def claim(self, grid_id: int, annotator: str, seconds: float, now: float | None = None) -> bool:
        """Lease a grid to an annotator; False if another holds an unexpired lease."""
        now = time.time() if now is None else now
        with self.db.atomic():
            cursor = self.db.execute(
                """INSERT INTO leases (grid_id, annotator, expires_at) VALUES (?, ?, ?)
                ON CONFLICT (grid_id) DO UPDATE SET annotator = excluded.annotator,
                    expires_at = excluded.expires_at
                WHERE leases.annotator = excluded.annotator OR leases.expires_at <= ?""",
                (grid_id, annotator, now + seconds, now),
            )
            return cursor.rowcount > 0

    def release(self, grid_id: int, annotator: str) -> None:
        with self.db.atomic():
            self.db.execute(
                "DELETE FROM leases WHERE grid_id = ? AND annotator = ?", (grid_id, annotator)
            )

    # ---- calibration runs --------------------------------------------------------------

    def add_calibration_run(
        self,
        *,
        threshold_set_id: int | None,
        label_count: int,
        objective: str,
        thresholds: dict[str, Any],
        metrics: dict[str, Any],
    ) -> int:
        with self.db.atomic():
            cursor = self.db.execute(
                """INSERT INTO calibration_runs (created_at, threshold_set_id, label_count,
                    objective, thresholds, metrics) VALUES (?, ?, ?, ?, ?, ?)""",
                (
                    now_text(),
                    threshold_set_id,
                    label_count,
                    objective,
                    canonical_json(thresholds),
                    canonical_json(metrics),
                ),
            )
        return int(cursor.lastrowid or 0)

    def mark_calibration_accepted(self, run_id: int, fitted_threshold_set_id: int) -> None:
        with self.db.atomic():
            self.db.execute(
                "UPDATE calibration_runs SET accepted = 1, fitted_threshold_set_id = ? WHERE id = ?",
                (fitted_threshold_set_id, run_id),
            )

    def calibration_runs(self) -> list[dict[str, Any]]:
        runs = []
        for row in self.db.execute(
            """SELECT id, created_at, threshold_set_id, fitted_threshold_set_id, label_count,
            objective, thresholds, metrics, accepted FROM calibration_runs ORDER BY id"""
        ):
            runs.append(
                {
                    "id": row[0],
                    "created_at": row[1],
                    "threshold_set_id": row[2],
                    "fitted_threshold_set_id": row[3],
                    "label_count": row[4],
                    "objective": row[5],
                    "thresholds": json.loads(row[6]),
                    "metrics": json.loads(row[7]),
                    "accepted": bool(row[8]),
                }
            )
        return runs

    # ---- bulk reads (export) -----------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Hold one read transaction, so a read made of many queries sees one state of the data.

        Annotators may keep labelling while an export runs; WAL lets them write meanwhile.
        """
        if self.db.conn.in_transaction:
            yield
            return
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            self.db.execute("COMMIT")

    def label_events_for(self, grid_ids: Sequence[int]) -> list[LabelEvent]:
        """Each annotator's current vote and current adjudication on these grids, in one query.

        A vote is the annotator's latest event that counts, adjudications aside (label, skip
        or flag); an adjudication is their latest `adjudicate` that counts. An adjudicator's
        verdict therefore does not replace their own vote. Ordered by grid, then event id.
        """
        if not grid_ids:
            return []
        return [
            _label_event(row)
            for row in self.db.execute(
                f"""SELECT {_EVENT_COLUMNS} FROM effective_label_events e
                WHERE e.grid_id IN ({_placeholders(grid_ids)}) AND e.id = (
                    SELECT max(x.id) FROM effective_label_events x
                    WHERE x.grid_id = e.grid_id AND x.annotator = e.annotator
                      AND (x.action = 'adjudicate') = (e.action = 'adjudicate'))
                ORDER BY e.grid_id, e.id""",
                list(grid_ids),
            )
        ]

    def active_proposals_for(self, grid_ids: Sequence[int]) -> list[Proposal]:
        """Each grid's proposal under the threshold set active for its model, in grid order."""
        if not grid_ids:
            return []
        return [
            _proposal(row)
            for row in self.db.execute(
                f"""SELECT {", ".join(f"p.{c.strip()}" for c in _PROPOSAL_COLUMNS.split(","))}
                FROM grids g JOIN proposals p ON p.grid_id = g.id AND p.threshold_set_id = (
                    SELECT t.id FROM threshold_sets t
                    WHERE t.active = 1 AND (t.model = g.model OR t.model IS NULL)
                    ORDER BY t.model IS NULL LIMIT 1)
                WHERE g.id IN ({_placeholders(grid_ids)}) ORDER BY g.id""",
                list(grid_ids),
            )
        ]

    def scores_for(self, grid_ids: Sequence[int]) -> list[Score]:
        """Every stored score of these grids, by grid, then metric, then age."""
        if not grid_ids:
            return []
        return [
            _score(row)
            for row in self.db.execute(
                f"""SELECT grid_id, metric, params, version, "values", heatmap, available, note
                FROM scores WHERE grid_id IN ({_placeholders(grid_ids)})
                ORDER BY grid_id, metric, created_at, id""",
                list(grid_ids),
            )
        ]

    def prompt_metadata_types(self) -> dict[str, set[str]]:
        """Each field of the prompts that have grids -> the JSON types it holds (json_each's)."""
        types: dict[str, set[str]] = {}
        for key, kind in self.db.execute(
            """SELECT DISTINCT j.key, j.type FROM prompts p, json_each(p.metadata) j
            WHERE p.id IN (SELECT prompt_id FROM grids)"""
        ):
            types.setdefault(key, set()).add(kind)
        return types

    def score_field_types(self) -> dict[str, dict[str, set[str]]]:
        """Metric -> value key -> the JSON types it holds over every available score."""
        types: dict[str, dict[str, set[str]]] = {}
        for metric, key, kind in self.db.execute(
            """SELECT DISTINCT s.metric, j.key, j.type FROM scores s, json_each(s."values") j
            WHERE s.available = 1"""
        ):
            types.setdefault(metric, {}).setdefault(key, set()).add(kind)
        return types

    # ---- bulk reads (calibration) ------------------------------------------------------

    def score_value_types(self) -> dict[str, dict[str, str]]:
        """Metric -> key -> JSON type ('real', 'integer', 'array', ...) of its latest available score."""
        types: dict[str, dict[str, str]] = {}
        for metric, key, kind in self.db.execute(
            """SELECT s.metric, j.key, j.type FROM scores s, json_each(s."values") j
            WHERE s.id IN (SELECT max(id) FROM scores WHERE available = 1 GROUP BY metric)"""
        ):
            types.setdefault(metric, {})[key] = kind
        return types

    def score_numbers(
        self, metric: str, keys: Sequence[str], length_keys: Sequence[str] = ()
    ) -> list[tuple[Any, ...]]:
        """Rows of (grid id, the values at `keys`, then the lengths of the lists at `length_keys`).

        One row per available score of `metric`, oldest first. SQLite's JSON functions read
        only the keys asked for, so calibration reads 100,000 grids without parsing JSON
        in Python; ask only for keys the metric has (see `score_value_types`).
        """
        for key in (*keys, *length_keys):
            if not key.isidentifier():
                raise ValueError(f"not a score value key: {key!r}")
        columns = [f"""json_extract("values", '$.{key}')""" for key in keys]
        columns += [f"""json_array_length("values", '$.{key}')""" for key in length_keys]
        return self.db.execute(
            f"""SELECT grid_id, {", ".join(columns) or "NULL"} FROM scores
            WHERE metric = ? AND available = 1 ORDER BY id""",
            (metric,),
        ).fetchall()

    def current_vote_patterns(self) -> tuple[list[tuple[LabelEvent, ...]], dict[int, int]]:
        """Every labelled grid's current votes and adjudications, grouped by what they say.

        The events per grid are those of `label_events_for` (each annotator's latest vote
        and latest adjudication that count), in event order. A pattern is that sequence
        with each event reduced to action, state, category, features and Webster type:
        everything core.agreement reads, so grids with one pattern share one agreed label.
        Returns the patterns (as the events of the first grid that showed each) and each
        grid's pattern index. One pass over the events and one LabelEvent per pattern: a
        few dozen patterns for 100,000 grids.
        """
        patterns: dict[tuple[Any, ...], int] = {}
        examples: list[tuple[LabelEvent, ...]] = []
        grid_patterns: dict[int, int] = {}
        rows = self.db.execute(
            f"""SELECT {_EVENT_COLUMNS} FROM label_events e WHERE e.action != 'undo'
            AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes = e.id)
            ORDER BY e.grid_id, e.id"""
        ).fetchall()
        start = 0
        while start < len(rows):
            grid_id = rows[start][1]
            end = start + 1
            while end < len(rows) and rows[end][1] == grid_id:
                end += 1
            if end - start == 1:
                current: Sequence[Sequence[Any]] = rows[start:end]
            else:  # each annotator's latest vote and latest adjudication, in event order
                latest = {(row[2], row[3] == "adjudicate"): row for row in rows[start:end]}
                current = sorted(latest.values(), key=lambda row: row[0])
            key = tuple((row[3], row[4], row[5], row[6], row[8]) for row in current)
            index = patterns.get(key)
            if index is None:
                index = patterns[key] = len(examples)
                examples.append(tuple(_label_event(row) for row in current))
            grid_patterns[grid_id] = index
            start = end
        return examples, grid_patterns

    def grid_models(self) -> dict[int, str]:
        """Each grid's generator model, by grid id."""
        return {row[0]: row[1] for row in self.db.execute("SELECT id, model FROM grids")}

    def labelled_grid_ids(self) -> list[int]:
        """Grids with at least one label event that still counts, in id order."""
        return [
            row[0]
            for row in self.db.execute(
                "SELECT DISTINCT grid_id FROM effective_label_events ORDER BY grid_id"
            )
        ]


_THRESHOLD_COLUMNS = 'id, name, version, "values", model, notes, active, origin, created_at'
_PROPOSAL_COLUMNS = "grid_id, threshold_set_id, category, features, reasons, webster, score, margin"
_EVENT_COLUMNS = """id, grid_id, annotator, action, state, category, features, note, webster,
    undoes, proposal_shown, proposal_category, session, created_at, origin, external_id"""


# Orders that an index on proposals can serve: the key column and the index's ORDER BY.
_INDEXED_ORDERS = {
    "threshold": ("margin", "abs(p.margin)"),
    "score": ("score", "p.score DESC"),
}


def _open_to_annotator(grid_column: str) -> str:
    """SQL that holds while a grid is open to :annotator (see `next_open_grids`)."""
    return f"""coalesce((SELECT done FROM grid_progress WHERE grid_id = {grid_column}), 0) < :overlap
        AND NOT EXISTS (SELECT 1 FROM effective_label_events e
                   WHERE e.grid_id = {grid_column} AND e.annotator = :annotator)
        AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.grid_id = {grid_column}
                        AND l.annotator != :annotator AND l.expires_at > :now)"""


def _order_clause(order: str, random_seed: int) -> tuple[str, str]:
    """ORDER BY and JOIN for a queue order; every order ends on the grid id, so it is stable."""
    active_proposal = """LEFT JOIN proposals p ON p.grid_id = g.id AND p.threshold_set_id = (
        SELECT t.id FROM threshold_sets t WHERE t.active = 1 AND (t.model = g.model OR t.model IS NULL)
        ORDER BY t.model IS NULL LIMIT 1)"""
    if order == "threshold":
        return "p.margin IS NULL, abs(p.margin), g.id", active_proposal
    if order == "score":
        return "p.score IS NULL, p.score DESC, g.id", active_proposal
    if order == "prompt":
        return "(SELECT text FROM prompts WHERE id = g.prompt_id), g.id", ""
    # A fixed pseudo-random permutation: a multiplicative hash of the id, salted by the seed.
    salt = int(random_seed) % 2147483647
    return f"((g.id + {salt}) * 2654435761) % 4294967291, g.id", ""


def _placeholders(values: Sequence[Any]) -> str:
    """`?, ?, ...` for an IN list; callers keep batches under SQLite's variable limit."""
    return ", ".join("?" * len(values))


def _score(row: Sequence[Any]) -> Score:
    return Score(
        grid_id=row[0],
        metric=row[1],
        params=json.loads(row[2]),
        version=row[3],
        values=json.loads(row[4]),
        heatmap=None if row[5] is None else json.loads(row[5]),
        available=bool(row[6]),
        note=row[7],
    )


def _threshold_set(row: Sequence[Any]) -> ThresholdSet:
    return ThresholdSet(
        id=row[0],
        name=row[1],
        version=row[2],
        values=json.loads(row[3]),
        model=row[4],
        notes=row[5],
        active=bool(row[6]),
        origin=row[7],
        created_at=row[8],
    )


def _proposal(row: Sequence[Any]) -> Proposal:
    return Proposal(
        grid_id=row[0],
        threshold_set_id=row[1],
        category=Category(row[2]),
        features=tuple(Feature.from_dict(f) for f in json.loads(row[3])),
        reasons=tuple(Reason.from_dict(r) for r in json.loads(row[4])),
        webster=Webster(row[5]) if row[5] else None,
        score=row[6],
        margin=row[7],
    )


def _label_event(row: Sequence[Any]) -> LabelEvent:
    return LabelEvent(
        id=row[0],
        grid_id=row[1],
        annotator=row[2],
        action=row[3],
        state=LabelState(row[4]) if row[4] else None,
        category=Category(row[5]) if row[5] else None,
        features=tuple(Feature.from_dict(f) for f in json.loads(row[6])),
        note=row[7],
        webster=Webster(row[8]) if row[8] else None,
        undoes=row[9],
        proposal_shown=bool(row[10]),
        proposal_category=Category(row[11]) if row[11] else None,
        session=row[12],
        created_at=row[13],
        origin=row[14],
        external_id=row[15],
    )
