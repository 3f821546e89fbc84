"""`memgrid label` (one label from a script) and `memgrid labels import|export` (label files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from memgrid.core.annotators import default_annotator
from memgrid.core.label_files import time_text
from memgrid.core.records import MAX_STORED_INTEGER
from memgrid.core.taxonomy import Category, Webster
from memgrid.tui.display import counted, say
from memgrid.tui.options import (
    AnnotatorOption,
    JsonOption,
    OverwriteFileOption,
    ProjectOption,
    checked_annotator,
)
from memgrid.tui.services.labels import export_labels, import_labels, label_grid
from memgrid.tui.services.project import open_project


def register(app: typer.Typer) -> None:
    app.command("label")(label)
    labels = typer.Typer(
        help="Label files in and out: labels made elsewhere, or this project's.",
        no_args_is_help=True,
    )
    labels.command("import")(labels_import)
    labels.command("export")(labels_export)
    app.add_typer(labels, name="labels")


def label(
    grid: Annotated[
        int, typer.Argument(max=MAX_STORED_INTEGER, help="The grid's id (memgrid show GRID).")
    ],
    category: Annotated[
        Category,
        typer.Argument(help="explicit, implicit, unintended or none.", case_sensitive=False),
    ],
    project: ProjectOption = None,
    annotator: AnnotatorOption = None,
    webster: Annotated[
        Webster | None,
        typer.Option(
            "--webster", help="Webster's replication type: MV, TV, RV or N.", case_sensitive=False
        ),
    ] = None,
    note: Annotated[str, typer.Option("--note", help="A note kept with the label.")] = "",
    overlap: Annotated[
        int,
        typer.Option("--overlap", min=1, help="Annotators wanted per grid, as in annotate."),
    ] = 1,
    json_output: JsonOption = False,
) -> None:
    """Label one grid from a script or for a quick fix, as the app would (leases and overlap)."""
    with open_project(project) as opened:
        event = label_grid(
            opened,
            grid,
            category,
            annotator=annotator or default_annotator(opened.store.annotators),
            webster=webster,
            note=note,
            overlap=overlap,
        )
    if json_output:
        typer.echo(
            json.dumps(
                {
                    "event_id": event.id,
                    "grid_id": event.grid_id,
                    "annotator": event.annotator,
                    "category": category.value,
                    "webster": webster.value if webster else None,
                    "note": event.note,
                    "time": time_text(event.created_at),
                }
            )
        )
        return
    say(f"Grid {event.grid_id}: {category.title} by {event.annotator} (event {event.id}).")


def labels_import(
    file: Annotated[Path, typer.Argument(help="A .jsonl or .csv label file.")],
    project: ProjectOption = None,
    annotator: Annotated[
        str | None,
        typer.Option(
            "--annotator",
            "-a",
            help="Annotator of the rows that name none.",
            callback=checked_annotator,
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Import labels made elsewhere (all rows or none); importing a file again adds nothing."""
    with open_project(project) as opened:
        report = import_labels(opened, file, default_annotator=annotator)
    if json_output:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    say(
        f"{file}: {report.added} label events added on {report.grids} grids, "
        f"{report.already_imported} already in the project, "
        f"{report.duplicates_in_file} repeated rows left out"
    )
    if report.categories_from_webster:
        say(
            f"note: {counted(report.categories_from_webster, 'row')} gave a Webster type and "
            "no category: read as unintended (a Webster type says memorized, not what the "
            "prompt asked for); add a category column to keep explicit and implicit apart",
            err=True,
        )


def labels_export(
    file: Annotated[Path, typer.Argument(help="The .jsonl or .csv label file to write.")],
    project: ProjectOption = None,
    overwrite: OverwriteFileOption = False,
    json_output: JsonOption = False,
) -> None:
    """Write every annotator's current label and every adjudication as a label file."""
    with open_project(project) as opened:
        rows = export_labels(opened, file, overwrite=overwrite)
    if json_output:
        typer.echo(json.dumps({"file": str(file), "rows": rows}))
        return
    say(f"{rows} labels written to {file}")
