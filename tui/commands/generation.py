"""Generation commands: `memgrid generate` (seed grids + Wen et al. signal), `memgrid merge`
and `memgrid triage` (the stored triage value of every prompt)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from memgrid.core.errors import InputError
from memgrid.core.extras import require_extra
from memgrid.core.generation.launch import (
    launch_from_environment,
    shards_folder,
    slurm_options,
)
from memgrid.core.generation.settings import DTYPE_CHOICES, choose_seeds, parse_shard
from memgrid.db.store import DATABASE_NAME
from memgrid.tui.display import counted, say
from memgrid.tui.errors import exit_interrupted, grids_kept, report_error
from memgrid.tui.options import JsonOption, ProjectOption
from memgrid.tui.services import scale
from memgrid.tui.services.generation import (
    GenerateReport,
    GenerateRequest,
    GenerationInterrupted,
    GridProgress,
    check_request,
    generate,
    load_for,
)
from memgrid.tui.services.merging import MergeReport, merge_projects
from memgrid.tui.services.project import create_project, default_project_dir, open_project

SKIPPED_PROMPTS_SHOWN = 20
DEFAULT_SLURM_TASKS = 4


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
            "--size", help="Square image side in pixels.  [default: the model's, 512 for SD 1.x]"
        ),
    ] = None,
    width: Annotated[
        int | None, typer.Option("--width", help="Image width in pixels (overrides --size).")
    ] = None,
    height: Annotated[
        int | None, typer.Option("--height", help="Image height in pixels (overrides --size).")
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="diffusers scheduler class; DDIMScheduler reproduces Wen et al.'s numbers.",
        ),
    ] = None,
    revision: Annotated[
        str | None,
        typer.Option("--revision", help="Hub branch, tag or commit to pin (hub ids only)."),
    ] = None,
    dtype: Annotated[
        str, typer.Option("--dtype", help="auto (fp16 on GPU, fp32 on CPU), fp16, bf16, fp32.")
    ] = "auto",
    batch: Annotated[int, typer.Option("--batch", help="Seeds per forward batch.")] = 4,
    device: Annotated[
        str, typer.Option("--device", help="auto, cuda, cuda:N, cpu or mps.")
    ] = "auto",
    compile_unet: Annotated[
        bool,
        typer.Option(
            "--compile", help="torch.compile the UNet, channels_last, fused QKV (GPU runs)."
        ),
    ] = False,
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
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Shards for --ray (default: the cluster's GPUs) or --slurm-* (default 4).",
        ),
    ] = None,
    ray: Annotated[
        bool, typer.Option("--ray", help="Run one Ray task per shard, then merge (ray extra).")
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="Ray cluster to join, e.g. ray://head:10001 (implies --ray).  "
            "[default: RAY_ADDRESS, this node's cluster, else a local one]",
        ),
    ] = None,
    slurm_script: Annotated[
        bool,
        typer.Option("--slurm-script", help="Print an sbatch array script for this run."),
    ] = False,
    slurm_submit: Annotated[
        bool,
        typer.Option("--slurm-submit", help="Submit that array through submitit (slurm extra)."),
    ] = False,
    slurm_option: Annotated[
        list[str] | None,
        typer.Option(
            "--slurm-option",
            metavar="KEY=VALUE",
            help="KEY=VALUE for #SBATCH (partition=gpu, time=12:00:00, cpus-per-task=8).",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Generate seed grids with diffusers and record the Wen et al. memorization signal.

    Under torchrun / accelerate launch (RANK, WORLD_SIZE) or a Slurm array
    (SLURM_ARRAY_TASK_ID), each process takes its shard into PROJECT-shards/; rank 0 of a
    torchrun job merges them into PROJECT at the end, `memgrid merge --into PROJECT` does
    after an array.
    """
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
        width=width,
        height=height,
        revision=revision,
        compile=compile_unet,
    )
    check_request(request)
    root = _generation_project_dir(project)
    output = _Output(json_output)
    if slurm_script or slurm_submit:
        options = slurm_options(workers or DEFAULT_SLURM_TASKS, device != "cpu", slurm_option or [])
        if slurm_script:
            for line in scale.slurm_script(request, root, options).splitlines():
                say(line)
            return
        require_extra("slurm", "memgrid generate --slurm-submit")
        jobs = [str(job.job_id) for job in scale.submit_slurm(request, root, options)]
        output.done(
            {"jobs": jobs, "shards": str(shards_folder(root.resolve()))},
            f"submitted {len(jobs)} array task(s) ({', '.join(jobs)}); when they have "
            f"finished: memgrid merge --into {root}",
        )
        return
    if ray or ray_address:
        require_extra("ray", "memgrid generate --ray")
        try:
            report = scale.run_on_ray(request, root, workers, ray_address, on_status=output.status)
        except KeyboardInterrupt:  # the tasks end with this driver; their shards stay
            exit_interrupted("memgrid generate", _shards_kept(root))
        output.done(report.to_dict(), _scale_summary(report))
        return
    try:
        _generate_here(request, root, output, json_output)
    except GenerationInterrupted as interruption:
        kept = interruption.report
        exit_interrupted(
            "memgrid generate", grids_kept(kept.grids_written, kept.grids_pending, "generated")
        )


def _shards_kept(root: Path) -> str:
    """What a sharded run interrupted outside a shard's own generation kept: each shard
    project holds its grids, and a rerun with the same shards skips them and merges."""
    return (
        f"each shard's grids so far are stored in {shards_folder(root)}; running it again "
        "with as many shards (the same --workers, or launcher world size) goes on from there"
    )


def _generate_here(
    request: GenerateRequest, root: Path, output: _Output, json_output: bool
) -> None:
    """Generate in this process: its shard of a torchrun / accelerate job, or the whole run."""
    launch = None if request.shard else launch_from_environment(os.environ)
    if launch is not None:
        prefix = f"[{launch.launcher} shard {launch.shard}] "
        try:
            shard_report, merged = scale.run_launched(
                launch,
                request,
                root,
                on_grid=output.grid_printer(prefix),
                on_status=lambda message: output.status(prefix + message),
            )
        except GenerationInterrupted:
            raise  # in the shard's own generation: its grids are counted
        except KeyboardInterrupt:  # waiting for the other ranks, or merging them
            exit_interrupted("memgrid generate", _shards_kept(root))
        if merged is not None:
            output.status(prefix + _merge_summary(merged, root))
        output.done(shard_report.to_dict(), prefix + _summary(shard_report))
        return
    try:
        loaded = load_for(request, output.status)  # before the project: a failure leaves nothing
    except KeyboardInterrupt:  # while the model loads: no grid yet
        raise GenerationInterrupted(GenerateReport()) from None
    with create_project(root) as opened:
        report = generate(
            opened, request, on_grid=output.grid_printer(), on_status=output.status, loaded=loaded
        )
    if report.cost is not None and not json_output:
        _print_triage(report)
    output.done(report.to_dict(), _summary(report))


class _Output:
    """Progress on stderr and a summary line on stdout, or one JSON document with --json."""

    def __init__(self, json_output: bool) -> None:
        self.json_output = json_output

    def status(self, message: str) -> None:
        if not self.json_output:
            say(message, err=True)

    def grid_printer(self, prefix: str = "") -> GridProgress:
        def on_grid(index: int, total: int, prompt: str, added: int, seconds: float) -> None:
            if not self.json_output:
                say(f"{prefix}[{index}/{total}] {added} images in {seconds:.1f}s: {_short(prompt)}")

        return on_grid

    def done(self, document: dict[str, Any], summary: str) -> None:
        if self.json_output:
            typer.echo(json.dumps(document, indent=2))
        else:
            for line in summary.splitlines():
                say(line)


def _generation_project_dir(project: Path | None) -> Path:
    """The project folder, created if new: a shard writes into a folder of its own."""
    root = default_project_dir(project)
    if root.is_dir() and not (root / DATABASE_NAME).exists() and any(root.iterdir()):
        raise InputError(root, "folder is not empty and not a memgrid project; choose --project")
    return root


def _print_triage(report: GenerateReport) -> None:
    assert report.cost is not None
    cost = report.cost
    say(
        f"Triage ({cost.triage_steps} step(s), {report.triage_seconds:.1f}s): "
        f"{cost.kept} of {cost.prompts} prompts kept, {cost.skipped} skipped; "
        f"UNet evaluations {cost.with_triage:,} instead of {cost.without_triage:,} "
        f"(saved {cost.saved:,}, {cost.saved_share:.0%})"
    )
    skipped = report.skipped_by_triage
    for result in skipped[:SKIPPED_PROMPTS_SHOWN]:
        say(f"  skipped  wen {result.value:8.4f}  {_short(result.prompt)}")
    if len(skipped) > SKIPPED_PROMPTS_SHOWN:
        say(f"  ... and {len(skipped) - SKIPPED_PROMPTS_SHOWN} more (see --json)")


def _summary(report: GenerateReport) -> str:
    settings = report.settings.describe() if report.settings else ""
    return (
        f"{report.grids_written} grids written ({report.images_added} images, "
        f"{report.images_per_second:.2f} images/s), {report.already_complete} already complete, "
        f"of {report.prompts} prompts; {report.model} ({report.model_key}) on {report.device}: "
        f"{settings}"
    )


def _scale_summary(report: scale.ScaleReport) -> str:
    grids = sum(shard["grids_written"] for shard in report.shards.values())
    images = sum(shard["images_added"] for shard in report.shards.values())
    lines = [f"{len(report.shards)} shards: {grids} grids written ({images} images)"]
    if report.merge is not None and report.merged_into is not None:
        lines.append(_merge_summary(report.merge, report.merged_into))
    return "\n".join(lines)


def _merge_summary(report: MergeReport, into: Path) -> str:
    references = (
        f", {report.references_added} references added"
        if report.references_added or report.references_present
        else ""
    )
    return (
        f"Merged {counted(report.sources, 'project')} into {into}: "
        f"{counted(report.prompts_added, 'prompt')}, "
        f"{report.grids_added} grids added, {report.grids_extended} extended, "
        f"{report.images_added} images added, {report.duplicate_images} duplicates skipped"
        f"{references}"
        + (f", {report.entities_added} lexicon entries added" if report.entities_added else "")
    )


def merge_command(
    into: Annotated[Path, typer.Option("--into", help="Project folder to merge into.")],
    projects: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Shard project folders to fold together.  [default: every shard in "
            "INTO-shards/, all of which must have finished]",
            show_default=False,
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Fold shard projects into one, without duplicate images; settings must match."""
    report = merge_projects(projects, into) if projects else scale.merge_shards(into)
    if json_output:
        typer.echo(json.dumps(report.__dict__, indent=2))
        if report.errors:
            raise typer.Exit(1)
        return
    say(_merge_summary(report, into))
    if report.conflicting_images:
        say(
            f"warning: {report.conflicting_images} duplicate seeds had different pixels "
            "(kept the first; were the shards made on different hardware?)",
            err=True,
        )
    if report.scores_dropped or report.stale_target_scores:
        say(
            f"note: {report.scores_dropped + report.stale_target_scores} scores were made on "
            "other seeds or pixels than the merged grids keep; run `memgrid score` again",
            err=True,
        )
    if report.reference_matches_stale:
        say(
            f"note: {report.reference_matches_stale} reference matches were made against "
            "another reference pool or other seeds; run `memgrid match` again",
            err=True,
        )
    if report.labels_not_merged:
        say(
            f"note: {report.labels_not_merged} labels in the shards were not merged",
            err=True,
        )
    for problem in report.errors:
        report_error(problem)
    if report.threshold_sets_not_merged:
        say(
            f"note: the shards' {report.threshold_sets_not_merged} threshold sets and their "
            "proposals were not merged; run `memgrid propose` in the merged project "
            "(`memgrid thresholds` lists and imports sets)",
            err=True,
        )
    if report.errors:
        raise typer.Exit(1)


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
        say("No triage results: memgrid generate --triage-steps K --triage-threshold T")
        return
    for r in results:
        state = "kept   " if r.kept else "skipped"
        say(
            f"{state}  wen {r.value:8.4f}  ({r.triage_steps} step(s), threshold "
            f"{r.threshold:g})  {_short(r.prompt)}"
        )
