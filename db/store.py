"""The typed store: every read and write of memgrid.db goes through `Store` and its nouns."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
from sqlite_utils import Database

DATABASE_NAME = "memgrid.db"
BUSY_TIMEOUT_SECONDS = 30.0
# WAL needs shared memory that network filesystems do not provide reliably.
NETWORK_FILESYSTEMS = {"nfs", "nfs4", "cifs", "smbfs", "smb3", "fuse.sshfs", "9p", "afs", "ceph"}


def describe_database_error(error: sqlite3.Error) -> str:
    """SQLite's words, plus what they mean for the person's data."""
    text = str(error)
    if "full" in text:
        return f"database: {text}; the last write was rolled back, everything saved before it is intact"
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
    `proposals`, `entities` (the lexicon), `labels`, `runs` (calibration runs) and
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

    def __init__(self, db: Database, path: Path | None = None) -> None:
        self.db = db
        self.path = path
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
        self.references = References(self)

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
        except (sqlite3.DatabaseError, DatabaseError) as error:
            # The store's own reads arrive as DatabaseError, raw SQLite's from connect().
            cause = error.__cause__ if isinstance(error, DatabaseError) else error
            raise ProjectError(f"{path}: not a usable SQLite database ({cause})") from None
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
    def atomic(self) -> Iterator[None]:
        """One transaction: all of the writes inside, or none (nested blocks are savepoints).

        Other threads wait for it to end: another thread's statement would otherwise run
        inside this transaction, and be committed or rolled back with it.
        """
        with self._guarded(), self.db.atomic():
            yield

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
