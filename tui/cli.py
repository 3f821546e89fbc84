"""The `memgrid` command line: one Typer app; command groups live in tui/commands/."""

from __future__ import annotations

import os
import sqlite3
import sys
from typing import Any

import click
import typer
from memgrid.core.errors import MemgridError
from memgrid.tui.commands import (
    annotate,
    calibration,
    export,
    generation,
    project,
    proposing,
    scoring,
)
from memgrid.tui.display import say
from typer.core import TyperGroup

# What a shell reports for a program ended by SIGPIPE (`memgrid show 1 | head -1`).
BROKEN_PIPE_EXIT = 128 + 13


class _Settings:
    debug = False


def report_error(message: str) -> None:
    say(f"memgrid: error: {message}", err=True)


def quiet_broken_pipe() -> typer.Exit:
    """The reader went away (`| head`): stop without a word, as other Unix tools do."""
    # Later writes (the interpreter's last flush) go nowhere instead of raising again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return typer.Exit(BROKEN_PIPE_EXIT)


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


class MemgridGroup(TyperGroup):
    """Turns expected failures into one line on stderr and exit code 1 (tracebacks with --debug)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MemgridError as error:
            if _Settings.debug:
                raise
            report_error(str(error))
            raise typer.Exit(1) from None
        except sqlite3.Error as error:
            if _Settings.debug:
                raise
            report_error(describe_database_error(error))
            raise typer.Exit(1) from None
        except BrokenPipeError:
            raise quiet_broken_pipe() from None
        except OSError as error:
            if _Settings.debug:
                raise
            where = f"{error.filename}: " if error.filename else ""
            report_error(f"{where}{error.strerror or error}")
            raise typer.Exit(1) from None


app = typer.Typer(
    name="memgrid",
    cls=MemgridGroup,
    help="Find, label and measure memorization in text-to-image models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _main_options(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
) -> None:
    """Find, label and measure memorization in text-to-image models."""
    _Settings.debug = debug


# Command groups in the order a project goes through them; --help lists them so.
WORKFLOW_ORDER = (project, generation, scoring, proposing, annotate, calibration, export)

for command_group in WORKFLOW_ORDER:
    command_group.register(app)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        report_error("interrupted")
        sys.exit(130)
