"""Reference commands: `memgrid refs add` (training images) and `memgrid match` (grids vs them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from memgrid.core.references.index import DEFAULT_NEIGHBOURS, DEFAULT_RADIUS
from memgrid.tui.display import say
from memgrid.tui.errors import report_error
from memgrid.tui.options import JsonOption, ProjectOption
from memgrid.tui.services.project import open_project
from memgrid.tui.services.references import add_references, match_grids


def register(app: typer.Typer) -> None:
    refs = typer.Typer(
        help="Reference images: the training images a grid may copy.", no_args_is_help=True
    )
    refs.command("add")(refs_add)
    app.add_typer(refs, name="refs")
    app.command("match")(match)


def refs_add(
    source: Annotated[
        Path,
        typer.Argument(
            help="A folder of images (img2dataset's files layout: .json/.txt sidecars), "
            "a .jsonl/.csv manifest (path, and key/url/caption), a webdataset .tar or a "
            ".parquet with image bytes (img2dataset's other layouts)."
        ),
    ],
    project: ProjectOption = None,
) -> None:
    """Add reference images, stored content-addressed; linked to prompts by key, url or caption."""
    with open_project(project) as opened:
        report = add_references(opened, source)
    for error in report.errors:
        report_error(str(error))
    say(
        f"{source}: {report.added} references added, {report.already_present} already present, "
        f"{len(report.errors)} failed; {report.pool} in the pool, "
        f"{report.linked_prompts} prompts linked to one"
    )
    if report.errors:
        raise typer.Exit(1)


def match(
    project: ProjectOption = None,
    grid: Annotated[
        list[int] | None, typer.Option("--grid", help="Only these grid ids (repeatable).")
    ] = None,
    radius: Annotated[
        int,
        typer.Option(
            "--radius", min=0, max=63, help="pHash bits within which a pool image is a candidate."
        ),
    ] = DEFAULT_RADIUS,
    neighbours: Annotated[
        int, typer.Option("--neighbours", min=1, help="Pool candidates per seed.")
    ] = DEFAULT_NEIGHBOURS,
    json_output: JsonOption = False,
) -> None:
    """Match each grid's seeds with the reference images: MV, RV, TV or none, per seed and grid.

    Run after `memgrid refs add` and before `memgrid propose`: the proposals read the match.
    """
    with open_project(project) as opened:
        report = match_grids(opened, grid, radius=radius, neighbours=neighbours)
    if json_output:
        typer.echo(json.dumps({"grids": report.grids, "pool": report.pool, **report.by_type}))
        return
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(report.by_type.items()))
    say(f"{report.grids} grids matched against {report.pool} references ({kinds or 'none'})")
