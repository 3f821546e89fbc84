"""Calibration commands: `memgrid calibrate` (refit the thresholds) and `memgrid agreement`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from memgrid.core.calibration import DEFAULT_BOOTSTRAPS, DEFAULT_SEED, parse_objective
from memgrid.core.interrater import AgreementReport
from memgrid.core.user_files import check_output_file, write_user_file
from memgrid.tui.display import plain_console, say, user_text
from memgrid.tui.options import (
    BootstrapSeedOption,
    BootstrapsOption,
    JsonOption,
    OverwriteFileOption,
    ProjectOption,
)
from memgrid.tui.services.calibration import CalibrationRun, calibrate_project, project_agreement
from memgrid.tui.services.calibration_report import (
    SIGNAL_HEADERS,
    THRESHOLD_HEADERS,
    confusion_headers,
    confusion_rows,
    html_report,
    interval_text,
    plotted_signals,
    signal_rows,
    terminal_histogram,
    terminal_roc,
    threshold_rows,
)
from memgrid.tui.services.project import open_project


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate)
    app.command("agreement")(agreement)


def calibrate(
    project: ProjectOption = None,
    objective: Annotated[
        str,
        typer.Option(
            "--objective",
            help="How to pick tau_mem on the ROC/PR curve: f1, youden, or precision:P "
            "(the lowest cut whose precision reaches P).",
        ),
    ] = "f1",
    by_model: Annotated[
        bool, typer.Option("--by-model", help="Fit one threshold set per generator model.")
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report", metavar="PATH.html", help="Also write one self-contained HTML report."
        ),
    ] = None,
    accept: Annotated[
        bool,
        typer.Option(
            "--accept",
            help="Store the fitted values as a new version of the set, make it active and "
            "recompute the proposals.",
        ),
    ] = False,
    seed: BootstrapSeedOption = DEFAULT_SEED,
    bootstraps: BootstrapsOption = DEFAULT_BOOTSTRAPS,
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="Draw histograms and the ROC curve.")
    ] = True,
    json_output: JsonOption = False,
    overwrite: OverwriteFileOption = False,
) -> None:
    """Fit the active thresholds on the human labels and report how well they separate."""
    chosen = parse_objective(objective)
    with open_project(project) as opened:
        if report is not None:  # before --accept stores anything
            check_output_file(report, overwrite=overwrite, protected=opened.own_files())
        runs = calibrate_project(
            opened, chosen, by_model=by_model, accept=accept, seed=seed, bootstraps=bootstraps
        )
    if report is not None:
        page = html_report([run.to_dict() for run in runs]).encode("utf-8")
        write_user_file(report, page, overwrite=overwrite, protected=opened.own_files())
    if json_output:
        typer.echo(json.dumps([run.to_dict() for run in runs], indent=2))
        return
    for run in runs:
        print_run(run, plots=plots)
    if report is not None:
        say(f"Report written to {report}")


def print_run(run: CalibrationRun, *, plots: bool = True) -> None:
    """What a person reads after `memgrid calibrate`: tables, warnings, plots, next step."""
    from rich.text import Text

    console = plain_console()
    summary = run.summary
    model = f" for model {summary['model']}" if summary.get("model") else ""
    console.print(
        user_text(
            f"Calibration run {run.run_id}: {run.threshold_set.label}{model} on "
            f"{summary['label_count']} labelled grids, objective {summary['objective']}"
        )
    )
    for warning in summary["warnings"]:
        console.print(user_text(f"warning: {warning}", "yellow"))
    if summary["bootstraps"]:
        console.print(
            f"[CI]: bootstrap 95% intervals, {summary['bootstraps']} resamples, seed {summary['seed']}"
        )
    console.print(_table("Thresholds", THRESHOLD_HEADERS, threshold_rows(summary)))
    if summary["signals"]:
        best = summary.get("best_signal")
        title = "Signals, memorized vs not" + (f" (best: {best})" if best else "")
        console.print(_table(title, SIGNAL_HEADERS, signal_rows(summary)))
    for name in ("before", "after"):
        evaluation = summary.get(name)
        if evaluation:
            title = (
                f"Categories {name} (macro-F1 "
                f"{interval_text(evaluation['macro_f1'], evaluation['macro_f1_interval'])})"
            )
            console.print(_table(title, confusion_headers(evaluation), confusion_rows(evaluation)))
    if plots:
        for signal in plotted_signals(summary):
            console.print(
                Text.from_ansi(terminal_histogram(summary, signal, colour=console.is_terminal))
            )
        roc = terminal_roc(summary, colour=console.is_terminal)
        if roc:
            console.print(Text.from_ansi(roc))
    if run.accepted is not None:
        counts = ", ".join(
            f"{name} {count}"
            for name, count in sorted((run.proposals.categories if run.proposals else {}).items())
        )
        console.print(
            user_text(f"Accepted: {run.accepted.label} is active; proposals recomputed ({counts}).")
        )
    elif run.refused:
        console.print(user_text(f"Not accepted: {run.refused}."))
    elif summary.get("changes"):
        console.print("Not accepted: rerun with --accept to make these thresholds active.")
    else:
        console.print("No threshold changed.")


def _table(title: str, headers: list[str], rows: list[list[str]]) -> Any:
    from rich.table import Table

    table = Table(title=user_text(title), title_justify="left")
    # Drop a trailing column that is empty in every row (the signals' notes, mostly).
    if rows and headers[-1] in ("note", "fitted on") and not any(row[-1] for row in rows):
        headers, rows = headers[:-1], [row[:-1] for row in rows]
    for index, header in enumerate(headers):
        # The first column names the row: keep it whole; numbers wrap at their interval.
        table.add_column(user_text(header), no_wrap=index == 0)
    for row in rows:
        table.add_row(*(user_text(cell) for cell in row))
    return table


def agreement(project: ProjectOption = None, json_output: JsonOption = False) -> None:
    """Agreement between annotators (Cohen, Fleiss, Krippendorff) and with the proposals."""
    with open_project(project) as opened:
        found = project_agreement(opened)
    if json_output:
        typer.echo(json.dumps(found.to_dict(), indent=2))
        return
    print_agreement(found)


def print_agreement(found: AgreementReport) -> None:
    console = plain_console()
    console.print(
        f"{len(found.annotators)} annotator(s); {found.items_multi_rated} grid(s) labelled by two or more"
    )
    for warning in found.warnings:
        console.print(user_text(f"warning: {warning}", "yellow"))
    if found.pairs:
        rows = [
            [p.annotator_a, p.annotator_b, str(p.items), _fixed(p.observed), _fixed(p.kappa)]
            for p in found.pairs
        ]
        console.print(
            _table(
                "Cohen's kappa per pair",
                ["annotator", "annotator", "common grids", "observed agreement", "kappa"],
                rows,
            )
        )
    console.print(f"Fleiss' kappa: {_fixed(found.fleiss_kappa)}")
    console.print(f"Krippendorff's alpha (nominal): {_fixed(found.krippendorff_alpha)}")
    rows = [
        [name, str(part.labels), str(part.agreed), _fixed(part.share), _fixed(part.kappa)]
        for name, part in (("blind", found.blind), ("shown", found.shown))
    ]
    console.print(
        _table(
            "Agreement with the proposal",
            ["grids", "labels", "same as proposal", "share", "kappa"],
            rows,
        )
    )
    if found.anchoring is not None:
        console.print(
            f"Anchoring (shown minus blind agreement): {found.anchoring:+.3f}"
            + ("  (labels follow the shown proposal more often)" if found.anchoring > 0 else "")
        )


def _fixed(value: float | None) -> str:
    return "–" if value is None or value != value else f"{value:.3f}"
