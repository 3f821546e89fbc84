"""Project commands: init, prompts add, import, status, demo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from memgrid.core.errors import InputError
from memgrid.core.metrics import WEIGHTS_FREE_METRICS
from memgrid.core.references.matching import REFERENCE_METRIC, TYPE_ORDER
from memgrid.core.taxonomy import Webster
from memgrid.tui.display import counted, plain_console, say, user_text
from memgrid.tui.errors import exit_interrupted, grids_kept, report_error
from memgrid.tui.options import JsonOption, ProjectOption
from memgrid.tui.services.access import project_group
from memgrid.tui.services.ingest import (
    ImportInterrupted,
    add_prompt_file,
    build_demo,
    import_grids,
)
from memgrid.tui.services.project import Project, create_project, default_project_dir, open_project
from memgrid.tui.services.proposing import propose_all
from memgrid.tui.services.references import match_grids
from memgrid.tui.services.scoring import (
    MetricOptions,
    build_metrics,
    grids_needing_scores,
    score_project,
)

DEMO_DEFAULT_DIR = Path("memgrid-demo")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    prompts = typer.Typer(help="Manage the project's prompts.", no_args_is_help=True)
    prompts.command("add")(prompts_add)
    app.add_typer(prompts, name="prompts")
    app.command("import")(import_command)
    app.command("status")(status)
    app.command("demo")(demo)


def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create the project in.")],
    shared: Annotated[
        bool,
        typer.Option(
            "--shared",
            help="Share it with a Unix group: folders setgid and group-writable, the "
            "database and every image group-writable whatever each annotator's umask. "
            "On an existing project, fixes what is not shared yet.",
        ),
    ] = False,
    group: Annotated[
        str | None,
        typer.Option(
            "--group",
            help="The group to share with (implies --shared; default: the folder's group).",
        ),
    ] = None,
) -> None:
    """Create a project folder: memgrid.db, images/ and thumbs/."""
    with create_project(directory, shared=shared or group is not None, group=group) as project:
        sharing = ""
        if project.images.shared:
            sharing = f", shared with group {project_group(project.root)}"
        say(
            f"Project ready at {project.root} (schema v{project.store.schema_version}, "
            f"journal {project.store.journal_mode}{sharing})"
        )


def prompts_add(
    file: Annotated[
        Path, typer.Argument(help=".txt (one a line), .csv or .jsonl with a prompt field.")
    ],
    project: ProjectOption = None,
) -> None:
    """Add prompts from a file; exact duplicates are merged, empty lines skipped."""
    with open_project(project) as opened:
        report = add_prompt_file(opened, file)
    say(
        f"{file}: {counted(report.added, 'prompt')} added, "
        f"{counted(report.merged, 'duplicate')} merged, "
        f"{report.empty_skipped} empty lines skipped"
    )
    report_control_characters(report.prompts_with_control_characters)


def report_control_characters(prompts: int) -> None:
    if prompts:
        say(
            f"note: {prompts} prompt(s) carry control or bidi characters: stored exactly, "
            "shown escaped (\\x1b)",
            err=True,
        )


def import_command(
    source: Annotated[
        Path, typer.Argument(help="A folder of grid folders, or a .jsonl/.csv manifest.")
    ],
    project: ProjectOption = None,
) -> None:
    """Import grids made elsewhere: a folder per prompt, or a manifest of prompt, seed, path."""
    with open_project(project) as opened:
        try:
            report = import_grids(opened, source)
        except ImportInterrupted as interruption:
            kept = interruption.report
            for error in kept.errors:
                report_error(str(error))
            stored = kept.grids_added + kept.grids_already_present
            exit_interrupted("memgrid import", grids_kept(stored, kept.grids_found, "imported"))
        except KeyboardInterrupt:  # while the source is read, before any grid
            exit_interrupted("memgrid import", grids_kept(0, 0, "imported"))
    for error in report.errors:
        report_error(str(error))
    say(
        f"{source}: {counted(report.grids_added, 'grid')} added, "
        f"{counted(report.images_added, 'image')} added, "
        f"{counted(report.grids_already_present, 'grid')} already present, "
        f"{len(report.errors)} failed"
    )
    report_control_characters(report.prompts_with_control_characters)
    if report.grids_without_prompt:
        say(
            f"note: {counted(report.grids_without_prompt, 'grid')} added without a prompt "
            "(no prompt.txt): stored as prompt unknown, proposed as a guess and never paired "
            "by `report --compare`",
            err=True,
        )
    if report.errors:
        raise typer.Exit(1)


def project_status(project: Project) -> dict[str, Any]:
    store = project.store
    active = store.thresholds.find_active()
    return {
        "project": str(project.root),
        "project_id": store.project_id,
        "schema_version": store.schema_version,
        "journal_mode": store.journal_mode,
        "prompts": store.prompts.count,
        "grids": store.grids.count,
        "images": store.images.count,
        "labels": store.labels.state_counts_where(),
        "annotators": store.labels.annotators_all(),
        "proposals": store.proposals.category_counts_all(),
        "active_thresholds": active.label if active else None,
        "triage": store.triage.counts_all(),
        "references": reference_counts(project),
        "grids_needing_scores": grids_needing_scores(project),
    }


def reference_counts(project: Project) -> dict[str, Any]:
    """Reference images stored, prompts linked to one, grids checked against them (by Webster
    type, N included: checked and found no copy)."""
    references = project.store.references
    by_type = references.matched_type_counts(REFERENCE_METRIC)
    return {
        "stored": references.count,
        "linked_prompts": references.linked_prompt_count(),
        "grids_matched": sum(by_type.values()),
        "matched_by_type": by_type,
    }


def reference_rows(counts: dict[str, Any]) -> list[tuple[str, str]]:
    """`status` rows for the reference images: the pool, then the grids checked, by type."""
    if not (counts["stored"] or counts["grids_matched"]):
        return [("references", "none yet: memgrid refs add")]
    by_type = counts["matched_by_type"]
    order = [kind.value for kind in (*TYPE_ORDER, Webster.NONE)]  # most serious first
    ranked = sorted(by_type, key=lambda kind: (order.index(kind) if kind in order else 9, kind))
    types = ", ".join(f"{by_type[kind]} {kind}" for kind in ranked)
    matched = f"{counts['grids_matched']} grids" + (f" ({types})" if types else "")
    return [
        ("references", f"{counts['stored']} stored, {counts['linked_prompts']} prompts linked"),
        ("grids checked", matched),
    ]


def score_rows(grids: int, needing: dict[str, int]) -> list[tuple[str, str]]:
    """The `status` row saying whether the weights-free scores are current (an upgrade that
    changes a metric's version leaves them stale, and proposals read them)."""
    lacking = max(needing.values(), default=0)
    if not grids:
        return []
    if not lacking:
        return [("scores", "current")]
    return [("scores", f"{lacking} grids to score: memgrid score")]


def status(project: ProjectOption = None, json_output: JsonOption = False) -> None:
    """Counts: grids, images, labels by state, proposals by category, triaged prompts."""
    with open_project(project) as opened:
        facts = project_status(opened)
    if json_output:
        typer.echo(json.dumps(facts, indent=2))
        return
    from rich.table import Table

    table = Table(title=user_text(f"memgrid project {facts['project']}"), show_header=False)
    table.add_column(style="bold")
    table.add_column()
    triage = facts["triage"]
    triaged = (
        [
            (
                "triaged prompts",
                f"{triage['triaged']} ({triage['kept']} kept, {triage['skipped']} skipped)",
            )
        ]
        if triage["triaged"]
        else []
    )
    rows = [
        ("prompts", facts["prompts"]),
        ("grids", facts["grids"]),
        ("images", facts["images"]),
        *facts["labels"].items(),
        *((f"proposed {category}", count) for category, count in facts["proposals"].items()),
        ("thresholds", facts["active_thresholds"] or "(none yet: run memgrid propose)"),
        *triaged,
        *reference_rows(facts["references"]),
        *score_rows(facts["grids"], facts["grids_needing_scores"]),
        ("annotators", ", ".join(facts["annotators"]) or "-"),
        ("storage", f"schema v{facts['schema_version']}, journal {facts['journal_mode']}"),
    ]
    for name, value in rows:
        table.add_row(user_text(name), user_text(value))
    plain_console().print(table)


def demo(
    project: ProjectOption = None,
    no_open: Annotated[
        bool, typer.Option("--no-open", help="Build only; do not open the app.")
    ] = False,
) -> None:
    """Build the offline demo project (synthetic images), then open the annotation app."""
    root = project if project is not None else default_project_dir(None) / DEMO_DEFAULT_DIR
    if root.exists() and any(root.iterdir()) and not (root / "memgrid.db").exists():
        raise InputError(
            root, "folder is not empty and not a memgrid project; choose another --project"
        )
    with create_project(root) as opened:
        added = build_demo(opened)
        # The weights-free metrics only: the demo must run offline on a machine without torch.
        scoring = score_project(opened, build_metrics(MetricOptions(names=WEIGHTS_FREE_METRICS)))
        # The demo's stand-in training set: a copied grid shows its reference out of the box.
        match_grids(opened)
        proposing = propose_all(opened)
        say(
            f"Demo project at {opened.root}: {added} grids added ({opened.store.grids.count} in all), "
            f"{scoring.grids_scored} scored, {proposing.proposed} proposals "
            f"(synthetic images: see the README)"
        )
    status(root, False)
    if not no_open:
        from memgrid.tui.commands.annotate import run_annotate  # loaded only to open the app

        run_annotate(root)
