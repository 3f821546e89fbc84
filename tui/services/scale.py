"""Generation on many processes: a shard per torchrun rank, Slurm array task or Ray task.

Every way out ends in the same two steps: `run_shard` generates (or resumes) one shard into
its own project beside the target (PROJECT-shards/shard-K-of-N) and marks it done, and
`merge_shards` folds the finished shards into the target. Shard projects are ordinary
resumable projects, so a failed task, rank or array element is rerun, not restarted
(docs/design.md, "Generation and import"). torch, ray and submitit load lazily.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from memgrid.core.atomic_files import atomic_write
from memgrid.core.display_text import has_control_characters, printable
from memgrid.core.errors import InputError, MemgridError, ProjectError, UnavailableError
from memgrid.core.generation import loading
from memgrid.core.generation.launch import (
    DONE_SUFFIX,
    TORCHRUN,
    Launch,
    SlurmOptions,
    shard_done_file,
    shard_project,
    shards_folder,
    slurm_array_script,
)
from memgrid.core.generation.pipeline import LoadedModel
from memgrid.core.generation.settings import Shard, format_seed_list
from memgrid.tui.services.generation import (
    GenerateReport,
    GenerateRequest,
    GridProgress,
    check_request,
    generate,
    load_for,
)
from memgrid.tui.services.merging import MergeReport, merge_projects
from memgrid.tui.services.project import create_project

# A task that died (a lost node, a CUDA error) is run again this many times; it resumes.
RAY_TASK_RETRIES = 2
# The ranks of one torchrun job wait for each other this long at the end (gloo's default,
# 30 minutes, is shorter than one rank's share of a large run).
RANK_WAIT = timedelta(days=7)
_SHARD_NAME = re.compile(r"^shard-(\d+)-of-(\d+)$")

Status = Callable[[str], None]


@dataclass
class ScaleReport:
    """What a multi-process run did: each shard's report, and the merge into the project."""

    shards: dict[str, dict[str, Any]] = field(default_factory=dict)
    merge: MergeReport | None = None
    merged_into: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "shards": self.shards,
            "merged_into": str(self.merged_into) if self.merged_into else None,
            "merge": self.merge.__dict__ if self.merge else None,
        }


def require_prompt_file(request: GenerateRequest) -> None:
    if request.prompts_file is None:
        raise InputError(
            "--prompts", "a run split into shards reads its prompts from a file: give --prompts"
        )


# ---- one shard -------------------------------------------------------------------------------


def run_shard(
    project: Path,
    request: GenerateRequest,
    shard: Shard,
    loaded: LoadedModel | None = None,
    on_grid: GridProgress | None = None,
    on_status: Status | None = None,
) -> GenerateReport:
    """Generate (or resume) `shard` into its own project beside `project`, then mark it done."""
    require_prompt_file(request)
    request = replace(request, shard=shard)
    check_request(request)
    done = shard_done_file(project, shard)
    done.unlink(missing_ok=True)
    if loaded is None:
        loaded = load_for(request, on_status)  # before a folder is made for a model that fails
    with create_project(shard_project(project, shard)) as opened:
        report = generate(opened, request, on_grid=on_grid, on_status=on_status, loaded=loaded)
        shared = opened.images.shared
    summary = {
        "shard": str(shard),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **{k: v for k, v in report.to_dict().items() if k != "triage"},
    }
    # Whole or not at all: a marker is what lets the merge take the shard.
    atomic_write(done, json.dumps(summary, indent=2).encode(), shared=shared)
    return report


# ---- gathering and merging ---------------------------------------------------------------------


def finished_shards(project: Path) -> list[Path]:
    """Every shard project of the run beside `project`, all finished, or a one-line error."""
    folder = shards_folder(project)
    found: dict[int, set[int]] = {}
    done: dict[int, set[int]] = {}
    for entry in folder.iterdir() if folder.is_dir() else []:
        name = entry.name.removesuffix(DONE_SUFFIX)
        match = _SHARD_NAME.match(name)
        if match:
            index, count = int(match.group(1)), int(match.group(2))
            target = done if entry.name.endswith(DONE_SUFFIX) else found
            target.setdefault(count, set()).add(index)
    if not found:
        raise ProjectError(f"{folder}: no shard projects to merge (name the projects to merge)")
    if len(found) > 1:
        counts = ", ".join(f"of {count}" for count in sorted(found))
        raise ProjectError(
            f"{folder}: shards of different runs ({counts}); name the projects to merge"
        )
    ((count, _),) = found.items()
    missing = sorted(set(range(count)) - done.get(count, set()))
    if missing:
        listed = ", ".join(map(str, missing))
        raise ProjectError(
            f"{folder}: shard(s) {listed} of {count} have not finished; rerun them "
            "(a rerun resumes) or name the finished projects to merge"
        )
    return [shard_project(project, Shard(index, count)) for index in range(count)]


def merge_shards(project: Path, on_source: Callable[[Path], None] | None = None) -> MergeReport:
    return merge_projects(finished_shards(project), project, on_source)


# ---- torchrun, accelerate launch, Slurm arrays ------------------------------------------------


def rank_device(requested: str, local_rank: int | None) -> str:
    """Under torchrun, `auto` and `cuda` mean this node's GPU number LOCAL_RANK."""
    if local_rank is None or requested not in ("auto", "cuda"):
        return requested
    import torch

    return f"cuda:{local_rank}" if torch.cuda.is_available() else requested


def run_launched(
    launch: Launch,
    request: GenerateRequest,
    project: Path,
    on_grid: GridProgress | None = None,
    on_status: Status | None = None,
) -> tuple[GenerateReport, MergeReport | None]:
    """This process's shard; then, on torchrun's rank 0, the merge once every rank is done."""
    request = replace(request, device=rank_device(request.device, launch.local_rank))
    group = _process_group(launch)
    try:
        report = run_shard(project, request, launch.shard, on_grid=on_grid, on_status=on_status)
        if group is not None:
            group.barrier()  # a rank that failed ends the job (torchrun stops the others)
        merged = merge_shards(project) if launch.merges else None
    finally:
        if group is not None:
            group.destroy_process_group()
    return report, merged


def _process_group(launch: Launch) -> Any:
    """torch.distributed (gloo, CPU only: no tensors move) when the launcher set a rendezvous."""
    if TORCHRUN not in launch.launcher or not launch.rendezvous:
        return None
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo", timeout=RANK_WAIT)
    return dist


# ---- Ray ---------------------------------------------------------------------------------------


def run_on_ray(
    request: GenerateRequest,
    project: Path,
    workers: int | None = None,
    address: str | None = None,
    on_status: Status | None = None,
) -> ScaleReport:
    """One Ray task per shard (a GPU each, or a CPU for --device cpu), then the merge.

    Joins the Ray instance already running in this process, else `address` (None: Ray's
    default, RAY_ADDRESS or this node's cluster, else a new local instance, shut down at the
    end). Tasks write to shared storage, so `project` must be on it for a multi-node cluster.
    """
    require_prompt_file(request)
    check_request(request)
    import ray

    status = on_status or (lambda _message: None)
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        use_gpus = _ray_uses_gpus(request.device, ray.cluster_resources())
        count = workers or (int(ray.cluster_resources().get("GPU", 0)) if use_gpus else 1)
        if count < 1:
            raise InputError("--workers", f"must be at least 1 (got {count})")
        device = "cuda" if use_gpus else "cpu"
        task = ray.remote(_ray_shard_task).options(
            num_gpus=1 if use_gpus else 0,
            num_cpus=1,
            max_retries=RAY_TASK_RETRIES,
            retry_exceptions=[RuntimeError, OSError],
        )
        status(f"ray: {count} task(s) on {'GPUs' if use_gpus else 'CPUs'}")
        shards = [Shard(index, count) for index in range(count)]
        pending = [task.remote(project, replace(request, device=device), s) for s in shards]
        report = ScaleReport()
        try:
            for shard, result in zip(shards, ray.get(pending), strict=True):
                report.shards[str(shard)] = result
        except ray.exceptions.RayTaskError as error:
            cause = getattr(error, "cause", None)
            if isinstance(cause, MemgridError):
                raise cause from None
            raise UnavailableError(f"a Ray task failed: {str(error).splitlines()[0]}") from None
    finally:
        if started:
            ray.shutdown()
    status(f"merging {count} shard(s) into {project}")
    report.merge, report.merged_into = merge_shards(project), project
    return report


def _ray_uses_gpus(device: str, resources: dict[str, float]) -> bool:
    if device == "cpu":
        return False
    gpus = resources.get("GPU", 0)
    if gpus < 1 and device != "auto":
        raise UnavailableError(f"--device {device}: the Ray cluster has no GPUs")
    return gpus >= 1


def _ray_shard_task(project: Path, request: GenerateRequest, shard: Shard) -> dict[str, Any]:
    return run_shard(project, request, shard).to_dict()


# ---- Slurm: a script to submit, or a submission through submitit -------------------------------


def request_arguments(request: GenerateRequest, project: Path) -> list[str]:
    """`memgrid generate` arguments that redo `request` into `project` (paths made absolute)."""
    words = ["generate", "--model", _absolute_if_path(request.model)]
    words += ["--project", str(project.resolve())]
    if request.prompts_file is not None:
        words += ["--prompts", str(request.prompts_file.resolve())]
    words += ["--seed-list", format_seed_list(request.seeds)]
    words += ["--steps", str(request.steps), "--guidance", f"{request.guidance:g}"]
    optional = {
        "--size": request.size,
        "--width": request.width,
        "--height": request.height,
        "--scheduler": request.scheduler,
        "--revision": request.revision,
        "--triage-steps": request.triage_steps,
        "--triage-threshold": request.triage_threshold,
        "--negative-prompt": request.negative_prompt or None,
    }
    for option, value in optional.items():
        if value is not None:
            words += [option, str(value)]
    words += ["--dtype", request.dtype, "--batch", str(request.batch)]
    if request.device not in ("auto", "cuda") and not request.device.startswith("cuda:"):
        words += ["--device", request.device]  # on a GPU node each task has one GPU: auto
    if request.compile:
        words.append("--compile")
    return words


def _absolute_if_path(model: str) -> str:
    folder = loading.model_folder(model)
    return str(folder) if folder is not None else model


def slurm_script(request: GenerateRequest, project: Path, options: SlurmOptions) -> str:
    require_prompt_file(request)
    check_request(request)
    command = [sys.executable, "-m", "memgrid.tui", *request_arguments(request, project)]
    for word in command:
        if has_control_characters(word):  # a script line cannot hold it as typed
            raise InputError(
                printable(word), "a control character cannot go into the sbatch script"
            )
    return slurm_array_script(command, project.resolve(), options)


def submit_slurm(
    request: GenerateRequest, project: Path, options: SlurmOptions, cluster: str | None = None
) -> list[Any]:
    """Submit the array through submitit (the `slurm` extra); returns submitit's jobs.

    `cluster` is submitit's: None picks Slurm when sbatch is there; "debug" runs the tasks
    in this process (the tests).
    """
    require_prompt_file(request)
    check_request(request)
    import submitit

    folder = shards_folder(project.resolve()) / "submitit"
    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    executor.update_parameters(
        name="memgrid-generate",
        timeout_min=_minutes(options.time),
        cpus_per_task=options.cpus_per_task,
        slurm_array_parallelism=options.tasks,
        slurm_additional_parameters=dict(pair.split("=", 1) for pair in options.extra),
        **({"slurm_gpus_per_task": 1} if options.gpus else {}),
    )
    shards = [Shard(index, options.tasks) for index in range(options.tasks)]
    jobs = executor.map_array(
        _submitted_shard, [project.resolve()] * len(shards), [request] * len(shards), shards
    )
    return list(jobs)


def _submitted_shard(project: Path, request: GenerateRequest, shard: Shard) -> dict[str, Any]:
    device = "cpu" if request.device == "cpu" else rank_device("auto", 0)
    return run_shard(project, replace(request, device=device), shard).to_dict()


def _minutes(duration: str) -> int:
    """Slurm's time limit formats (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS) in minutes."""
    try:
        days_text, dash, clock = duration.partition("-")
        if not dash:
            days_text, clock = "0", duration
        parts = [int(part) for part in clock.split(":")]
        if dash:
            parts = [int(days_text) * 24 + parts[0], *parts[1:], 0, 0][:3]
        elif len(parts) < 3:
            parts = [0, *parts, 0][:3]
        hours, minutes, seconds = parts
    except ValueError:
        raise InputError(
            "--slurm-option", f"time: not a Slurm time limit (got {duration!r})"
        ) from None
    return hours * 60 + minutes + (1 if seconds else 0)


def launched_status_prefix(launch: Launch) -> str:
    return f"[{launch.launcher} shard {launch.shard}] "
