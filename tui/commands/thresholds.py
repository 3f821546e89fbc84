"""`memgrid thresholds list|show|activate|diff`: the history of the detection thresholds."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from memgrid.core.records import ThresholdSet
from memgrid.core.thresholds import SPECS
from memgrid.tui.display import plain_console, say, user_text
from memgrid.tui.options import JsonOption, ProjectOption
from memgrid.tui.services.project import open_project
from memgrid.tui.services.thresholds import activate_set, diff_sets, find_set, set_facts

SetArgument = Annotated[
    str, typer.Argument(help="NAME@VERSION (default@1), or NAME for its latest version.")
]


def register(app: typer.Typer) -> None:
    thresholds = typer.Typer(
        help="Threshold sets: every version, where it came from, which is active.",
        no_args_is_help=True,
    )
    thresholds.command("list")(thresholds_list)
    thresholds.command("show")(thresholds_show)
    thresholds.command("activate")(thresholds_activate)
    thresholds.command("diff")(thresholds_diff)
    app.add_typer(thresholds, name="thresholds")


def _model(threshold_set: ThresholdSet) -> str:
    return "all models" if threshold_set.model is None else threshold_set.model


def _print_table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    from rich.table import Table

    table = Table(title=user_text(title), title_justify="left")
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*(user_text(cell) for cell in row))
    plain_console().print(table)


def _number(value: float | None) -> str:
    return "unset" if value is None else f"{value:.6g}"


def thresholds_list(project: ProjectOption = None, json_output: JsonOption = False) -> None:
    """Every threshold set and version: its model, whether it is active, where it came from."""
    with open_project(project) as opened:
        sets = opened.store.thresholds.all()
    if json_output:
        typer.echo(json.dumps([set_facts(t) for t in sets], indent=2))
        return
    if not sets:
        say("No threshold set yet: memgrid propose stores default@0 (v0).")
        return
    rows = [
        [
            t.reference,
            _model(t),
            "active" if t.active else "",
            t.origin or "-",
            t.created_at[:19].replace("T", " "),
        ]
        for t in sets
    ]
    _print_table("Threshold sets", ["set", "model", "", "from", "created"], rows)


def thresholds_show(
    reference: SetArgument, project: ProjectOption = None, json_output: JsonOption = False
) -> None:
    """One set's values, with what each threshold means, and where the set came from."""
    with open_project(project) as opened:
        chosen = find_set(opened, reference)
    if json_output:
        typer.echo(json.dumps(set_facts(chosen), indent=2))
        return
    state = "active" if chosen.active else "not active"
    say(
        f"{chosen.reference}: {_model(chosen)}, {state}; from "
        f"{chosen.origin or 'unknown'}; created {chosen.created_at[:19]}"
    )
    keys = [*SPECS, *sorted(set(chosen.values) - set(SPECS))]
    rows = [
        [key, _number(chosen.values.get(key)), SPECS[key].meaning if key in SPECS else ""]
        for key in keys
    ]
    _print_table("Values", ["threshold", "value", "meaning"], rows)
    if chosen.notes:
        say("Notes: " + chosen.notes.splitlines()[0])


def thresholds_activate(
    reference: SetArgument, project: ProjectOption = None, json_output: JsonOption = False
) -> None:
    """Make a set active for its model and recompute the proposals with it (one transaction)."""
    with open_project(project) as opened:
        chosen, report = activate_set(opened, reference)
    if json_output:
        typer.echo(json.dumps({**set_facts(chosen), "proposals": report.to_dict()}, indent=2))
        return
    counts = ", ".join(f"{name} {count}" for name, count in sorted(report.categories.items()))
    say(
        f"{chosen.reference} is active for {_model(chosen)}; "
        f"{report.proposed} proposals recomputed ({counts or 'no scored grids'})."
    )


def thresholds_diff(
    before: SetArgument,
    after: SetArgument,
    project: ProjectOption = None,
    json_output: JsonOption = False,
) -> None:
    """The thresholds whose values differ between two sets."""
    with open_project(project) as opened:
        found = diff_sets(opened, before, after)
    if json_output:
        typer.echo(json.dumps(found.to_dict(), indent=2))
        return
    title = f"{found.before.reference} -> {found.after.reference}"
    if found.before.model != found.after.model:
        title += f" (models: {_model(found.before)} -> {_model(found.after)})"
    if not found.changes:
        say(f"{title}: the same values")
        return
    rows = [
        [
            change.key,
            _number(change.before),
            _number(change.after),
            "" if change.relative is None else f"{change.relative:+.1%}",
        ]
        for change in found.changes
    ]
    _print_table(title, ["threshold", "from", "to", "change"], rows)
