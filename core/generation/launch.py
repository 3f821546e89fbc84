"""Which shard this process runs when a launcher started it, where shards are written, and
the sbatch script for a Slurm array; pure Python (docs/design.md, "Generation and import").

torchrun and `accelerate launch` set RANK, WORLD_SIZE and LOCAL_RANK; a Slurm array task has
SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT. Either way the shard is a Shard (every N-th
prompt from K), so a torchrun job inside an array task splits its task's share again.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from memgrid.core.errors import InputError
from memgrid.core.generation.settings import Shard

TORCHRUN = "torchrun"
SLURM_ARRAY = "slurm"
SHARDS_SUFFIX = "-shards"
DONE_SUFFIX = ".done.json"


@dataclass(frozen=True)
class Launch:
    """The shard a launcher gave this process, and how to reach the other processes."""

    shard: Shard
    launcher: str  # TORCHRUN, SLURM_ARRAY, or both joined by "+"
    local_rank: int | None = None  # the GPU index on this node under torchrun
    rendezvous: bool = False  # MASTER_ADDR is set: the ranks can wait for one another

    @property
    def merges(self) -> bool:
        """Rank 0 of a torchrun job (not inside an array) merges the shards at the end."""
        return self.launcher == TORCHRUN and self.shard.index == 0


def _integer(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise InputError(name, f"expected an integer in the environment (got {value!r})") from None


def _torchrun_shard(env: Mapping[str, str]) -> tuple[Shard, int | None] | None:
    world = _integer(env, "WORLD_SIZE")
    rank = _integer(env, "RANK")
    if world is None or rank is None or world < 2:
        return None
    if not 0 <= rank < world:
        raise InputError("RANK", f"must be between 0 and WORLD_SIZE-1 (got {rank} of {world})")
    return Shard(rank, world), _integer(env, "LOCAL_RANK")


def _slurm_array_shard(env: Mapping[str, str]) -> Shard | None:
    task = _integer(env, "SLURM_ARRAY_TASK_ID")
    if task is None:
        return None
    count = _integer(env, "SLURM_ARRAY_TASK_COUNT")
    first = _integer(env, "SLURM_ARRAY_TASK_MIN") or 0
    step = _integer(env, "SLURM_ARRAY_TASK_STEP") or 1
    if count is None:
        raise InputError("SLURM_ARRAY_TASK_COUNT", "not set in this array task (Slurm 17.11+)")
    index = (task - first) // step
    if not 0 <= index < count or (task - first) % step:
        raise InputError(
            "SLURM_ARRAY_TASK_ID",
            f"task {task} is not one of {count} evenly spaced tasks from {first} "
            "(use --array=0-N-1, as memgrid's --slurm-script does)",
        )
    return Shard(index, count)


def launch_from_environment(env: Mapping[str, str]) -> Launch | None:
    """The launcher's shard for this process, or None when no launcher started it."""
    ranks = _torchrun_shard(env)
    array = _slurm_array_shard(env)
    rendezvous = bool(env.get("MASTER_ADDR"))
    if ranks is None and array is None:
        return None
    if ranks is None:
        assert array is not None
        return Launch(array, SLURM_ARRAY)
    rank_shard, local_rank = ranks
    if array is None:
        return Launch(rank_shard, TORCHRUN, local_rank, rendezvous)
    # Array task i of A running W ranks: shard i*W + r of A*W, so no prompt runs twice.
    combined = Shard(
        array.index * rank_shard.count + rank_shard.index, array.count * rank_shard.count
    )
    return Launch(combined, f"{SLURM_ARRAY}+{TORCHRUN}", local_rank, rendezvous)


# ---- where shards go -------------------------------------------------------------------------


def shards_folder(project: Path) -> Path:
    """Beside the project: `PROJECT-shards/`, one project folder per shard in it (the path
    resolved first: `--project .` has no name to add the suffix to)."""
    project = project.resolve()
    return project.parent / f"{project.name}{SHARDS_SUFFIX}"


def shard_project(project: Path, shard: Shard) -> Path:
    return shards_folder(project) / f"shard-{shard.index}-of-{shard.count}"


def shard_done_file(project: Path, shard: Shard) -> Path:
    """Written when a shard's run has finished; removed when a run of it begins."""
    return shards_folder(project) / f"shard-{shard.index}-of-{shard.count}{DONE_SUFFIX}"


# ---- Slurm -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlurmOptions:
    tasks: int
    gpus: bool = True
    cpus_per_task: int = 8
    time: str = "24:00:00"
    extra: tuple[str, ...] = ()  # KEY=VALUE pairs, one #SBATCH --KEY=VALUE line each


def slurm_options(tasks: int, gpus: bool, pairs: Sequence[str]) -> SlurmOptions:
    """Options from `--slurm-option KEY=VALUE` pairs; `time` and `cpus-per-task` replace the
    defaults, any other key becomes an `#SBATCH --KEY=VALUE` line (partition, account, ...)."""
    options = SlurmOptions(tasks=tasks, gpus=gpus)
    extra = []
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key or not value or not key.replace("-", "").isalnum():
            raise InputError(
                "--slurm-option", f"expected KEY=VALUE such as partition=gpu (got {pair!r})"
            )
        if key == "time":
            options = replace(options, time=value)
        elif key == "cpus-per-task":
            if not value.isdigit() or int(value) < 1:
                raise InputError(
                    "--slurm-option", f"cpus-per-task must be a positive number (got {value!r})"
                )
            options = replace(options, cpus_per_task=int(value))
        else:
            extra.append(pair)
    return replace(options, extra=tuple(extra))


def slurm_array_script(command: Sequence[str], project: Path, options: SlurmOptions) -> str:
    """A ready `sbatch` script: one array task per shard, each resuming into its own project."""
    if options.tasks < 1:
        raise InputError("--workers", f"must be at least 1 (got {options.tasks})")
    lines = [
        "#!/bin/bash",
        "# memgrid generate as a Slurm array: each task takes its shard from",
        "# SLURM_ARRAY_TASK_ID and writes (or resumes) its own project in",
        f"#   {shards_folder(project)}/",
        "# Submit with `sbatch THIS_FILE`; when every task has finished, gather the shards:",
        f"#   memgrid merge --into {shlex.quote(str(project))}",
        '# or queue that behind the array: sbatch --dependency=afterok:JOBID --wrap "memgrid merge --into ..."',
        "#SBATCH --job-name=memgrid-generate",
        f"#SBATCH --array=0-{options.tasks - 1}",
        "#SBATCH --ntasks=1",
        f"#SBATCH --cpus-per-task={options.cpus_per_task}",
        f"#SBATCH --time={options.time}",
        "#SBATCH --output=memgrid-generate-%A_%a.out",
    ]
    if options.gpus:
        lines.append("#SBATCH --gres=gpu:1")
    lines += [f"#SBATCH --{pair}" for pair in options.extra]
    lines += ["set -euo pipefail", shlex.join(command)]
    return "\n".join(lines) + "\n"
