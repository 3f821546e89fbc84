"""Scoring commands: `memgrid score` (consistency metrics) and `memgrid show` (one grid)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from memgrid.core.metrics import DEFAULT_METRICS, METRICS
from memgrid.core.metrics.base import Metric
from memgrid.core.metrics.clip import DEFAULT_MODEL, DEFAULT_PRETRAINED
from memgrid.core.records import MAX_STORED_INTEGER, Grid, Proposal, Score
from memgrid.core.references.matching import REFERENCE_METRIC
from memgrid.tui.commands.references import match_lines
from memgrid.tui.display import counted, say
from memgrid.tui.errors import exit_interrupted, grids_kept, report_error
from memgrid.tui.options import JsonOption, ProjectOption
from memgrid.tui.services.project import Project, open_project
from memgrid.tui.services.scoring import (
    MetricOptions,
    ScoringInterrupted,
    ScoringReport,
    build_metrics,
    score_project,
)

if TYPE_CHECKING:
    from rich.progress import Task
    from rich.text import Text

# Shades for a tile's share of agreeing seed pairs, lowest to highest.
SHADES = " ░▒▓█"
# Values shown first in `show`; the rest follow in their stored order.
LEADING_VALUES = (
    "n_seeds",
    "clique_share",
    "cluster_share",
    "median_similarity",
    "median_distance",
    "threshold",
    "extent",
    "region_bbox",
)


def register(app: typer.Typer) -> None:
    app.command("score")(score)
    app.command("show")(show)


def score(
    project: ProjectOption = None,
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            help=f"Comma-separated metrics from {','.join(METRICS)}.  "
            f"[default: {','.join(DEFAULT_METRICS)}, plus sscd with --sscd]",
            show_default=False,
        ),
    ] = None,
    clip_model: Annotated[
        str,
        typer.Option(
            "--clip-model", help="open_clip model name, or local-dir:FOLDER, or hf-hub:ORG/REPO."
        ),
    ] = DEFAULT_MODEL,
    clip_pretrained: Annotated[
        str,
        typer.Option(
            "--clip-pretrained",
            help="open_clip pretrained tag (used only if on disk) or a checkpoint file.",
        ),
    ] = DEFAULT_PRETRAINED,
    sscd: Annotated[
        Path | None,
        typer.Option(
            "--sscd",
            help="SSCD TorchScript file (e.g. sscd_disc_mixup.torchscript.pt) or hf-hub:ORG/REPO/FILE.",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            "-j",
            help="Worker processes scoring images (1: none).  [default: CPUs, at most 8]",
            show_default=False,
        ),
    ] = 0,
    device: Annotated[str, typer.Option("--device", help="Device for clip: cpu or cuda.")] = "cpu",
    rescore: Annotated[
        bool, typer.Option("--rescore", help="Score every grid again, even if already scored.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Score grids for consistency across seeds; only what is not yet scored (resumable)."""
    names = _metric_names(metric, sscd)
    options = MetricOptions(
        names=names,
        clip_model=clip_model,
        clip_pretrained=clip_pretrained or None,
        sscd_path=sscd,
        device=device,
    )
    try:
        metrics = build_metrics(
            options, _asked_by(metric, names, sscd, clip_model, clip_pretrained)
        )
    except KeyboardInterrupt:  # while a model loads: no grid yet
        exit_interrupted("memgrid score", grids_kept(0, 0, "scored"))
    processes = workers or min(os.cpu_count() or 1, 8)
    with open_project(project) as opened:
        try:
            if json_output:
                report = score_project(opened, metrics, workers=processes, rescore=rescore)
            else:
                report = _score_with_progress(opened, metrics, processes, rescore)
        except ScoringInterrupted as interruption:
            kept = interruption.report
            failed = f" ({len(kept.errors)} failed on a bad image)" if kept.errors else ""
            exit_interrupted(
                "memgrid score", grids_kept(kept.grids_scored, kept.grids_pending, "scored", failed)
            )
        stale_proposals = report.grids_scored > 0 and any(
            opened.store.proposals.category_counts_all().values()
        )
    if json_output:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(report, names)
        if stale_proposals:
            say("next: memgrid propose, so that the proposals read the new scores")
    if report.errors:
        raise typer.Exit(1)


def _asked_by(
    metric: str | None,
    names: tuple[str, ...],
    sscd: Path | None,
    clip_model: str,
    clip_pretrained: str,
) -> dict[str, str]:
    """Metrics the user asked for, by the option that asked: naming a metric or its weights
    asks for it, and without its extra that is an error rather than a stored "unavailable"."""
    if metric is not None:
        return {name: f"--metric {name}" for name in names}
    asked = {"sscd": "--sscd"} if sscd is not None else {}
    if (clip_model, clip_pretrained) != (DEFAULT_MODEL, DEFAULT_PRETRAINED):
        asked["clip"] = "--clip-model/--clip-pretrained"
    return asked


def _metric_names(metric: str | None, sscd: Path | None) -> tuple[str, ...]:
    if metric is None:
        return (*DEFAULT_METRICS, "sscd") if sscd else DEFAULT_METRICS
    return tuple(name.strip() for name in metric.split(",") if name.strip())


def _score_with_progress(
    opened: Project, metrics: list[Metric], processes: int, rescore: bool
) -> ScoringReport:
    """The scoring loop under a progress bar with grids/s and time left (stderr, transient)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("scoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("grids"),
        _grids_per_second_column(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("score", total=None)

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return score_project(
            opened, metrics, workers=processes, rescore=rescore, on_progress=on_progress
        )


def _grids_per_second_column() -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class GridsPerSecond(ProgressColumn):
        """The measured rate, in grids per second."""

        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:.1f} grids/s")

    return GridsPerSecond()


def _print_report(report: ScoringReport, names: tuple[str, ...]) -> None:
    for error in report.errors:
        report_error(str(error))
    for metric_name, why in report.unavailable.items():
        grids = report.unavailable_grids.get(metric_name, 0)
        held = report.held_unavailable.get(metric_name, 0)
        counts = [f"{grids} grids"] if grids else []
        if held:
            counts.append(f"{held} grids kept as stored (scored once it can run)")
        say(f"note: {metric_name} unavailable on {', '.join(counts)}: {why}", err=True)
    already = report.grids - report.grids_pending
    say(
        f"Scored {counted(report.grids_scored, 'grid')} with {', '.join(names)} "
        f"({report.scores_written} scores, {report.grids_per_second:.1f} grids/s); "
        f"{already} already scored, {len(report.errors)} failed"
    )


# ---- show ------------------------------------------------------------------------------


def show(
    grid_id: Annotated[
        int, typer.Argument(max=MAX_STORED_INTEGER, help="The grid's id (see `memgrid status`).")
    ],
    project: ProjectOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print one grid: its prompt, scores per metric, region map and proposal with reasons."""
    with open_project(project) as opened:
        store = opened.store
        grid = store.grids.get(grid_id)
        scores = store.scores.where(grid_ids=[grid_id])
        proposal = store.proposals.find(grid_id)
        threshold_label = (
            store.thresholds.get(proposal.threshold_set_id).label if proposal else None
        )
    if json_output:
        typer.echo(json.dumps(grid_facts(grid, scores, proposal, threshold_label), indent=2))
        return
    for line in grid_lines(grid, scores, proposal, threshold_label):
        say(line)


def grid_facts(
    grid: Grid, scores: list[Score], proposal: Proposal | None, threshold_label: str | None
) -> dict[str, Any]:
    """Everything `show` prints, as JSON-ready data."""
    return {
        "grid": {
            "id": grid.id,
            "prompt": grid.prompt,
            "model": grid.model,
            "source": grid.source,
            "seeds": grid.seeds,
        },
        "scores": [
            {
                "metric": score.metric,
                "version": score.version,
                "available": score.available,
                "note": score.note,
                "params": score.params,
                "values": score.values,
                "heatmap": score.heatmap,
            }
            for score in scores
        ],
        "proposal": None
        if proposal is None
        else {
            "threshold_set": threshold_label,
            "category": proposal.category.value,
            "features": [feature.to_dict() for feature in proposal.features],
            "reasons": [reason.to_dict() for reason in proposal.reasons],
            "webster": proposal.webster.value if proposal.webster else None,
        },
    }


def grid_lines(
    grid: Grid, scores: list[Score], proposal: Proposal | None, threshold_label: str | None
) -> list[str]:
    """The grid as plain lines: prompt, scores, region map, proposal."""
    lines = [
        f"grid {grid.id}: {grid.prompt}",
        f"  model {grid.model or '-'}, {len(grid.seeds)} seeds, source {grid.source or '-'}",
        "",
    ]
    if not scores:
        lines.append("  not scored yet (run `memgrid score`)")
    for score in scores:
        lines.extend(_score_lines(score))
    if proposal is None:
        lines.append("proposal: none yet (run `memgrid propose`)")
    else:
        lines.append(f"proposal ({threshold_label}): {proposal.category.title}")
        for feature in proposal.features:
            lines.append(f"  feature: {feature.name} [{feature.category.value}, {feature.where}]")
        for reason in proposal.reasons:
            mark = "+" if reason.fired else "-"
            lines.append(f"  {mark} {reason.text}")
    return lines


def _score_lines(score: Score) -> list[str]:
    header = f"{score.metric} (v{score.version})"
    if not score.available:
        return [f"{header}: unavailable: {score.note}", ""]
    if score.metric == REFERENCE_METRIC:
        return match_lines(score)
    values = score.values
    ordered = [key for key in LEADING_VALUES if key in values]
    ordered += [key for key in values if key not in ordered and key != "region_tiles"]
    lines = [header]
    lines.extend(f"  {key:<18} {_format_value(values[key])}" for key in ordered)
    if score.heatmap:
        lines.append("  region map (share of seed pairs agreeing per tile):")
        lines.extend(
            f"    {row}" for row in heatmap_rows(score.heatmap, values.get("region_tiles"))
        )
        lines.append(f"    shades {SHADES[1:]!r} from 0 to 1; region tiles marked by [ ]")
    lines.append("")
    return lines


def heatmap_rows(heatmap: list[list[float]], region_tiles: list[int] | None = None) -> list[str]:
    """A small text heat map: two characters per tile, shaded by the tile's share."""
    region = set(region_tiles or [])
    columns = len(heatmap[0]) if heatmap else 0
    rows = []
    for row_index, row in enumerate(heatmap):
        cells = []
        for column_index, share in enumerate(row):
            shade = SHADES[min(int(share * (len(SHADES) - 1) + 0.5), len(SHADES) - 1)]
            in_region = row_index * columns + column_index in region
            cells.append(f"[{shade}]" if in_region else f" {shade}{shade}"[:3])
        rows.append("".join(cells))
    return rows


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return json.dumps(value) if isinstance(value, list | dict) else str(value)
