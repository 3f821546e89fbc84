"""A look at a project's database without changing it, for `memgrid doctor`.

`Store.open` migrates an older schema and sets the journal mode; a health check must do
neither, so it opens its own read-only connection and only reads pragmas.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from memgrid.core.errors import ProjectError
from memgrid.db.migrations import SCHEMA_VERSION
from memgrid.db.store import NETWORK_FILESYSTEMS, filesystem_type

# integrity_check stops after this many problems; the first few say enough.
INTEGRITY_PROBLEMS_SHOWN = 5


@dataclass(frozen=True)
class DatabaseHealth:
    """What the database file says about itself."""

    schema_version: int
    current_schema_version: int  # what this memgrid writes
    journal_mode: str
    expected_journal_mode: str  # wal, or delete on a network filesystem
    filesystem: str | None
    integrity: tuple[str, ...]  # ("ok",) when sound, else SQLite's findings

    @property
    def sound(self) -> bool:
        return self.integrity == ("ok",)


def check_database(path: Path) -> DatabaseHealth:
    """Schema version, journal mode and `PRAGMA integrity_check` of memgrid.db at `path`.

    A file SQLite cannot read at all is a ProjectError naming it.
    """
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
        try:
            version = int(connection.execute("PRAGMA user_version").fetchone()[0])
            journal = str(connection.execute("PRAGMA journal_mode").fetchone()[0]).lower()
            integrity = tuple(
                str(row[0])
                for row in connection.execute(f"PRAGMA integrity_check({INTEGRITY_PROBLEMS_SHOWN})")
            )
        finally:
            connection.close()
    except sqlite3.Error as error:
        raise ProjectError(f"{path}: not a usable SQLite database ({error})") from None
    fs_type = filesystem_type(path.parent)
    return DatabaseHealth(
        schema_version=version,
        current_schema_version=SCHEMA_VERSION,
        journal_mode=journal,
        expected_journal_mode="delete" if fs_type in NETWORK_FILESYSTEMS else "wal",
        filesystem=fs_type,
        integrity=integrity,
    )
