"""Generation commands: `memgrid generate` (seed grids + Wen et al. signal), `memgrid merge`
and `memgrid triage` (the stored triage value of every prompt)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from memgrid.core.errors import InputError, one_line
from memgrid.core.extras import require_extra
from memgrid.core.generation.settings import DTYPE_CHOICES, choose_seeds, parse_shard
from memgrid.db.store import DATABASE_NAME
from memgrid.tui.options import JsonOption, ProjectOption
from memgrid.tui.services.generation import (
    GenerateReport,
    GenerateRequest,
    generate,
    merge_projects,
)
from memgrid.tui.services.project import create_project, default_project_dir, open_project

SKIPPED_PROMPTS_SHOWN = 20


def register(app: typer.Typer) -> None:
    app.command("generate")(generate_command)
    app.command("merge")(merge_command)
    app.command("triage")(triage_command)


def generate_command(
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help="A diffusers model: hub id (org/name) or a local folder."
        ),
    ],
    project: ProjectOption = None,
    prompts: Annotated[
        Path | None,
        typer.Option(
            "--prompts",
            help="Prompt file (.txt/.csv/.jsonl); default: the project's prompts lacking a grid.",
        ),
    ] = None,
    seeds: Annotated[
        int | None, typer.Option("--seeds", help="Number of seeds, 0..N-1.  [default: 4]")
    ] = None,
    seed_list: Annotated[
        str | None, typer.Option("--seed-list", help="Explicit seeds: 0,1,7 or ranges 0-49.")
    ] = None,
    steps: Annotated[int, typer.Option("--steps", help="Denoising steps.")] = 50,
    guidance: Annotated[float, typer.Option("--guidance", help="Classifier-free guidance.")] = 7.5,
    size: Annotated[
        int | None,
        typer.Option(
            "--size", help="Image side in pixels.  [default: the model's, 512 for SD 1.x]"
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="diffusers scheduler class, e.g. DDIMScheduler."),
    ] = None,
    dtype: Annotated[
        str, typer.Option("--dtype", help="auto (fp16 on GPU, fp32 on CPU), fp16, bf16, fp32.")
    ] = "auto",
    batch: Annotated[int, typer.Option("--batch", help="Seeds per forward batch.")] = 4,
    device: Annotated[str, typer.Option("--device", help="auto, cuda, cpu or mps.")] = "auto",
    shard: Annotated[
        str | None,
        typer.Option("--shard", help="K/N: every N-th prompt from K (0-based), e.g. 0/8."),
    ] = None,
    triage_steps: Annotated[
        int | None,
        typer.Option("--triage-steps", help="Score every prompt on its first K steps first."),
    ] = None,
    triage_threshold: Annotated[
        float | None,
        typer.Option("--triage-threshold", help="Generate full grids only at or above this."),
    ] = None,
    negative_prompt: Annotated[
        str, typer.Option("--negative-prompt", help="Negative prompt (default: empty).")
    ] = "",
    json_output: JsonOption = False,
) -> None:
    """Generate seed grids with diffusers and record the Wen et al. memorization signal."""
    require_extra("gen", "memgrid generate")  # before a project folder is made for nothing
    if dtype not in DTYPE_CHOICES:
        raise InputError("--dtype", f"unknown dtype {dtype!r} ({', '.join(DTYPE_CHOICES)})")
    request = GenerateRequest(
        model=model,
        seeds=choose_seeds(seeds, seed_list),
        steps=steps,
        guidance=guidance,
        size=size,
        scheduler=scheduler,
        dtype=dtype,
        device=device,
        batch=batch,
        prompts_file=prompts,
        shard=parse_shard(shard) if shard else None,
        triage_steps=triage_steps,
        triage_threshold=triage_threshold,
        negative_prompt=negative_prompt,
    )

    def on_grid(index: int, total: int, prompt: str, added: int, seconds: float) -> None:
        if not json_output:
            typer.echo(f"[{index}/{total}] {added} images in {seconds:.1f}s: {_short(prompt)}")

    def on_status(message: str) -> None:
        if not json_output:
            typer.echo(message, err=True)

    with create_project(_generation_project_dir(project)) as opened:
        report = generate(opened, request, on_grid=on_grid, on_status=on_status)
    if json_output:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(report)


def _generation_project_dir(project: Path | None) -> Path:
    """The project folder, created if new: a shard writes into a folder of its own."""
    root = default_project_dir(project)
    if root.is_dir() and not (root / DATABASE_NAME).exists() and any(root.iterdir()):
        raise InputError(root, "folder is not empty and not a memgrid project; choose --project")
    return root


def _print_report(report: GenerateReport) -> None:
    settings = report.settings.describe() if report.settings else ""
    if report.cost is not None:
        cost = report.cost
        typer.echo(
            f"Triage ({cost.triage_steps} step(s), {report.triage_seconds:.1f}s): "
            f"{cost.kept} of {cost.prompts} prompts kept, {cost.skipped} skipped; "
            f"UNet evaluations {cost.with_triage:,} instead of {cost.without_triage:,} "
            f"(saved {cost.saved:,}, {cost.saved_share:.0%})"
        )
        skipped = report.skipped_by_triage
        for result in skipped[:SKIPPED_PROMPTS_SHOWN]:
            typer.echo(f"  skipped  wen {result.value:8.4f}  {_short(result.prompt)}")
        if len(skipped) > SKIPPED_PROMPTS_SHOWN:
            typer.echo(f"  ... and {len(skipped) - SKIPPED_PROMPTS_SHOWN} more (see --json)")
    typer.echo(
        f"{report.grids_written} grids written ({report.images_added} images, "
        f"{report.images_per_second:.2f} images/s), {report.already_complete} already complete, "
        f"of {report.prompts} prompts; {report.model} on {report.device}: {settings}"
    )


def merge_command(
    projects: Annotated[list[Path], typer.Argument(help="Shard project folders to fold together.")],
    into: Annotated[Path, typer.Option("--into", help="Project folder to merge into.")],
    json_output: JsonOption = False,
) -> None:
    """Fold shard projects into one, without duplicate images; settings must match."""
    report = merge_projects(projects, into)
    if json_output:
        typer.echo(json.dumps(report.__dict__, indent=2))
        return
    typer.echo(
        f"Merged {report.sources} projects into {into}: {report.prompts_added} prompts, "
        f"{report.grids_added} grids added, {report.grids_extended} extended, "
        f"{report.images_added} images added, {report.duplicate_images} duplicates skipped"
    )
    if report.conflicting_images:
        typer.echo(
            f"warning: {report.conflicting_images} duplicate seeds had different pixels "
            "(kept the first; were the shards made on different hardware?)",
            err=True,
        )
    if report.scores_dropped or report.stale_target_scores:
        typer.echo(
            f"note: {report.scores_dropped + report.stale_target_scores} scores cover fewer "
            "seeds than the merged grids; run `memgrid score` again",
            err=True,
        )
    if report.labels_not_merged:
        typer.echo(
            f"note: {report.labels_not_merged} labels in the shards were not merged",
            err=True,
        )


def _short(prompt: str, width: int = 70) -> str:
    return prompt if len(prompt) <= width else prompt[: width - 1] + "…"


def triage_command(project: ProjectOption = None, json_output: JsonOption = False) -> None:
    """Every prompt a --triage-steps run scored, kept or skipped, with its Wen et al. value."""
    with open_project(project) as opened:
        results = opened.store.triage.all()
    if json_output:
        typer.echo(
            json.dumps(
                [
                    {
                        "prompt_id": r.prompt_id,
                        "prompt": r.prompt,
                        "prompt_meta": r.prompt_metadata,
                        "model": r.model,
                        "settings": r.settings,
                        "triage_steps": r.triage_steps,
                        "seeds": list(r.seeds),
                        "wen": r.value,
                        "threshold": r.threshold,
                        "kept": r.kept,
                        "created_at": r.created_at,
                    }
                    for r in results
                ],
                indent=2,
            )
        )
        return
    if not results:
        typer.echo("No triage results: memgrid generate --triage-steps K --triage-threshold T")
        return
    for r in results:
        state = "kept   " if r.kept else "skipped"
        typer.echo(
            f"{state}  wen {r.value:8.4f}  ({r.triage_steps} step(s), threshold "
            f"{r.threshold:g})  {one_line(_short(r.prompt))}"
        )
