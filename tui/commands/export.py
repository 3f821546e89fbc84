"""`memgrid export`: labelled sets as JSONL, CSV, Parquet, imagefolder or WebDataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from memgrid.core.agreement import GridState
from memgrid.core.errors import InputError
from memgrid.core.export.options import (
    DEFAULT_SHARD_SIZE,
    ExportFilters,
    ExportFormat,
    ExportOptions,
    ImageMode,
)
from memgrid.core.export.staging import MANIFEST_NAME
from memgrid.core.taxonomy import Category
from memgrid.tui.display import say
from memgrid.tui.errors import exit_interrupted
from memgrid.tui.options import JsonOption, ProjectOption
from memgrid.tui.services.export import export_project
from memgrid.tui.services.project import open_project

IMAGES_DONE = {ImageMode.COPY: "copied", ImageMode.LINK: "linked"}


def register(app: typer.Typer) -> None:
    app.command("export")(export)


def export(
    export_format: Annotated[
        ExportFormat,
        typer.Option("--format", "-f", help="jsonl, csv, parquet, imagefolder or webdataset."),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Folder to create (its parent must exist); written beside it, renamed when "
            "complete.",
        ),
    ],
    project: ProjectOption = None,
    category: Annotated[
        list[Category] | None,
        typer.Option("--category", help="Keep grids whose agreed category is this (repeatable)."),
    ] = None,
    state: Annotated[
        list[GridState] | None,
        typer.Option(
            "--state",
            help="Keep grids in this state (repeatable); with --annotator, that annotator's state.",
        ),
    ] = None,
    annotator: Annotated[
        str | None,
        typer.Option("--annotator", help="Keep grids this annotator labelled, flagged or skipped."),
    ] = None,
    min_agreement: Annotated[
        float | None,
        typer.Option(
            "--min-agreement",
            min=0.0,
            max=1.0,
            help="Keep grids where at least this share of annotators chose the agreed category.",
        ),
    ] = None,
    adjudicated_only: Annotated[
        bool, typer.Option("--adjudicated-only", help="Keep only adjudicated grids.")
    ] = False,
    with_images: Annotated[
        ImageMode | None,
        typer.Option(
            "--with-images",
            help="copy, link or none (default: copy for imagefolder/webdataset, none otherwise).",
            show_default=False,
        ),
    ] = None,
    shard_size: Annotated[
        int, typer.Option("--shard-size", min=1, help="Samples per WebDataset shard.")
    ] = DEFAULT_SHARD_SIZE,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace an earlier export at --out (a folder with memgrid's export.json); "
            "nothing else is ever replaced.",
        ),
    ] = False,
    contact_sheet: Annotated[
        bool,
        typer.Option(
            "--contact-sheet",
            help="Add one PNG per grid: its seeds tiled, the detected region outlined in "
            "yellow and the labelled features in red.",
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Export one row per grid: prompt, agreed label and how it was reached, every annotator's
    label, proposal, scores, provenance and images, with an export.json manifest."""
    options = ExportOptions(
        export_format=export_format,
        destination=out,
        filters=ExportFilters(
            categories=tuple(category or ()),
            states=tuple(state or ()),
            annotator=annotator,
            min_agreement=min_agreement,
            adjudicated_only=adjudicated_only,
        ),
        with_images=with_images,
        shard_size=shard_size,
        overwrite=overwrite,
        contact_sheets=contact_sheet,
    )
    with open_project(project) as opened:
        if annotator is not None:
            known = opened.store.labels.annotators_all()
            if annotator not in known:  # a typo would export nothing, and say nothing
                listed = ", ".join(repr(name) for name in known[:10]) or "none yet"
                raise InputError(
                    "--annotator", f"no label by {annotator!r} here (annotators: {listed})"
                )
        earlier = _manifest_identity(out)
        try:
            report = export_project(opened, options)
        except KeyboardInterrupt:  # the export is staged apart and moved in whole at the end
            exit_interrupted("memgrid export", _kept_when_interrupted(out, earlier))
    if json_output:
        typer.echo(json.dumps(report.manifest, indent=2))
        return
    counts = report.manifest["counts"]
    images = (
        "images left in the project"
        if options.image_mode is ImageMode.NONE
        else f"{report.images} images {IMAGES_DONE[options.image_mode]}"
    )
    say(
        f"Exported {report.rows} of {counts['grids_in_project']} grids as {export_format.value} "
        f"to {out} ({images}); manifest {out / MANIFEST_NAME}"
    )
    if report.rows == 0 and counts["grids_in_project"]:
        say(
            "note: no grid passed the filters"
            + (
                " (none is adjudicated yet: an adjudicator settles grids in `memgrid annotate`, key A)"
                if adjudicated_only
                else ""
            ),
            err=True,
        )


def _manifest_identity(out: Path) -> tuple[int, int] | None:
    """Which export.json is at `out` (inode, mtime), or None where there is none."""
    try:
        found = (out / MANIFEST_NAME).stat()
    except OSError:
        return None
    return found.st_ino, found.st_mtime_ns


def _kept_when_interrupted(out: Path, earlier: tuple[int, int] | None) -> str:
    """An export moves in whole at its very end: either it is there or the earlier one is."""
    now = _manifest_identity(out)
    if now is not None and now != earlier:  # cut short after the move, while tidying up
        return f"the export had finished and is at {out}"
    if earlier is not None:
        return f"nothing was written; the earlier export at {out} is kept"
    return f"nothing was written; {out} was not made"
