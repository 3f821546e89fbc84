"""`memgrid generate` and `memgrid merge` end to end on the tiny pipeline."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memgrid.core.generation.signal import WEN_METRIC
from memgrid.core.taxonomy import Category
from memgrid.tui.cli import app
from memgrid.tui.errors import ERROR_LINE
from memgrid.tui.services.project import open_project
from tests.conftest import interrupt_at_call, vote_of

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ["a red cube on a table", "the Mona Lisa by Leonardo da Vinci", "a dog in the snow"]


def write_prompts(folder: Path, prompts: list[str] = PROMPTS) -> Path:
    path = folder / "prompts.txt"
    path.write_text("\n".join(prompts) + "\n")
    return path


def generate_args(model: Path, project: Path, *extra: object) -> list[str]:
    base = ["generate", "--model", model, "--project", project, "--device", "cpu"]
    return [str(part) for part in (*base, "--steps", 2, *extra)]


def invoke(runner: CliRunner, args: list[str]) -> object:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder.parent).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_generate_stores_grids_images_and_the_wen_score(
    tmp_path: Path, runner: CliRunner, tiny_model_dir: Path
) -> None:
    project_dir = tmp_path / "project"
    prompts = write_prompts(tmp_path, PROMPTS[:2])
    args = generate_args(tiny_model_dir, project_dir, "--prompts", prompts, "--seeds", 3)
    result = invoke(runner, [*args, "--batch", 2])
    assert "2 grids written (6 images" in result.output

    with open_project(project_dir) as project:
        grids = project.store.grids.all()
        assert [grid.prompt for grid in grids] == PROMPTS[:2]
        for grid in grids:
            assert grid.source == "generate" and grid.seeds == [0, 1, 2]
            # Named by its weights: the folder is provenance only.
            assert grid.model == "sha256:" + grid.provenance["weights_sha256"][:16]
            assert grid.provenance["model_path"] == str(tiny_model_dir.resolve())
            assert grid.settings["steps"] == 2 and grid.settings["scheduler"] == "PNDMScheduler"
            assert grid.provenance["safety_checker"] == "off"
            assert len(grid.provenance["weights_sha256"]) == 64
            assert all(project.image_path(image).is_file() for image in grid.images)
            (wen,) = project.store.scores.where(grid_ids=[grid.id], metric=WEN_METRIC)
            assert wen.available and wen.values["n_seeds"] == 3
            assert wen.values["first_step"] > 0 and len(wen.values["per_step"]) >= 2
        first_wen = project.store.scores.where(grid_ids=[grids[0].id], metric=WEN_METRIC)[0].values

    again = invoke(runner, args)
    assert "0 grids written" in again.output and "2 already complete" in again.output

    invoke(runner, generate_args(tiny_model_dir, project_dir, "--seed-list", "0-4"))
    with open_project(project_dir) as project:
        grid = project.store.grids.all()[0]
        assert grid.seeds == [0, 1, 2, 3, 4] and project.store.images.count == 10
        # Provenance names both runs and the seeds each added.
        assert grid.provenance["seeds"] == [0, 1, 2, 3, 4]
        assert [run["seeds"] for run in grid.provenance["runs"]] == [[0, 1, 2], [3, 4]]
        assert grid.provenance["runs"][1]["batch_size"] == 4  # the second run's own batch
        wen = project.store.scores.where(grid_ids=[grid.id], metric=WEN_METRIC)[0].values
        assert wen["n_seeds"] == 5
        assert wen["per_seed_first"][:3] == pytest.approx(first_wen["per_seed_first"], rel=1e-4)


def test_ctrl_c_while_the_model_loads_says_no_grid_was_generated(
    tmp_path: Path, runner: CliRunner, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memgrid.tui.commands import generation

    interrupt_at_call(monkeypatch, generation, "load_for")
    project_dir = tmp_path / "project"
    result = runner.invoke(app, generate_args(tiny_model_dir, project_dir))
    assert result.exit_code == 130, result.output
    assert result.stderr.strip().endswith(
        "memgrid generate: interrupted: no grid was generated yet; running it again goes on "
        "from there"
    )
    assert not project_dir.exists()


@pytest.mark.parametrize("stored_before_ctrl_c", [0, 1])
def test_ctrl_c_says_what_was_kept_and_a_rerun_goes_on(
    tmp_path: Path,
    runner: CliRunner,
    tiny_model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    stored_before_ctrl_c: int,
) -> None:
    from memgrid.tui.services import generation

    interrupt_at_call(monkeypatch, generation, "_store_grid", call=stored_before_ctrl_c + 1)
    project_dir = tmp_path / "project"
    args = generate_args(tiny_model_dir, project_dir, "--prompts", write_prompts(tmp_path))
    result = runner.invoke(app, [*args, "--seeds", 2])
    assert result.exit_code == 130, result.output
    line = result.stderr.strip().splitlines()[-1]
    assert ERROR_LINE.match(line)["where"] == "memgrid generate", line
    kept = (
        "1 of 3 grids were generated and are stored"
        if stored_before_ctrl_c
        else "no grid was generated yet"
    )
    assert line.endswith(f"interrupted: {kept}; running it again goes on from there")

    monkeypatch.undo()
    again = invoke(runner, [*args, "--seeds", 2])
    assert f"{stored_before_ctrl_c} already complete" in again.output
    with open_project(project_dir) as project:
        assert project.store.grids.count == 3 and project.store.images.count == 6


@pytest.mark.slow  # a subprocess loads torch and the model
def test_resume_after_a_kill_mid_run(tmp_path: Path, runner: CliRunner, tiny_model_dir: Path):
    project_dir = tmp_path / "project"
    prompts = write_prompts(tmp_path, [f"prompt number {index}" for index in range(8)])
    args = generate_args(tiny_model_dir, project_dir, "--prompts", prompts, "--seeds", 2)
    args[args.index("--steps") + 1] = "6"
    process = subprocess.Popen(
        [sys.executable, "-m", "memgrid.tui", *args],
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    database = project_dir / "memgrid.db"
    deadline = time.monotonic() + 120
    grids_at_kill = 0
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as connection:
                grids_at_kill = connection.execute("SELECT count(*) FROM grids").fetchone()[0]
        except sqlite3.Error:
            grids_at_kill = 0  # the database or its tables are not there yet
        if grids_at_kill >= 1:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    assert process.wait(timeout=30) == -signal.SIGKILL, process.stderr.read().decode()
    assert 1 <= grids_at_kill < 8

    result = invoke(runner, args)
    assert "already complete" in result.output
    with open_project(project_dir) as project:
        store = project.store
        assert store.grids.count == 8 and store.images.count == 16
        assert store.prompts.count == 8
        rows = store.db.execute("SELECT count(DISTINCT grid_id || '/' || seed) FROM images")
        assert rows.fetchone()[0] == 16
        referenced = {row[0] for row in store.db.execute("SELECT path FROM images")}
        assert all(
            len(store.scores.where(grid_ids=[grid_id], metric=WEN_METRIC)) == 1
            for grid_id in store.grids.ids_all()
        )
    on_disk = files_under(project_dir / "images")
    assert not [name for name in on_disk if "/.tmp-" in name], "a temporary file was left behind"
    assert on_disk == referenced, "every image file is referenced and complete"


def test_shards_merge_without_duplicates(
    tmp_path: Path, runner: CliRunner, tiny_model_dir: Path
) -> None:
    prompts = write_prompts(tmp_path)
    shards = []
    for index in range(2):
        shard_dir = tmp_path / f"shard-{index}"
        extra = ("--prompts", prompts, "--seeds", 2, "--shard", f"{index}/2")
        invoke(runner, generate_args(tiny_model_dir, shard_dir, *extra))
        shards.append(shard_dir)
    with open_project(shards[0]) as first, open_project(shards[1]) as second:
        assert [g.prompt for g in first.store.grids.all()] == [PROMPTS[0], PROMPTS[2]]
        assert [g.prompt for g in second.store.grids.all()] == [PROMPTS[1]]
        shard_shas = {
            (g.prompt, i.seed): i.sha256 for g in first.store.grids.all() for i in g.images
        }

    merged = tmp_path / "merged"
    result = invoke(runner, ["merge", *map(str, shards), "--into", str(merged), "--json"])
    assert json.loads(result.output)["images_added"] == 6
    again = json.loads(
        invoke(runner, ["merge", *map(str, shards), "--into", str(merged), "--json"]).output
    )
    assert again["images_added"] == 0 and again["duplicate_images"] == 6
    assert again["conflicting_images"] == 0
    with open_project(merged) as project:
        grids = project.store.grids.all()
        assert sorted(g.prompt for g in grids) == sorted(PROMPTS)
        assert project.store.images.count == 6 and project.store.prompts.count == 3
        for grid in grids:
            (wen,) = project.store.scores.where(grid_ids=[grid.id], metric=WEN_METRIC)
            assert wen.values["n_seeds"] == 2
            for image in grid.images:
                assert project.image_path(image).is_file()
                if (grid.prompt, image.seed) in shard_shas:
                    assert image.sha256 == shard_shas[(grid.prompt, image.seed)]


def test_merge_refuses_mismatched_settings(
    tmp_path: Path, runner: CliRunner, tiny_model_dir: Path
) -> None:
    prompts = write_prompts(tmp_path, PROMPTS[:1])
    invoke(
        runner, generate_args(tiny_model_dir, tmp_path / "a", "--prompts", prompts, "--seeds", 1)
    )
    other = generate_args(tiny_model_dir, tmp_path / "b", "--prompts", prompts, "--seeds", 1)
    other[other.index("--steps") + 1] = "3"
    invoke(runner, other)
    result = runner.invoke(
        app, ["merge", str(tmp_path / "a"), str(tmp_path / "b"), "--into", str(tmp_path / "m")]
    )
    assert result.exit_code == 1
    assert "mismatched generation settings" in result.output
    assert result.output.strip().count("\n") == 0
    assert not (tmp_path / "m").exists()


def test_triage_generates_only_prompts_above_the_threshold(
    tmp_path: Path, runner: CliRunner, tiny_model_dir: Path
) -> None:
    prompts = write_prompts(tmp_path)
    common = ("--prompts", prompts, "--seeds", 2, "--triage-steps", 1, "--json")
    probe = generate_args(tiny_model_dir, tmp_path / "probe", *common, "--triage-threshold", 1e9)
    report = json.loads(invoke(runner, probe).output)
    assert report["grids_written"] == 0 and len(report["triage"]) == 3
    assert report["unet_evaluations"]["saved"] == 3 * 2 * (2 - 1) * 2
    values = {item["prompt"]: item["wen"] for item in report["triage"]}
    top_prompt = max(values, key=values.__getitem__)

    project_dir = tmp_path / "triaged"
    args = generate_args(
        tiny_model_dir, project_dir, *common[:-1], "--triage-threshold", values[top_prompt]
    )
    result = invoke(runner, args)
    assert "1 of 3 prompts kept, 2 skipped" in result.output
    assert "skipped  wen" in result.output
    with open_project(project_dir) as project:
        (grid,) = project.store.grids.all()
        assert grid.prompt == top_prompt
        (wen,) = project.store.scores.where(grid_ids=[grid.id], metric=WEN_METRIC)
        assert wen.values["first_step"] == pytest.approx(values[top_prompt], rel=1e-5)
        # Every prompt's triage value is in the project, the skipped ones too.
        stored = {r.prompt: r for r in project.store.triage.all()}
        assert {p: r.value for p, r in stored.items()} == pytest.approx(values, rel=1e-9)
        assert {p for p, r in stored.items() if r.kept} == {top_prompt}
        assert all(r.triage_steps == 1 and r.seeds == (0, 1) for r in stored.values())
    status = json.loads(invoke(runner, ["status", "--json", "-p", str(project_dir)]).output)
    assert status["triage"] == {"triaged": 3, "kept": 1, "skipped": 2}
    listed = json.loads(invoke(runner, ["triage", "--json", "-p", str(project_dir)]).output)
    assert sorted(item["wen"] for item in listed) == pytest.approx(sorted(values.values()))
    assert "skipped  wen" in invoke(runner, ["triage", "-p", str(project_dir)]).output
    # Merging shards carries the triage of prompts that got no grid.
    merged = tmp_path / "merged"
    invoke(runner, ["merge", str(project_dir), "--into", str(merged)])
    with open_project(merged) as project:
        assert len(project.store.triage.all()) == 3


def test_a_generated_grid_is_scored_and_proposed_like_an_imported_one(
    tmp_path: Path, runner: CliRunner, tiny_model_dir: Path
) -> None:
    project_dir = tmp_path / "project"
    prompts = write_prompts(tmp_path, PROMPTS[:1])
    invoke(runner, generate_args(tiny_model_dir, project_dir, "--prompts", prompts, "--seeds", 4))
    project_option = ["--project", str(project_dir)]
    scored = invoke(runner, ["score", *project_option, "--metric", "tiled-l2,phash"])
    assert "Scored 1 grid " in scored.output
    invoke(runner, ["propose", *project_option])
    with open_project(project_dir) as project:
        (grid_id,) = project.store.grids.ids_all()
        metrics = {score.metric for score in project.store.scores.where(grid_ids=[grid_id])}
        assert metrics == {"tiled-l2", "phash", WEN_METRIC}
        proposal = project.store.proposals.find(grid_id)
        assert proposal is not None
        assert WEN_METRIC in {reason.signal for reason in proposal.reasons}
    shown = json.loads(invoke(runner, ["show", "1", *project_option, "--json"]).output)
    assert shown["grid"]["source"] == "generate"
    assert asyncio.run(label_first_grid_in_the_app(project_dir)) == grid_id


async def label_first_grid_in_the_app(project_dir: Path) -> int:
    """Open the annotation app on the project, label the grid on screen with `3`."""
    from memgrid.tui.app import make_app
    from tests.app.conftest import settings_for
    from tests.app.pilot_helpers import SIZE, annotate_screen, press, settle

    with open_project(project_dir) as project:
        app = make_app(project, settings_for())
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            screen = annotate_screen(pilot)
            assert screen is not None and screen.view is not None
            shown = screen.view.grid_id
            await press(pilot, "3")
            await settle(pilot)
        label = vote_of(project.store, shown, "alice")
        assert label is not None and label.category is Category.UNINTENDED
        return shown


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (("--model", "{tmp}/missing-model"), "no such model folder"),
        (("--model", "{tmp}"), "no model_index.json"),
        (("--prompts", "{tmp}/absent.txt"), "file not found"),
        (("--prompts", "{tmp}/bad.jsonl"), "invalid JSON"),
        (("--prompts", "{tmp}/empty.txt"), "holds no prompts"),
        (("--shard", "2/2"), "need 0 <= K < N"),
        (("--triage-steps", "1"), "together"),
        (("--seed-list", "3-1"), "not a seed or range"),
        (("--steps", "0"), "at least 1"),
        (("--dtype", "fp8"), "unknown dtype"),
        (("--width", "12"), "--width: must be a positive multiple of 8"),
        (("--device", "gpu0"), "unknown device 'gpu0' (auto, cuda, cuda:N, cpu or mps)"),
        (("--revision", "main"), "--revision: pins a hub id's commit"),
        (("--slurm-option", "partition"), "expected KEY=VALUE"),
    ],
)
def test_bad_inputs_are_one_line_errors(
    tmp_path: Path, runner: CliRunner, tiny_model_dir: Path, extra: tuple[str, str], expected: str
) -> None:
    (tmp_path / "bad.jsonl").write_text('{"prompt": "fine"}\n{broken\n')
    (tmp_path / "empty.txt").write_text("\n\n")
    prompts = write_prompts(tmp_path)
    args = generate_args(tiny_model_dir, tmp_path / "project", "--prompts", prompts)
    option, value = extra
    value = value.format(tmp=tmp_path)
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    if option == "--slurm-option":
        args.append("--slurm-script")
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("memgrid: error:") and expected in result.output
    assert result.output.strip().count("\n") == 0
    assert not (tmp_path / "project").exists(), "a refused run creates no project"
