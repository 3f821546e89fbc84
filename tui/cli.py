"""The `memgrid` command line: one Typer app; command groups live in tui/commands/."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from memgrid.core.errors import MemgridError
from memgrid.core.extras import missing_extra_error
from memgrid.tui.commands import (
    annotate,
    calibration,
    doctor,
    export,
    generation,
    labels,
    project,
    proposing,
    references,
    report,
    scoring,
    thresholds,
)
from memgrid.tui.errors import (
    ClickException,
    NoArgsIsHelpError,
    describe_usage_error,
    report_error,
)
from memgrid.tui.services.doctor import memgrid_version

# What a shell reports for a program ended by SIGPIPE (`memgrid show 1 | head -1`).
BROKEN_PIPE_EXIT = 128 + 13


class _Settings:
    debug = False


def quiet_broken_pipe() -> typer.Exit:
    """The reader went away (`| head`): stop without a word, as other Unix tools do."""
    # Later writes (the interpreter's last flush) go nowhere instead of raising again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return typer.Exit(BROKEN_PIPE_EXIT)


class MemgridGroup(TyperGroup):
    """Turns expected failures into one line on stderr (memgrid.tui.errors) and a non-zero
    exit code; tracebacks only with --debug."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: typer.Context | None = None,
        **extra: Any,
    ) -> typer.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except NoArgsIsHelpError:
            raise  # `memgrid` alone prints the help
        except ClickException as error:
            report_error(describe_usage_error(error))
            raise typer.Exit(error.exit_code) from None

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except ClickException as error:
            report_error(describe_usage_error(error))
            raise typer.Exit(error.exit_code) from None
        except MemgridError as error:
            raise _reported(error, str(error)) from None
        except ModuleNotFoundError as error:
            # A lazy import of an optional extra's package that no require_extra caught first.
            command = " ".join(filter(None, ("memgrid", ctx.invoked_subcommand)))
            missing = missing_extra_error(error, command)
            if missing is None:
                raise
            raise _reported(error, str(missing)) from None
        except BrokenPipeError:
            raise quiet_broken_pipe() from None
        except OSError as error:
            where = f"{error.filename}: " if error.filename else ""
            raise _reported(error, f"{where}{error.strerror or error}") from None


def _reported(error: Exception, message: str) -> typer.Exit:
    """Print the one line (or re-raise for --debug) and hand back the exit to raise."""
    if _Settings.debug:
        raise error
    report_error(message)
    return typer.Exit(1)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"memgrid {memgrid_version()}")
        raise typer.Exit()


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
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_print_version,
        help="Print memgrid's version and exit.",
    ),
) -> None:
    """Find, label and measure memorization in text-to-image models."""
    _Settings.debug = debug


# Command groups in the order a project goes through them; --help lists them so.
WORKFLOW_ORDER = (
    project,
    generation,
    scoring,
    references,
    proposing,
    annotate,
    labels,
    calibration,
    thresholds,
    report,
    export,
    doctor,
)

for command_group in WORKFLOW_ORDER:
    command_group.register(app)


def main() -> None:
    try:
        app(prog_name="memgrid")
    except KeyboardInterrupt:  # before a command runs (Typer turns later ones into exit 130)
        report_error("memgrid: interrupted")
        sys.exit(130)
