"""Generation split over processes: torchrun ranks, Slurm array tasks, submitit and Ray,
each merged project equal to a single-process run of the same request (tiny CPU pipeline)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from memgrid.core.atomic_files import atomic_write
from memgrid.core.errors import InputError
from memgrid.core.generation.launch import (
    SLURM_ARRAY,
    TORCHRUN,
    launch_from_environment,
    shards_folder,
    slurm_options,
)
from memgrid.core.generation.settings import Shard, choose_seeds
from memgrid.core.generation.signal import WEN_METRIC
from memgrid.core.generation.synthetic import save_random_pipeline
from memgrid.tui.cli import app
from memgrid.tui.services import scale
from memgrid.tui.services.generation import GenerateRequest
from memgrid.tui.services.project import open_project
from memgrid.tui.services.scale import merge_shards
from tests.conftest import interrupt_at_call
from tests.gen.test_cli_generate import PROMPTS, ROOT, generate_args, invoke, write_prompts

# ---- which shard a launcher gives -----------------------------------------------------------


def test_launchers_name_the_shard_from_their_environment() -> None:
    assert launch_from_environment({}) is None
    assert launch_from_environment({"RANK": "0", "WORLD_SIZE": "1"}) is None  # one process
    ranks = launch_from_environment(
        {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1"}
    )
    assert ranks is not None
    assert (ranks.shard, ranks.launcher, ranks.local_rank) == (Shard(3, 4), TORCHRUN, 1)
    assert ranks.rendezvous and not ranks.merges
    assert launch_from_environment({"RANK": "0", "WORLD_SIZE": "2"}).merges  # type: ignore[union-attr]
    array = launch_from_environment({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "5"})
    assert array is not None and (array.shard, array.launcher) == (Shard(2, 5), SLURM_ARRAY)
    # --array=1-9:2 gives tasks 1, 3, 5, 7, 9: task 7 is the fourth.
    stepped = {
        "SLURM_ARRAY_TASK_ID": "7",
        "SLURM_ARRAY_TASK_COUNT": "5",
        "SLURM_ARRAY_TASK_MIN": "1",
        "SLURM_ARRAY_TASK_STEP": "2",
    }
    assert launch_from_environment(stepped).shard == Shard(3, 5)  # type: ignore[union-attr]
    # torchrun with 2 ranks inside array task 1 of 3: shard 1*2 + rank of 6.
    both = launch_from_environment(
        {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "3", "RANK": "1", "WORLD_SIZE": "2"}
    )
    assert both is not None and both.shard == Shard(3, 6) and not both.merges
    for bad in (
        {"RANK": "2", "WORLD_SIZE": "2"},
        {"RANK": "x", "WORLD_SIZE": "2"},
        {"SLURM_ARRAY_TASK_ID": "1"},
        {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "2"},
    ):
        with pytest.raises(InputError):
            launch_from_environment(bad)


def test_slurm_options_and_bad_pairs() -> None:
    options = slurm_options(3, True, ["partition=gpu", "time=2:00:00", "cpus-per-task=4"])
    assert (options.time, options.cpus_per_task, options.extra) == (
        "2:00:00",
        4,
        ("partition=gpu",),
    )
    for bad in ("partition", "=gpu", "cpus-per-task=many", "a b=c"):
        with pytest.raises(InputError, match="--slurm-option"):
            slurm_options(1, True, [bad])


# ---- what a merged project holds ----------------------------------------------------------------


def contents(root: Path) -> dict[tuple[str, str, int], tuple[str, Any]]:
    """(prompt, model, seed) -> (image sha256, the grid's wen first-step value).

    The value compares to 1e-5: a merge recomputes it from the per-seed norms, which are
    stored to six digits.
    """
    with open_project(root) as project:
        found = {}
        for grid in project.store.grids.all():
            (wen,) = project.store.scores.where(grid_ids=[grid.id], metric=WEN_METRIC)
            for image in grid.images:
                key = (grid.prompt, grid.model, image.seed)
                found[key] = (image.sha256, pytest.approx(wen.values["first_step"], rel=1e-5))
        return found


@pytest.fixture(scope="module")
def prompts_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_prompts(tmp_path_factory.mktemp("prompts"), [*PROMPTS, "a lighthouse in a storm"])


@pytest.fixture(scope="module")
def single_process_run(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, prompts_file: Path
) -> dict[tuple[str, str, int], tuple[str, Any]]:
    """What one process makes of the request the tests split (built once for the module)."""
    root = tmp_path_factory.mktemp("single") / "project"
    args = generate_args(tiny_model_dir, root, "--prompts", prompts_file, "--seeds", 2)
    invoke(CliRunner(), args)
    return contents(root)


# ---- torchrun / accelerate launch ----------------------------------------------------------------


@pytest.fixture
def two_rank_args(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path, prompts_file: Path
) -> list[str]:
    """The arguments of a two-rank run into tmp_path/run, its world size set, no rendezvous."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    return generate_args(tiny_model_dir, tmp_path / "run", "--prompts", prompts_file, "--seeds", 2)


def be_rank(monkeypatch: pytest.MonkeyPatch, rank: int) -> None:
    """This process as torchrun's rank `rank` (one rank per node: LOCAL_RANK too)."""
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("LOCAL_RANK", str(rank))


def test_ranks_take_their_shards_and_rank_zero_merges(
    tmp_path: Path,
    runner: CliRunner,
    two_rank_args: list[str],
    single_process_run: dict,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As torchrun runs them, without the rendezvous: one rank after the other."""
    target, args = tmp_path / "run", two_rank_args
    written: list[str] = []

    def recorded_write(path: Path, data: bytes, *, shared: bool = False) -> None:
        written.append(path.name)
        atomic_write(path, data, shared=shared)

    # The done markers go through core/atomic_files, as every whole-or-nothing file does.
    monkeypatch.setattr(scale, "atomic_write", recorded_write)

    def as_rank(rank: int) -> Any:
        be_rank(monkeypatch, rank)
        return runner.invoke(app, args)

    early = as_rank(0)  # rank 1 has not finished: rank 0's shard is kept, nothing merged
    assert early.exit_code == 1
    assert (
        early.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "shard(s) 1 of 2 have not finished; rerun them (a rerun resumes) or name the "
            "finished projects to merge"
        )
    )
    assert not target.exists()
    one = as_rank(1)
    assert one.exit_code == 0, one.output
    assert "[torchrun shard 1/2] 2 grids written (4 images" in one.stdout
    last = as_rank(0)
    assert last.exit_code == 0, last.output
    assert "[torchrun shard 0/2] 0 grids written" in last.stdout  # resumed, then merged
    assert "Merged 2 projects into" in last.stderr
    shards = tmp_path / "run-shards"
    assert sorted(p.name for p in shards.iterdir()) == [
        "shard-0-of-2",
        "shard-0-of-2.done.json",
        "shard-1-of-2",
        "shard-1-of-2.done.json",
    ]
    # Rank 0 marked its shard before it found rank 1 unfinished, and again when it resumed.
    assert written == ["shard-0-of-2.done.json", "shard-1-of-2.done.json", "shard-0-of-2.done.json"]
    with open_project(shards / "shard-1-of-2") as shard:
        assert [g.prompt for g in shard.store.grids.all()] == [
            PROMPTS[1],
            "a lighthouse in a storm",
        ]
    assert contents(target) == single_process_run


@pytest.mark.slow  # two processes import torch and load the model
def test_torchrun_ranks_wait_for_each_other_and_rank_zero_merges(
    tmp_path: Path, tiny_model_dir: Path, prompts_file: Path, single_process_run: dict
) -> None:
    """A real `torchrun --nproc-per-node 2`: the ranks meet at a gloo barrier (loopback)."""
    target = tmp_path / "run"
    args = generate_args(tiny_model_dir, target, "--prompts", prompts_file, "--seeds", 2)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    finished = subprocess.run(
        [*launcher, "--nproc-per-node", "2", "-m", "memgrid.tui", *args],
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "Merged 2 projects into" in finished.stderr
    # Each rank ran its own process (its own CPU kernels): the same grids and seeds merged.
    assert contents(target).keys() == single_process_run.keys()


# ---- Slurm ---------------------------------------------------------------------------------------


def test_the_printed_sbatch_script_runs_each_array_task_and_merge_gathers_them(
    tmp_path: Path,
    runner: CliRunner,
    tiny_model_dir: Path,
    prompts_file: Path,
    single_process_run: dict,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = tmp_path / "run"
    args = generate_args(tiny_model_dir, target, "--prompts", prompts_file, "--seeds", 2)
    options = ["--workers", "2", "--slurm-option", "partition=gpu", "--slurm-option", "time=2:00"]
    script = invoke(runner, [*args, "--slurm-script", *options]).stdout
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    for expected in ("--array=0-1", "--partition=gpu", "--time=2:00", "--cpus-per-task=8"):
        assert f"#SBATCH {expected}" in lines
    assert not any("gres" in line for line in lines)  # --device cpu asks for no GPU
    assert f"#   memgrid merge --into {target}" in lines
    assert not target.exists() and not (tmp_path / "run-shards").exists()
    command = shlex.split(lines[-1])
    assert command[:3] == [sys.executable, "-m", "memgrid.tui"]
    assert command[command.index("--model") + 1] == str(tiny_model_dir.resolve())
    assert command[command.index("--seed-list") + 1] == "0-1"

    merge = ["merge", "--into", str(target)]
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "2")
    for task in ("0", "1"):
        monkeypatch.setenv("SLURM_ARRAY_TASK_ID", task)
        result = invoke(runner, command[3:])
        assert f"[slurm shard {task}/2]" in result.stdout
        if task == "0":
            waiting = runner.invoke(app, merge)
            assert waiting.exit_code == 1
            assert "shard(s) 1 of 2 have not finished" in waiting.stderr
            assert waiting.stderr.count("\n") == 1 and not target.exists()
    assert "Merged 2 projects" in invoke(runner, merge).stdout
    assert contents(target) == single_process_run


def test_submitit_submits_one_array_task_per_shard(
    tmp_path: Path, tiny_model_dir: Path, prompts_file: Path, single_process_run: dict
) -> None:
    """submitit's debug executor runs the array's tasks in this process."""
    target = tmp_path / "run"
    request = GenerateRequest(
        model=str(tiny_model_dir),
        seeds=choose_seeds(2, None),
        steps=2,
        device="cpu",
        prompts_file=prompts_file,
    )
    options = slurm_options(2, False, ["partition=gpu"])
    jobs = scale.submit_slurm(request, target, options, cluster="debug")
    reports = [job.result() for job in jobs]
    assert [report["grids_written"] for report in reports] == [2, 2]
    scale.merge_shards(target)
    assert contents(target) == single_process_run


# ---- Ray -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A local Ray instance on two CPUs, stopped after this module's tests."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_ctrl_c_while_rank_zero_merges_says_what_the_shards_keep(
    tmp_path: Path,
    runner: CliRunner,
    two_rank_args: list[str],
    single_process_run: dict,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target, args = tmp_path / "run", two_rank_args
    for rank in (1, 0):
        be_rank(monkeypatch, rank)
        if rank == 0:
            interrupt_at_call(monkeypatch, scale, "merge_shards")
        result = runner.invoke(app, args)
    assert result.exit_code == 130
    assert result.stderr.strip().splitlines()[-1] == (
        "memgrid: error: memgrid generate: interrupted: each shard's grids so far are stored "
        f"in {tmp_path.resolve() / 'run-shards'}; running it again with as many shards (the same "
        "--workers, or launcher world size) goes on from there"
    )
    monkeypatch.setattr(scale, "merge_shards", merge_shards)
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "[torchrun shard 0/2] 0 grids written" in again.stdout
    assert contents(target) == single_process_run


def test_the_shards_of_the_current_folder_go_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "project").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    assert shards_folder(Path(".")) == tmp_path.resolve() / "project-shards"


def test_ctrl_c_during_a_ray_run_says_what_the_shards_keep(
    tmp_path: Path,
    runner: CliRunner,
    tiny_model_dir: Path,
    prompts_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ray's driver ends its tasks when it stops; what they wrote stays in the shards."""
    interrupt_at_call(monkeypatch, scale, "run_on_ray")
    target = tmp_path / "run"
    args = generate_args(tiny_model_dir, target, "--prompts", prompts_file, "--ray")
    result = runner.invoke(app, args)
    assert result.exit_code == 130
    assert result.stderr.strip() == (
        "memgrid: error: memgrid generate: interrupted: each shard's grids so far are stored "
        f"in {tmp_path.resolve() / 'run-shards'}; running it again with as many shards (the same "
        "--workers, or launcher world size) goes on from there"
    )


@pytest.mark.slow  # starts Ray, and each task's worker imports torch and diffusers
def test_a_ray_run_of_two_tasks_equals_a_single_process_run(
    local_ray: None,
    tmp_path: Path,
    runner: CliRunner,
    tiny_model_dir: Path,
    prompts_file: Path,
) -> None:
    import torch

    target = tmp_path / "run"
    args = generate_args(tiny_model_dir, target, "--prompts", prompts_file, "--seeds", 2)
    result = invoke(runner, [*args, "--ray", "--workers", "2"])
    assert "ray: 2 task(s) on CPUs" in result.stderr
    assert "2 shards: 4 grids written (8 images)" in result.stdout
    assert "Merged 2 projects into" in result.stdout
    # The same request in this process, with the CPU kernels a Ray worker uses (oneDNN).
    single = tmp_path / "single"
    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = True
    try:
        invoke(
            runner, generate_args(tiny_model_dir, single, "--prompts", prompts_file, "--seeds", 2)
        )
    finally:
        torch.backends.mkldnn.enabled = previous
    assert contents(target) == contents(single)
    rerun = invoke(runner, [*args, "--ray", "--workers", "2", "--json"])
    assert '"grids_written": 0' in rerun.stdout  # each task resumed its finished shard


# ---- identity by weights ---------------------------------------------------------------------------


def test_a_copied_model_folder_resumes_and_merges(
    tmp_path: Path, runner: CliRunner, tiny_model_dir: Path, prompts_file: Path
) -> None:
    """Each node's local copy of the weights is the same model; other weights are not."""
    copy = tmp_path / "node-local" / "tiny-sd"
    shutil.copytree(tiny_model_dir, copy)
    (copy / "v1-5-pruned.ckpt").write_bytes(b"a checkpoint the pipeline does not load")
    (copy / "unet" / "diffusion_pytorch_model.fp16.safetensors").write_bytes(b"a variant")
    project = tmp_path / "project"
    common = ("--prompts", prompts_file, "--seeds", 2)
    invoke(runner, generate_args(tiny_model_dir, project, *common))
    again = invoke(runner, generate_args(copy, project, *common))
    assert "0 grids written" in again.stdout and "4 already complete" in again.stdout

    first, second = tmp_path / "a", tmp_path / "b"
    invoke(runner, generate_args(tiny_model_dir, first, *common, "--shard", "0/2"))
    invoke(runner, generate_args(copy, second, *common, "--shard", "1/2"))
    merged = invoke(runner, ["merge", str(first), str(second), "--into", str(tmp_path / "m")])
    assert "4 grids added" in merged.stdout

    other = save_random_pipeline(tmp_path / "other-weights", seed=1)
    invoke(runner, generate_args(other, tmp_path / "c", *common, "--shard", "1/2"))
    refused = runner.invoke(app, ["merge", str(first), str(tmp_path / "c"), "--into", "x"])
    assert refused.exit_code == 1 and refused.stderr.count("\n") == 1
    assert "mismatched generation settings" in refused.stderr
    assert '(model "sha256:' in refused.stderr  # names what differs: the weights
