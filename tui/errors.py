"""How every memgrid command reports a failure: one line, `memgrid: error: WHERE: PROBLEM`.

WHERE is the file, record, option or command at fault (`prompts.jsonl:line 2`, `grid 99`,
`--metric`, `memgrid status`), PROBLEM says what is wrong and, where there is one, the fix.
tests/cli/test_error_style.py runs the README's error cases and every kind below against
ERROR_LINE.
"""

from __future__ import annotations

import re
from typing import NoReturn

import typer

from memgrid.core.errors import one_line

try:  # typer 0.25 and later carry their own copy of click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # older typer runs on click itself
    from click.exceptions import ClickException, NoArgsIsHelpError, UsageError

__all__ = [
    "ERROR_LINE",
    "ERROR_PREFIX",
    "ClickException",
    "NoArgsIsHelpError",
    "UsageError",
    "describe_usage_error",
    "error_line",
    "exit_interrupted",
    "grids_kept",
    "report_error",
]

ERROR_PREFIX = "memgrid: error: "
# The shape of every error line: the prefix; WHERE, up to the first colon-space (a file may
# carry its line: `prompts.jsonl:line 2`); the problem.
ERROR_LINE = re.compile(r"^memgrid: error: (?P<where>\S(?:(?!: ).)*?): (?P<problem>\S.*)$")


def error_line(message: str) -> str:
    return ERROR_PREFIX + one_line(message)


def report_error(message: str) -> None:
    typer.echo(error_line(message), err=True)


def exit_interrupted(where: str, kept: str) -> NoReturn:
    """Ctrl-C: one line saying what the run kept, then exit 130 (a shell's code for SIGINT)."""
    report_error(f"{where}: interrupted: {kept}")
    raise typer.Exit(130)


def grids_kept(
    done: int,
    total: int,
    verb: str,
    aside: str = "",
    then: str = "running it again goes on from there",
) -> str:
    """What an interrupted resumable run kept (each grid is stored as it is done), and what
    `then` comes of the rest."""
    if done or aside:
        kept = f"{done} of {total} grids were {verb} and are stored{aside}"
    else:
        kept = f"no grid was {verb} yet"
    return f"{kept}; {then}"


def describe_usage_error(error: ClickException) -> str:
    """Click's complaint about the command line, as WHERE (the command): PROBLEM, see --help."""
    context = getattr(error, "ctx", None)
    command = context.command_path if context is not None else "memgrid"
    problem = plain_validation_words(error.format_message().strip().rstrip("."))
    problem = problem[:1].lower() + problem[1:]
    return f"{command}: {problem}; see `{command} --help`"


# Typer checks values with pydantic, whose words name its own machinery ("Value error, ",
# "Input should be a valid integer, unable to parse string as an integer").
_VALIDATOR_PREFIX = re.compile(r"\bValue error, ")
_VALIDATOR_TYPE = re.compile(
    r"Input should be a valid (\w+)(?:, unable to parse string as an? \w+)?"
)
_TYPE_WORDS = {"integer": "a whole number", "number": "a number", "boolean": "true or false"}


def plain_validation_words(problem: str) -> str:
    problem = re.sub(r"\s*\n\s*", " ", problem)  # Typer lists choices a line each
    problem = _VALIDATOR_PREFIX.sub("", problem)
    return _VALIDATOR_TYPE.sub(
        lambda found: f"not {_TYPE_WORDS.get(found[1], 'a valid ' + found[1])}", problem
    )
