"""The typed store: every read and write of memgrid.db goes through `Store` and its nouns."""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from memgrid.core.annotators import AnnotatorTable, OsIdentity
from memgrid.core.atomic_files import process_umask
from memgrid.core.errors import DatabaseError, ProjectError, SchemaError
from memgrid.db.entities import Entities
from memgrid.db.grids import Grids
from memgrid.db.images import Images
from memgrid.db.labels import Labels
from memgrid.db.migrations import SCHEMA_VERSION, migrations
from memgrid.db.prompts import Prompts
from memgrid.db.proposals import Proposals
from memgrid.db.references import References
from memgrid.db.rows import now_text
from memgrid.db.runs import CalibrationRuns
from memgrid.db.scores import Scores
from memgrid.db.thresholds import ThresholdSets
from memgrid.db.triage import TriageResults

DATABASE_NAME = "memgrid.db"
# Every memgrid database has it from its first migration on; a database without it (and
# with tables) belongs to something else.
MEMGRID_MARKER_TABLE = "project_meta"
BUSY_TIMEOUT_SECONDS = 30.0
# WAL needs shared memory that network filesystems do not provide reliably.
NETWORK_FILESYSTEMS = {"nfs", "nfs4", "cifs", "smbfs", "smb3", "fuse.sshfs", "9p", "afs", "ceph"}


def _connect(path: Path, read_only: bool) -> sqlite3.Connection:
    """A connection to `path`: read-write, or read-only when its folder is not writable.

    Read-only: with a -wal file present, SQLite reads it through the -shm (`mode=ro`); with
    none, nobody can be writing (a writer needs the folder to make one), so the file is
    read as `immutable`, which needs no -shm either.
    """
    if read_only:
        wal = path.with_name(path.name + "-wal").exists()
        uri = f"{path.resolve().as_uri()}?{'mode=ro' if wal else 'immutable=1'}"
        connection = sqlite3.connect(
            uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False
        )
        connection.execute("PRAGMA query_only = ON")
        return connection
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False)
    connection.execute("PRAGMA foreign_keys = ON")
    return connection


def _give_umask_mode(path: Path) -> None:
    """A new database gets the mode any new file would (0666 less the umask), as do its
    -wal and -shm: SQLite makes them 0644 whatever the umask, which shuts out a group the
    umask (002) lets in. SQLite gives later -wal and -shm files the database's mode."""
    mode = 0o666 & ~process_umask()
    for suffix in ("", "-wal", "-shm"):
        sibling = path.with_name(path.name + suffix)
        if sibling.exists():
            os.chmod(sibling, mode)


def describe_database_error(error: sqlite3.Error) -> str:
    """SQLite's words, plus what they mean for the person's data."""
    text = str(error)
    if "full" in text:
        return f"database: {text}; the last write was rolled back, everything saved before it is intact"
    if "readonly" in text:
        return (
            f"database: {text}; you may read this project but not change it "
            "(`memgrid doctor` shows why)"
        )
    if "locked" in text or "busy" in text:
        return f"database: {text}; another memgrid process held it too long, try again"
    if "decode" in text:
        return f"database: {text}; the database is damaged or was written by another program"
    return f"database: {text}"


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
    """One memgrid database, shaped after sqlite-utils: nouns hang off it, verbs act on them.

    The nouns: `prompts`, `grids`, `images` (and their embeddings), `scores`, `thresholds`,
    `proposals`, `entities` (the lexicon), `labels`, `runs` (calibration runs) and `triage`
    (the triage value of every prompt `generate --triage-steps` scored),
    `references` (reference images); the
    annotation queue is `memgrid.db.queue.AnnotationQueue`, one per annotator.

    Every read follows one grammar:

    - `get(key)`: one record by its key; NotFoundError when there is none.
    - `find(...)`: one record (or id) by what identifies it; None when there is none.
    - `all()`, `<what>_all()`: everything, unfiltered.
    - `where(...)`, `<what>_where(...)`: filtered by keyword arguments; a filter left at
      None does not filter. `<what>` names what comes back when it is not the noun's
      own records (`grids.ids_all()`, `labels.votes_where(annotator=...)`).
    - `count`: a property.

    Reads return records from core.records, never rows or dicts.

    The store owns its concurrency and its errors: the app's worker threads share one
    connection, so every statement, and every `atomic()` or `snapshot()` block whole, runs
    under one lock; SQLite's errors leave the store as DatabaseError, with what they mean
    for the person's data.
    """

    def __init__(
        self,
        db: Database,
        path: Path | None = None,
        *,
        identity: OsIdentity | None = None,
        annotators: AnnotatorTable | None = None,
    ) -> None:
        self.db = db
        self.path = path
        self.read_only = False
        self.identity = identity or OsIdentity.of_this_process()
        self.annotators = annotators
        self._lock = threading.RLock()
        self.prompts = Prompts(self)
        self.grids = Grids(self)
        self.images = Images(self)
        self.scores = Scores(self)
        self.thresholds = ThresholdSets(self)
        self.proposals = Proposals(self)
        self.entities = Entities(self)
        self.labels = Labels(self)
        self.runs = CalibrationRuns(self)
        self.triage = TriageResults(self)
        self.references = References(self)

    # ---- opening -------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        create: bool = False,
        identity: OsIdentity | None = None,
        annotators: AnnotatorTable | None = None,
    ) -> Store:
        """Open (and migrate) the memgrid database at `path`; refuse anything else.

        Refused with one line: a missing file (unless `create`), an empty one, a file SQLite
        cannot read, an SQLite database of something else, one of a newer schema. A
        database in a folder this process cannot write is opened read-only (nothing
        migrated, no journal set up): status, show and export work, writes are refused.
        `identity` (default: this process's account) is stored with every label event;
        `annotators`, the project's table, is enforced on every one.
        """
        exists = path.exists()
        if not exists and not create:
            raise ProjectError(f"{path}: no memgrid database here (run `memgrid init`)")
        if exists and path.is_file() and path.stat().st_size == 0:
            raise ProjectError(
                f"{path}: an empty file (0 bytes), not a memgrid database; if no project was "
                "lost, delete it and run `memgrid init`"
            )
        read_only = exists and not os.access(path.parent, os.W_OK)
        store = None
        try:
            connection = Database(_connect(path, read_only))
            store = cls(connection, path, identity=identity, annotators=annotators)
            store.read_only = read_only
            store._refuse_foreign(create)
            store._check_schema_version()
            if not read_only:
                store._choose_journal_mode()
            store._migrate()
            if not exists:
                _give_umask_mode(path)
        except (sqlite3.DatabaseError, DatabaseError) as error:
            # The store's own reads arrive as DatabaseError, raw SQLite's from connect().
            if store is not None:
                store.close()
            cause = error.__cause__ if isinstance(error, DatabaseError) else error
            raise ProjectError(f"{path}: not a usable SQLite database ({cause})") from None
        except ProjectError:
            if store is not None:
                store.close()
            raise
        return store

    @classmethod
    def memory(cls, identity: OsIdentity | None = None) -> Store:
        store = cls(Database(memory=True), identity=identity)
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

    def _refuse_foreign(self, create: bool) -> None:
        """Refuse an SQLite database that is not memgrid's, rather than add tables to it."""
        tables = [
            row[0]
            for row in self.rows(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        if MEMGRID_MARKER_TABLE in tables or (create and not tables):
            return
        if not tables:
            raise ProjectError(
                f"{self.path}: an SQLite database with no tables, not a memgrid project; "
                "run `memgrid init` to make one"
            )
        shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
        raise ProjectError(
            f"{self.path}: an SQLite database of something else (tables {shown}), not "
            "memgrid's; memgrid leaves it as it is"
        )

    def _migrate(self) -> None:
        if self.read_only:
            if migrations.pending(self.db):
                raise ProjectError(
                    f"{self.path}: read-only here, and its schema (version {self.schema_version}) "
                    f"needs migrating to version {SCHEMA_VERSION}: open it once as someone who "
                    "can write the project folder"
                )
            return
        if migrations.pending(self.db):
            migrations.apply(self.db)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        if not self.project_id:
            with self.db.atomic():
                for key, value in (("project_id", uuid.uuid4().hex), ("created_at", now_text())):
                    self.db.execute(
                        "INSERT OR IGNORE INTO project_meta (key, value) VALUES (?, ?)",
                        (key, value),
                    )

    # ---- statements: the nouns' one way in -------------------------------------------

    @contextmanager
    def _guarded(self) -> Iterator[None]:
        """Hold the store's lock; turn SQLite's errors into DatabaseError."""
        with self._lock:
            try:
                yield
            except sqlite3.Error as error:
                raise DatabaseError(describe_database_error(error)) from error

    def rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        """Every row of a query."""
        with self._guarded():
            return self.db.execute(sql, params).fetchall()

    def row(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any | None:
        """The first row of a query, or None."""
        with self._guarded():
            return self.db.execute(sql, params).fetchone()

    def write(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        """One statement, committed at once unless inside `atomic()`."""
        with self._guarded():
            return self.db.execute(sql, params)

    def write_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.atomic():
            self.db.conn.executemany(sql, rows)

    @contextmanager
    def atomic(self, *, immediate: bool = False) -> Iterator[None]:
        """One transaction: all of the writes inside, or none (nested blocks are savepoints).

        Other threads wait for it to end: another thread's statement would otherwise run
        inside this transaction, and be committed or rolled back with it. `immediate` takes
        the write lock at the start, so what the block reads cannot change before it writes,
        even from another process (the overlap check, db/overlap.py).
        """
        with self._guarded():
            if not immediate or self.db.conn.in_transaction:
                with self.db.atomic():
                    yield
                return
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.db.conn.rollback()
                raise
            self.db.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Hold one read transaction, so a read made of many queries sees one state of the data.

        Annotators in other processes may keep labelling while an export runs; WAL lets
        them write meanwhile.
        """
        with self._guarded():
            if self.db.conn.in_transaction:
                yield
                return
            self.db.execute("BEGIN")
            try:
                yield
            finally:
                self.db.execute("COMMIT")

    # ---- project facts -------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return int(self.row("PRAGMA user_version")[0])

    @property
    def journal_mode(self) -> str:
        return str(self.row("PRAGMA journal_mode")[0]).lower()

    @property
    def project_id(self) -> str | None:
        if not self.db.table("project_meta").exists():
            return None
        row = self.row("SELECT value FROM project_meta WHERE key = 'project_id'")
        return row[0] if row else None
