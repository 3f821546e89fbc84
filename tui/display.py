"""The one way user text reaches the terminal, from the CLI and from the app.

Prompts, model and annotator names, notes, threshold-set names and file names are data from
scraped datasets and shared servers. Each goes through `memgrid.core.display_text.printable`
(control and bidi characters shown escaped, `\\x1b`) and is never read as Rich markup: the
CLI prints plain lines (`say`) or Rich `Text` built here (`user_text`), never markup strings,
and its consoles (`plain_console`) have markup and emoji codes off as a second guard.

Rich is imported inside the functions so `import memgrid.tui.cli` stays light.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

import typer

from memgrid.core.display_text import has_control_characters, printable

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

# Piped output's widest table (see plain_console): the report's widest, 130 columns, fits.
PIPED_WIDTH = 200


def shown(value: object) -> str:
    """A user's string (or a path) as the terminal may show it."""
    return printable(str(value))


def say(line: str, *, err: bool = False) -> None:
    """Print one CLI line; every character a terminal would obey is shown escaped.

    The line is escaped whole: memgrid's own words hold no control characters, so only the
    user's parts (a prompt, a path) change.
    """
    typer.echo(printable(line), err=err)


def user_text(value: object, style: str = "") -> Text:
    """A user's string as Rich Text: escaped, and not parsed as markup (Text never is)."""
    from rich.text import Text

    return Text(shown(value), style=style)


def user_text_with_styles(text: str, styles: Iterable[tuple[int, int, str]]) -> Text:
    """`text` escaped, with styles given at offsets into the raw text (highlighted entities)."""
    from rich.text import Text

    if not has_control_characters(text):
        styled = Text(text)
        for start, end, style in styles:
            styled.stylize(style, start, end)
        return styled
    pieces = [printable(character) for character in text]
    offsets = [0]
    for piece in pieces:
        offsets.append(offsets[-1] + len(piece))
    styled = Text("".join(pieces))
    last = len(text)
    for start, end, style in styles:
        styled.stylize(style, offsets[min(start, last)], offsets[min(end, last)])
    return styled


def plain_console(*, stderr: bool = False) -> Console:
    """A Rich console for CLI output that reads no markup and no emoji codes (`:x:`).

    Piped or redirected, Rich would lay tables out for 80 columns and drop the columns that
    do not fit (a saved report lost its last ones); there each table takes the width it
    needs, up to PIPED_WIDTH, unless $COLUMNS says otherwise."""
    from rich.console import Console

    console = Console(stderr=stderr, markup=False, emoji=False)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = PIPED_WIDTH
    return console


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """'1 grid', '2 grids': a count with its noun."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
