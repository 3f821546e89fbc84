"""One exception hierarchy for memgrid; front ends render these, core never prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memgrid.core.display_text import printable


def one_line(text: str) -> str:
    """A message for one terminal line: the display sanitiser (a newline or an ESC in a file
    name is shown escaped, never obeyed)."""
    return printable(text)


class MemgridError(Exception):
    """An expected failure with a one-line message a person can act on."""

    title = "memgrid error"

    def __init__(self, message: str) -> None:
        message = one_line(message)
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(MemgridError):
    """A user-supplied file or record is unusable; names the file, where, and the problem."""

    title = "Bad input"

    def __init__(self, source: str | Path, problem: str, location: str | None = None) -> None:
        self.source = str(source)
        self.problem = problem
        self.location = location
        where = f"{self.source}:{location}" if location else self.source
        super().__init__(f"{where}: {problem}")

    def __reduce__(self) -> tuple[type[InputError], tuple[str, str, str | None]]:
        # Rebuilt from its parts when it crosses from a scoring worker process.
        return (type(self), (self.source, self.problem, self.location))


class ProjectError(MemgridError):
    """The project folder or its database cannot be used as asked."""

    title = "Project error"


class SchemaError(ProjectError):
    """The database's schema is newer than this memgrid understands."""

    title = "Newer database schema"


class DatabaseError(MemgridError):
    """The database refused a read or write (disk full, locked too long, corrupt)."""

    title = "Database error"


class UnavailableError(MemgridError):
    """A signal or model cannot run here (no weights, no optional package)."""

    title = "Unavailable"


class NotFoundError(MemgridError):
    """A grid, prompt or threshold set named by the user does not exist."""

    title = "Not found"

    def __init__(self, record: str, problem: str = "not found") -> None:
        self.record = record
        super().__init__(f"{record}: {problem}")


class VoteRefused(MemgridError):
    """A label, flag or undo would give a grid more votes than the overlap asks for.

    Raised by the store's enforced write (db/overlap.py); nothing was stored.
    """

    title = "Vote refused"


class NotAllowedError(MemgridError):
    """The project's rules do not let this OS user act as asked (see core.annotators)."""

    title = "Not allowed"

    def __init__(self, subject: str, problem: str) -> None:
        self.subject = subject
        super().__init__(f"{subject}: {problem}")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a long run, carrying the run's report of what it had stored by then, so
    that the command can say what was kept (a KeyboardInterrupt still, for anyone else)."""

    def __init__(self, report: Any) -> None:
        super().__init__()
        self.report = report
