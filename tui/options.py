"""Options shared by CLI commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memgrid.core.annotators import name_problem

ProjectOption = Annotated[
    Path | None,
    typer.Option(
        "--project",
        "-p",
        help="Project folder (default: $MEMGRID_PROJECT, else the current folder).",
        show_default=False,
    ),
]


def checked_annotator(name: str | None) -> str | None:
    """The label file rule (a name an export carries back as typed), at the command line."""
    if name is not None and (problem := name_problem(name)):
        raise typer.BadParameter(f"{name!r} {problem}")
    return name


AnnotatorOption = Annotated[
    str | None,
    typer.Option(
        "--annotator",
        "-a",
        help="Who is labelling (default: the name memgrid.toml's [annotators] gives your OS "
        "user, else your login name).",
        callback=checked_annotator,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
BootstrapSeedOption = Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")]
BootstrapsOption = Annotated[
    int, typer.Option("--bootstraps", min=0, help="Bootstrap resamples for the 95% intervals.")
]
# Replacing a file the user named for output (a report, a label file).
OverwriteFileOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace the file if it exists.")
]
