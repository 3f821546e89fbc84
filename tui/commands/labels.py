"""`memgrid labels import|export`: label files in and out of a project."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from memgrid.core.errors import one_line
from memgrid.tui.options import JsonOption, ProjectOption
from memgrid.tui.services.labels import export_labels, import_labels
from memgrid.tui.services.project import open_project


def register(app: typer.Typer) -> None:
    labels = typer.Typer(
        help="Label files in and out: labels made elsewhere, or this project's.",
        no_args_is_help=True,
    )
    labels.command("import")(labels_import)
    labels.command("export")(labels_export)
    app.add_typer(labels, name="labels")


def labels_import(
    file: Annotated[Path, typer.Argument(help="A .jsonl or .csv label file.")],
    project: ProjectOption = None,
    annotator: Annotated[
        str | None,
        typer.Option("--annotator", "-a", help="Annotator of the rows that name none."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Import labels made elsewhere (all rows or none); importing a file again adds nothing."""
    with open_project(project) as opened:
        report = import_labels(opened, file, default_annotator=annotator)
    if json_output:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    typer.echo(
        f"{one_line(str(file))}: {report.added} label events added on {report.grids} grids, "
        f"{report.already_imported} imported before, "
        f"{report.duplicates_in_file} repeated rows left out"
    )


def labels_export(
    file: Annotated[Path, typer.Argument(help="The .jsonl or .csv label file to write.")],
    project: ProjectOption = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the file if it exists.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Write every annotator's current label and every adjudication as a label file."""
    with open_project(project) as opened:
        rows = export_labels(opened, file, overwrite=overwrite)
    if json_output:
        typer.echo(json.dumps({"file": str(file), "rows": rows}))
        return
    typer.echo(f"{rows} labels written to {one_line(str(file))}")
