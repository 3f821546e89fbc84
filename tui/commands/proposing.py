"""Proposal commands: propose (categorize every scored grid) and entities add (the lexicon)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from memgrid.tui.display import say
from memgrid.tui.options import JsonOption, ProjectOption
from memgrid.tui.services.project import open_project
from memgrid.tui.services.proposing import (
    ProposeReport,
    add_entity_file,
    choose_threshold_set,
    propose_all,
    propose_then_activate,
)


def register(app: typer.Typer) -> None:
    app.command("propose")(propose)
    entities = typer.Typer(
        help="Manage the entity lexicon used for prompt attribution.", no_args_is_help=True
    )
    entities.command("add")(entities_add)
    app.add_typer(entities, name="entities")


def propose(
    project: ProjectOption = None,
    thresholds: Annotated[
        str | None,
        typer.Option(
            "--thresholds",
            "-t",
            metavar="NAME|FILE",
            help=(
                "A stored threshold set by name (latest version), or a .toml/.json file "
                "stored as a new version of it; either becomes the active set. Default: the "
                "active set, created as 'default v0' on first use."
            ),
            show_default=False,
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Propose a category, with reasons, for every scored grid under the active threshold set."""
    with open_project(project) as opened:
        created = None
        if thresholds is not None:
            chosen, is_new = choose_threshold_set(opened, thresholds)
            created = chosen.label if is_new else None
            report = propose_then_activate(opened, chosen.id)
        else:
            report = propose_all(opened)
        report.created = report.created or created
    if json_output:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    for line in summary_lines(report):
        say(line)


def summary_lines(report: ProposeReport) -> list[str]:
    """What a person reads after `memgrid propose`."""
    sets = ", ".join(report.threshold_sets) or "(none)"
    counts = ", ".join(f"{name} {count}" for name, count in sorted(report.categories.items()))
    lines = []
    if report.created:
        lines.append(f"Threshold set {report.created} stored and activated.")
    lines.append(
        f"{report.proposed} of {report.grids} grids proposed under {sets}"
        + (f": {counts}" if counts else "")
    )
    if report.unscored:
        lines.append(f"{report.unscored} grids not scored yet: run `memgrid score` first.")
    if report.not_covered:
        lines.append(f"{report.not_covered} grids are of another model than the set: skipped.")
    if report.clip_unavailable:
        lines.append(f"CLIP attribution unavailable: {report.clip_unavailable}")
    return lines


def entities_add(
    file: Annotated[
        Path,
        typer.Argument(help="entities.txt: one 'name | type | alias; alias' a line, # comments."),
    ],
    project: ProjectOption = None,
) -> None:
    """Add lexicon entries (type person, work, brand or place); existing names are updated."""
    with open_project(project) as opened:
        written = add_entity_file(opened, file)
        total = len(opened.store.entities.all())
    say(
        f"{file}: {written} entries added or updated ({total} in the lexicon); "
        "run `memgrid propose` to update the proposals."
    )
