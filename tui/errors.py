"""How every memgrid command reports a failure: one line, `memgrid: error: WHERE: PROBLEM`.

WHERE is the file, record, option or command at fault (`prompts.csv:3`, `grid 99`,
`--metric`, `memgrid status`), PROBLEM says what is wrong and, where there is one, the fix.
tests/cli/test_error_style.py runs the README's error cases and every kind below against
ERROR_LINE.
"""

from __future__ import annotations

import re
import sqlite3

import click
import typer
from memgrid.core.errors import one_line

ERROR_PREFIX = "memgrid: error: "
# The shape of every error line: the prefix, where (no colon-space inside), the problem.
ERROR_LINE = re.compile(r"^memgrid: error: (?P<where>[^\s:][^:]*?): (?P<problem>\S.*)$")


def error_line(message: str) -> str:
    return ERROR_PREFIX + one_line(message)


def report_error(message: str) -> None:
    typer.echo(error_line(message), err=True)


def describe_database_error(error: sqlite3.Error) -> str:
    """SQLite's words, plus what they mean for the person's data."""
    text = str(error)
    if "full" in text:
        return f"database: {text}; the last write was rolled back, everything saved before it is intact"
    if "locked" in text or "busy" in text:
        return f"database: {text}; another memgrid process held it too long, try again"
    return f"database: {text}"


def describe_usage_error(error: click.ClickException) -> str:
    """Click's complaint about the command line, as WHERE (the command): PROBLEM, see --help."""
    context = getattr(error, "ctx", None)
    command = context.command_path if context is not None else "memgrid"
    problem = error.format_message().strip().rstrip(".")
    problem = problem[:1].lower() + problem[1:]
    return f"{command}: {problem}; see `{command} --help`"
