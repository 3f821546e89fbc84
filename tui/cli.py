"""The `memgrid` command line: one Typer app; command groups live in tui/commands/.

A command's module (and with it the services it uses) is imported when that command runs,
not when the CLI loads: loading every command's services took 0.9 s, the time of one
command's module alone about 0.5.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import traceback
from difflib import get_close_matches
from pathlib import Path
from typing import Any, NoReturn, get_args

import typer
from typer.core import TyperGroup

from memgrid.core.errors import MemgridError
from memgrid.core.extras import missing_extra_error
from memgrid.tui.errors import (
    ClickException,
    NoArgsIsHelpError,
    UsageError,
    describe_usage_error,
    exit_interrupted,
    report_error,
)
from memgrid.tui.program import INTERRUPTED_EXIT

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
    exit code; tracebacks only with --debug. Commands come from their modules on first use
    (COMMAND_MODULES)."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return [*COMMAND_MODULES, *super().list_commands(ctx)]

    def get_command(self, ctx: typer.Context, name: str) -> Any:
        module = COMMAND_MODULES.get(name)
        if module is None:
            return super().get_command(ctx, name)
        try:
            return module_commands(module)[name]
        except KeyboardInterrupt:  # Typer would end the run without a word
            interrupted_before_the_command()

    def _command_name(self, ctx: typer.Context, words: list[str]) -> str:
        """`memgrid labels export`, as typed: the command, and a group's subcommand."""
        name = ctx.invoked_subcommand
        if name is None:
            return "memgrid"
        command = self.get_command(ctx, name)
        subcommands = getattr(command, "commands", {})
        return " ".join(
            ["memgrid", name, *words[:1]]
            if words[:1] and words[0] in subcommands
            else ["memgrid", name]
        )

    def resolve_command(self, ctx: typer.Context, args: list[str]) -> Any:
        """Typer's, with its "did you mean" drawn from every command, loaded or not."""
        try:
            return super().resolve_command(ctx, args)
        except UsageError as error:
            close = get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if close and "Did you mean" not in error.message:
                suggestions = ", ".join(repr(name) for name in close)
                error.message = f"{error.message.rstrip('.')}. Did you mean {suggestions}?"
            raise

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
        words = list(ctx.args)  # after the command's name; Click empties ctx.args as it runs
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
            missing = missing_extra_error(error, self._command_name(ctx, words))
            if missing is None:
                raise
            raise _reported(error, str(missing)) from None
        except BrokenPipeError:
            raise quiet_broken_pipe() from None
        except OverflowError as error:  # a number past what SQLite or a float holds
            raise _reported(error, f"a number given is too large ({error})") from None
        except KeyboardInterrupt:
            # The long commands say what they kept (exit_interrupted); the rest get this line
            # rather than Typer's silent exit: every store write is one transaction, and
            # every file is written to a temporary name first, so nothing is half-written.
            if _Settings.debug:  # where it was (Click would swallow the exception itself)
                traceback.print_exc()
            exit_interrupted(
                self._command_name(ctx, words),
                "nothing is half-written; what was stored before stays",
            )
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
        from memgrid.tui.services.doctor import memgrid_version

        typer.echo(f"memgrid {memgrid_version()}")
        raise typer.Exit()


# Help formatting shared by the app and the command modules' commands.
COMMAND_SETTINGS: dict[str, Any] = {"rich_markup_mode": None}

app = typer.Typer(
    name="memgrid",
    cls=MemgridGroup,
    help="Find, label and measure memorization in text-to-image models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    **COMMAND_SETTINGS,
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


# Each command and the module in tui/commands/ that registers it, in the order a project goes
# through them; --help lists them so. A test checks this against what the modules register.
COMMAND_MODULES: dict[str, str] = {
    "init": "project",
    "prompts": "project",
    "import": "project",
    "status": "project",
    "demo": "project",
    "generate": "generation",
    "merge": "generation",
    "triage": "generation",
    "score": "scoring",
    "show": "scoring",
    "refs": "references",
    "match": "references",
    "propose": "proposing",
    "entities": "proposing",
    "annotate": "annotate",
    "label": "labels",
    "labels": "labels",
    "calibrate": "calibration",
    "agreement": "calibration",
    "thresholds": "thresholds",
    "report": "report",
    "export": "export",
    "doctor": "doctor",
}


@functools.cache
def module_commands(module_name: str) -> dict[str, Any]:
    """The click commands a module of tui/commands/ registers, by name (built once)."""
    module = importlib.import_module(f"memgrid.tui.commands.{module_name}")
    commands = typer.Typer(**COMMAND_SETTINGS)
    commands.callback()(_no_options)  # a group even for one command: commands by name
    module.register(commands)
    loaded = dict(typer.main.get_command(commands).commands)  # type: ignore[attr-defined]
    for command in loaded.values():
        _refuse_empty_paths(command)
    return loaded


def _refuse_empty_paths(command: Any) -> None:
    """Every path parameter of `command` and its subcommands refuses "": Typer reads it as
    ".", so a quoting slip (`init "$DIR"` with DIR unset) would act on the current folder."""
    for param in command.params:
        annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
        if Path in (annotation, *get_args(annotation)):
            param.process_value = functools.partial(_non_empty_path, param.process_value, param)
    for subcommand in getattr(command, "commands", {}).values():
        _refuse_empty_paths(subcommand)


def _non_empty_path(process_value: Any, param: Any, ctx: Any, value: Any) -> Any:
    values = value if isinstance(value, list | tuple) else [value]
    if any(isinstance(one, str) and not one.strip() for one in values):
        raise typer.BadParameter("an empty path names no file or folder", ctx=ctx, param=param)
    return process_value(ctx, value)


def _no_options() -> None:
    """A command module's own group takes no options; the app's callback has them."""


def main() -> None:
    try:
        app(prog_name="memgrid")
    except KeyboardInterrupt:  # before a command runs (Typer turns later ones into exit 130)
        interrupted_before_the_command()


def interrupted_before_the_command() -> NoReturn:
    """Ctrl-C before any command ran (while the CLI or a command's module loads): one line."""
    report_error("memgrid: interrupted")
    sys.exit(INTERRUPTED_EXIT)
