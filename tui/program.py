"""The `memgrid` program's entry point, free of imports until it has set up what must come
first. Loading the CLI takes most of a second (Typer, the store, numpy, Pillow): a Ctrl-C in
that second gets the one line an interrupted command gets, not a traceback from inside some
import."""

from __future__ import annotations

import importlib.util
import sys

# error_line("memgrid: interrupted") of tui/errors.py, written here without importing it.
INTERRUPTED_LINE = "memgrid: error: memgrid: interrupted"
INTERRUPTED_EXIT = 130  # a shell's code for a program ended by SIGINT


def main() -> None:
    workers_skip_main_script()
    try:
        from memgrid.tui.cli import main as run_cli
    except KeyboardInterrupt:
        print(INTERRUPTED_LINE, file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT)
    run_cli()


def workers_skip_main_script() -> None:
    """Start worker processes (scoring's pool) without running this program's script again.

    A forkserver or spawn worker first re-runs the parent's `__main__` from its file, so that
    functions defined there can be unpickled, unless the main module was run by name as a
    package's `__main__` (`python -m memgrid.tui`). The `memgrid` console script defines
    nothing a worker uses, yet running it imports the whole CLI: 0.9 s and the CLI's memory
    in every worker of every run, a third of `memgrid score -j 2` on 283 small images. Naming
    the script as the module it stands for makes the console script start its workers as
    `python -m memgrid.tui` does. A main module that already has a name keeps it.
    """
    main_module = sys.modules["__main__"]
    if getattr(main_module, "__spec__", None) is None:
        main_module.__spec__ = importlib.util.find_spec("memgrid.tui.__main__")
