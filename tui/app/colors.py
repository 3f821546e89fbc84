"""The app's Console at the colour depth settled by services/terminal.py (`colour_depth`).

Textual builds its Console from a copy of the environment in App.__init__ and lets Rich
read the depth from COLORTERM and TERM there (unless $TEXTUAL_COLOR_SYSTEM, which
`colour_depth` honours too, fixed it at import). So the app is built with those two
variables saying the chosen depth, and they are restored straight after: nothing else
(subprocesses) sees them, and it works whenever Textual was imported.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager

# The environment Rich reads to settle on each colour system.
RICH_ENVIRONMENT: dict[str, dict[str, str | None]] = {
    "truecolor": {"COLORTERM": "truecolor"},
    "256": {"COLORTERM": None, "TERM": "xterm-256color"},
    "standard": {"COLORTERM": None, "TERM": "xterm-16color"},
}


@contextmanager
def rich_color_environment(
    system: str | None, environ: MutableMapping[str, str] = os.environ
) -> Iterator[None]:
    """While the app is built, make Rich settle on `system` (None: leave it to Rich)."""
    wanted = RICH_ENVIRONMENT.get(system or "", {})
    saved = {name: environ.get(name) for name in wanted}
    try:
        _set(environ, wanted)
        yield
    finally:
        _set(environ, saved)


def _set(environ: MutableMapping[str, str], values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
