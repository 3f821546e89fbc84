"""Reference commands: `memgrid refs add` (training images) and `memgrid match` (grids vs them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from memgrid.core.records import Score
from memgrid.core.references.evidence import TYPE_WORDS, describe_reference
from memgrid.core.references.index import DEFAULT_NEIGHBOURS, DEFAULT_RADIUS
from memgrid.tui.display import say
from memgrid.tui.errors import exit_interrupted, grids_kept, report_error
from memgrid.tui.options import JsonOption, ProjectOption
from memgrid.tui.services.project import open_project
from memgrid.tui.services.references import MatchInterrupted, add_references, match_grids


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
    rematch: Annotated[
        bool,
        typer.Option(
            "--rematch", help="Match every grid again, even those already matched to this pool."
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Match each grid's seeds with the reference images: MV, RV, TV or none, per seed and grid.

    Run after `memgrid refs add` and before `memgrid propose`: the proposals read the match.
    Grids already matched against the same pool are left as they were (resumable).
    """
    with open_project(project) as opened:
        try:
            report = match_grids(
                opened, grid, radius=radius, neighbours=neighbours, rematch=rematch
            )
        except MatchInterrupted as interruption:
            kept = interruption.report
            if not rematch:
                exit_interrupted(
                    "memgrid match", grids_kept(kept.grids, kept.grids_pending, "matched")
                )
            exit_interrupted(  # the grids not reached keep their earlier match
                "memgrid match",
                grids_kept(
                    kept.grids,
                    kept.grids_pending,
                    "matched again",
                    then="the others keep the match they had, and `memgrid match` without "
                    "--rematch matches any grid still unmatched",
                ),
            )
    if json_output:
        counts = {"grids": report.grids, "already_matched": report.already_matched}
        typer.echo(json.dumps({**counts, "pool": report.pool, **report.by_type}))
        return
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(report.by_type.items()))
    left = f"{report.already_matched} already matched against this pool were left as they were"
    again = "(--rematch to match them again)"
    if report.grids == 0 and report.already_matched:
        say(f"no grid to match against {report.pool} references: {left} {again}")
        return
    line = f"{report.grids} grids matched against {report.pool} references ({kinds or 'none'})"
    say(f"{line}; {left} {again}" if report.already_matched else line)


def match_lines(score: Score) -> list[str]:
    """A `reference` score as `show` prints it: the grid's type and best match, then each
    seed's best match (reference id and key, distance, type). `say` escapes the user's
    strings in them (key, url, caption)."""
    values = score.values
    webster = str(values.get("webster", "N"))
    verdict = (
        f"{values.get('matched_seeds')}/{values.get('n_seeds')} seeds copy {TYPE_WORDS[webster]}"
        if webster in TYPE_WORDS
        else "no seed copies a training image (N)"
    )
    lines = [f"reference (v{score.version})", f"  {'type':<18} {verdict}"]
    best = values.get("reference")
    if isinstance(best, dict):
        linked = "linked to the prompt" if best.get("linked") else "not linked to the prompt"
        lines.append(f"  {'best match':<18} reference {best.get('id')}: {describe_reference(best)}")
        lines.append(
            f"  {'':<18} distance {_distance(best.get('distance'))} "
            f"(Carlini {_distance(best.get('carlini'))}, delta {score.params.get('delta')}), "
            f"{linked}"
        )
    lines.append(
        f"  {'candidates':<18} {values.get('candidates', 0)} compared, "
        f"{values.get('linked_references', 0)} linked to the prompt"
    )
    references = values.get("references") or {}
    seeds = values.get("seeds") or []
    if seeds:
        lines.append("  each seed's best match:")
    for seed in seeds:
        reference_id = seed.get("reference_id")
        named = references.get(str(reference_id)) or {}
        key = f"  key {named['key']}" if named.get("key") else ""
        lines.append(
            f"    seed {seed.get('seed')!s:<4} {seed.get('webster')!s:<2}  reference "
            f"{reference_id}{key}  distance {_distance(seed.get('distance'))}"
        )
    lines.append("")
    return lines


def _distance(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else str(value)
