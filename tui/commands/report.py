"""`memgrid report`: memorization rates per model and category, and two models compared."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from memgrid.core.calibration import DEFAULT_BOOTSTRAPS, DEFAULT_SEED
from memgrid.core.user_files import check_output_file, write_user_file
from memgrid.tui.display import plain_console, say, user_text
from memgrid.tui.options import (
    BootstrapSeedOption,
    BootstrapsOption,
    JsonOption,
    OverwriteFileOption,
    ProjectOption,
)
from memgrid.tui.services.project import open_project
from memgrid.tui.services.report import project_report
from memgrid.tui.services.report_pictures import (
    CHANGE_HEADERS,
    MOVED_HEADERS,
    MOVED_SHOWN,
    OVERVIEW_TITLES,
    PLOTTED_MODELS,
    RATE_HEADERS,
    change_rows,
    comparison_heading,
    html_report,
    method_text,
    model_legend,
    model_summary,
    model_title,
    moved_rows,
    overview_headers,
    overview_rows,
    rate_rows,
    terminal_changes,
    terminal_rates,
)

USER_TEXT_WIDTH = 32  # a model name or prompt in a table folds past this many characters


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(
    project: ProjectOption = None,
    compare: Annotated[
        tuple[str, str] | None,
        typer.Option(
            "--compare",
            metavar="MODEL_A MODEL_B",
            help="Compare two models on the prompts both have grids for: each rate's change "
            "with a paired bootstrap interval, McNemar's test, and the prompts that moved.",
            show_default=False,
        ),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="Also split each model's grids: `source` (import, generate, demo) or "
            "`prompt:FIELD` (a field of the prompts file, e.g. prompt:set).",
            show_default=False,
        ),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html", metavar="PATH.html", help="Also write one self-contained HTML report."
        ),
    ] = None,
    seed: BootstrapSeedOption = DEFAULT_SEED,
    bootstraps: BootstrapsOption = DEFAULT_BOOTSTRAPS,
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="Draw the rates and changes.")
    ] = True,
    json_output: JsonOption = False,
    overwrite: OverwriteFileOption = False,
) -> None:
    """Memorization rates per model and category (human labels, else proposals), with 95% intervals.

    With --compare, the change from one model to another on their shared prompts (an
    original and its mitigated version). `--json > report.json` keeps the moved prompts'
    grids for `memgrid annotate --grids-from report.json`.
    """
    with open_project(project) as opened:
        if html is not None:
            check_output_file(html, overwrite=overwrite, protected=opened.own_files())
        found = project_report(
            opened, by=by, compare=compare, seed=seed, bootstraps=bootstraps
        ).to_dict()
    if html is not None:
        write_user_file(
            html,
            html_report(found).encode("utf-8"),
            overwrite=overwrite,
            protected=opened.own_files(),
        )
    if json_output:
        typer.echo(json.dumps(found, indent=2))
        return
    print_report(found, plots=plots)
    if html is not None:
        say(f"Report written to {html}")


def print_report(found: Mapping[str, Any], *, plots: bool = True) -> None:
    from rich.text import Text

    console = plain_console()
    console.print(Text(method_text(found)))
    for warning in found["warnings"]:
        console.print(user_text(f"warning: {warning}", "yellow"))
    console.print(
        *(
            _table(title, overview_headers(scheme), overview_rows(found, scheme), user_columns=1)
            for scheme, title in OVERVIEW_TITLES.items()
        )
    )
    for model in found["models"]:
        title = user_text(model_title(model)) + Text(f": {model_summary(model)}")
        console.print(_table(title, RATE_HEADERS, rate_rows(model)))
    comparison = found.get("comparison")
    if comparison:
        print_comparison(console, comparison, plots=plots)
    drawn = terminal_rates(found, colour=console.is_terminal) if plots else ""
    if drawn:
        console.print(Text.from_ansi(drawn))
        for entry in model_legend(found):
            console.print(user_text(f"  {entry}"))
    elif plots and found["models"]:
        console.print(
            Text(f"(rates are plotted for up to {PLOTTED_MODELS} models; --html draws them all)")
        )


def print_comparison(console: Any, comparison: Mapping[str, Any], *, plots: bool) -> None:
    from rich.text import Text

    console.print(user_text(comparison_heading(comparison)))
    console.print(_table("Change from A to B", CHANGE_HEADERS, change_rows(comparison)))
    if plots:
        drawn = terminal_changes(comparison, colour=console.is_terminal)
        if drawn:
            console.print(Text.from_ansi(drawn))
    for key, words in (
        ("memorized_under_a_only", "Memorized under A, not under B"),
        ("memorized_under_b_only", "Memorized under B, not under A"),
    ):
        items = comparison[key]
        title = f"{words}: {len(items)} prompts"
        if len(items) > MOVED_SHOWN:
            title += f" (first {MOVED_SHOWN}; --json lists them all)"
        if items:
            console.print(
                _table(title, MOVED_HEADERS, moved_rows(items, MOVED_SHOWN), user_columns=1)
            )
        else:
            console.print(Text(title))
    if comparison["memorized_under_a_only"] or comparison["memorized_under_b_only"]:
        console.print(
            Text(
                "To look at them side by side: memgrid report --compare ... --json > report.json; "
                "memgrid annotate --grids-from report.json"
            )
        )


def _table(
    title: Any, headers: Sequence[str], rows: Sequence[Sequence[str]], *, user_columns: int = 0
) -> Any:
    """A rich table; the first `user_columns` columns hold user text and are shown as such."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
    )
    for index, header in enumerate(headers):
        # Numbers keep their width (their headers wrap instead); user text folds past a limit.
        widest = max((len(row[index]) for row in rows), default=0)
        limit = USER_TEXT_WIDTH if index < user_columns else widest
        table.add_column(header, overflow="fold", min_width=min(widest, limit))
    for row in rows:
        table.add_row(
            *(user_text(cell) if i < user_columns else Text(cell) for i, cell in enumerate(row))
        )
    return table
