"""`memgrid score` and `memgrid show` on a project whose grids have a known truth."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from memgrid.core.demo import photo, scene, stamp, with_noise
from memgrid.core.metrics.keypoints import MAX_SEEDS
from memgrid.core.metrics.tiled_l2 import TiledL2
from memgrid.core.records import Proposal, Reason
from memgrid.core.taxonomy import Category, Feature
from memgrid.tui.cli import app
from memgrid.tui.commands.scoring import heatmap_rows
from memgrid.tui.errors import ERROR_LINE
from memgrid.tui.services.project import Project, open_project

# The tiny open_clip model the clip metric's tests build, reused here.
from tests.conftest import interrupt_at_call
from tests.core.test_clip_sscd import TINY_MODEL, tiny_weights  # noqa: F401

SEEDS = 6
# At the demo's 256 px one tile of the 8x8 region map is 32 px: rows 6-7, columns 4-7.
MARK_BOX = (128, 192, 255, 255)
COPY_PROMPT = "a living room with a grey sofa"
TEMPLATE_PROMPT = "a mountain landscape at sunrise"
VARIED_PROMPT = "a forest path in autumn"


def add_grid(project: Project, prompt: str, images: list[Image.Image], first_seed: int = 0) -> int:
    stored = [project.images.put_image(image, first_seed + i) for i, image in enumerate(images)]
    grid_id, _ = project.store.grids.add(prompt, stored, model="test", source="test")
    return grid_id


@pytest.fixture
def scored_project(project: Project) -> Path:
    """Three grids: one photo in every seed, a fixed mark on varied scenes, free variation."""
    add_grid(project, COPY_PROMPT, [with_noise(photo("sofa"), s) for s in range(SEEDS)])
    add_grid(
        project,
        TEMPLATE_PROMPT,
        [stamp(scene(("mountain", s)), "MARK", MARK_BOX, "mark") for s in range(SEEDS)],
    )
    add_grid(project, VARIED_PROMPT, [noise(s) for s in range(SEEDS)])
    return project.root


def noise(seed: int) -> Image.Image:
    """Free variation everywhere: with six seeds, drawn scenes can agree on a tile by chance."""
    pixels = np.random.default_rng(seed).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


@pytest.fixture
def no_hub_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Point the weight caches at empty folders, so no machine's downloads leak in."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def run_json(runner: CliRunner, *args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def values_of(root: Path, prompt: str, metric: str) -> dict:
    with open_project(root) as opened:
        grid_id = opened.store.grids.find(prompt, "test")
        (score,) = opened.store.scores.where(grid_ids=[grid_id], metric=metric)
    assert score.available
    return score.values


def test_score_finds_the_constructed_truth(scored_project: Path, runner: CliRunner):
    report = run_json(
        runner, "score", "-p", str(scored_project), "--metric", "tiled-l2,phash", "-j", "2"
    )
    assert (report["grids_scored"], report["scores_written"], report["errors"]) == (3, 6, [])
    copy = values_of(scored_project, COPY_PROMPT, "tiled-l2")
    assert (copy["clique_share"], copy["extent"]) == (1.0, 1.0)
    template = values_of(scored_project, TEMPLATE_PROMPT, "tiled-l2")
    assert template["clique_share"] == 1 / SEEDS
    assert template["region_bbox"] == [6, 4, 7, 7]
    assert template["extent"] == pytest.approx(8 / (64 * template["textured_share"]))
    varied = values_of(scored_project, VARIED_PROMPT, "tiled-l2")
    assert (varied["clique_share"], varied["extent"], varied["region_bbox"]) == (
        1 / SEEDS,
        0.0,
        None,
    )
    assert values_of(scored_project, COPY_PROMPT, "phash")["clique_share"] == 1.0
    assert values_of(scored_project, VARIED_PROMPT, "phash")["clique_share"] == 1 / SEEDS


def test_score_is_resumable_and_rescore_redoes(scored_project: Path, runner: CliRunner):
    args = ["score", "-p", str(scored_project), "--metric", "tiled-l2"]
    assert run_json(runner, *args)["grids_scored"] == 3
    again = run_json(runner, *args)
    assert (again["grids_pending"], again["grids_scored"]) == (0, 0)
    assert run_json(runner, *args, "--metric", "tiled-l2,phash")["grids_scored"] == 3
    assert run_json(runner, *args, "--rescore")["grids_scored"] == 3


def test_a_grid_that_gains_seeds_is_rescored(scored_project: Path, runner: CliRunner):
    args = ["score", "-p", str(scored_project), "--metric", "tiled-l2"]
    run_json(runner, *args)
    with open_project(scored_project) as opened:
        add_grid(opened, VARIED_PROMPT, [noise(SEEDS)], first_seed=SEEDS)
    report = run_json(runner, *args)
    assert (report["grids_pending"], report["grids_scored"]) == (1, 1)
    assert values_of(scored_project, VARIED_PROMPT, "tiled-l2")["n_seeds"] == SEEDS + 1


def test_keypoints_on_a_sample_of_a_large_grid_are_resumable(project: Project, runner: CliRunner):
    """Keypoints match at most MAX_SEEDS seeds of a grid; the score still covers the grid, so
    a second run has nothing to do, and a seed added later makes it current no longer."""
    large = MAX_SEEDS + 2
    add_grid(project, VARIED_PROMPT, [noise(s) for s in range(large)])
    args = ["score", "-p", str(project.root), "--metric", "keypoints"]
    assert run_json(runner, *args)["grids_scored"] == 1
    again = run_json(runner, *args)
    assert (again["grids_pending"], again["grids_scored"]) == (0, 0)
    add_grid(project, VARIED_PROMPT, [noise(large)], first_seed=large)
    assert run_json(runner, *args)["grids_scored"] == 1
    values = values_of(project.root, VARIED_PROMPT, "keypoints")
    assert (values["n_seeds"], values["seeds_matched"], values["grid_seeds"]) == (
        MAX_SEEDS,
        MAX_SEEDS,
        large + 1,
    )


def interrupt_at_second_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while the second chunk (of one grid each) is being written."""
    from memgrid.tui.services import scoring

    monkeypatch.setattr(scoring, "IMAGES_PER_CHUNK", SEEDS)
    interrupt_at_call(monkeypatch, scoring, "_write_chunk", call=2)


def interrupted_line(result) -> str:
    assert result.exit_code == 130
    (line,) = result.stderr.strip().splitlines()
    assert ERROR_LINE.match(line)["where"] == "memgrid score", line
    return line


@pytest.mark.parametrize("json_output", [False, True])
def test_an_interrupted_score_says_what_it_kept(
    scored_project: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch, json_output: bool
):
    """Ctrl-C mid-run: the grids already written stay stored, and the one line says so."""
    interrupt_at_second_write(monkeypatch)
    args = ["score", "-p", str(scored_project), "--metric", "tiled-l2", "-j", "1"]
    line = interrupted_line(runner.invoke(app, args + (["--json"] if json_output else [])))
    assert line.endswith(
        "interrupted: 1 of 3 grids were scored and are stored; running it again goes on from there"
    )
    monkeypatch.undo()
    report = run_json(runner, *args)
    assert (report["grids_pending"], report["grids_scored"]) == (2, 2)


def test_an_interrupted_score_counts_a_failed_grid_apart(
    scored_project: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
):
    with open_project(scored_project) as opened:
        first = opened.store.grids.get(opened.store.grids.ids_all()[0])
        broken = opened.image_path(first.images[0])
    broken.chmod(0o644)
    broken.write_bytes(b"not a picture")
    interrupt_at_second_write(monkeypatch)
    args = ["score", "-p", str(scored_project), "--metric", "tiled-l2", "-j", "1"]
    line = interrupted_line(runner.invoke(app, args))
    assert "interrupted: 0 of 3 grids were scored and are stored (1 failed on a bad image)" in line


@pytest.mark.parametrize(
    ("module", "step"),
    [
        ("memgrid.tui.commands.scoring", "build_metrics"),  # while a model loads
        ("memgrid.tui.services.scoring", "_plan"),  # while the run is planned
    ],
)
def test_a_score_interrupted_before_any_grid_says_so(
    scored_project: Path,
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    step: str,
):
    interrupt_at_call(monkeypatch, importlib.import_module(module), step)
    line = interrupted_line(runner.invoke(app, ["score", "-p", str(scored_project)]))
    assert line.endswith("interrupted: no grid was scored yet; running it again goes on from there")


def test_clip_without_weights_is_stored_unavailable(
    scored_project: Path, runner: CliRunner, no_hub_weights: None
):
    result = runner.invoke(app, ["score", "-p", str(scored_project)])
    assert result.exit_code == 0, result.output
    assert "clip unavailable on 3 grids" in result.stderr
    assert "not in the local Hugging Face cache" in result.stderr
    with open_project(scored_project) as opened:
        grid_id = opened.store.grids.find(COPY_PROMPT, "test")
        clip = opened.store.scores.where(grid_ids=[grid_id], metric="clip")[0]
        assert {s.metric for s in opened.store.scores.where(grid_ids=[grid_id]) if s.available} == {
            "tiled-l2",
            "phash",
            "keypoints",
            "gradients",
        }
    assert (clip.available, clip.values) == (False, {})
    assert "hf download laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in clip.note
    # The next run leaves the stored "unavailable" rows alone while the weights are still
    # missing, and says so.
    again = runner.invoke(app, ["score", "-p", str(scored_project)])
    assert again.exit_code == 0, again.output
    assert "clip unavailable on 3 grids kept as stored" in again.stderr
    assert "0 grids" in again.stdout and "3 already scored" in again.stdout
    report = run_json(runner, "score", "-p", str(scored_project))
    assert (report["grids_pending"], report["scores_written"]) == (0, 0)
    assert report["held_unavailable"] == {"clip": 3}


def test_held_unavailable_grids_are_scored_once_the_weights_appear(
    scored_project: Path,
    runner: CliRunner,
    no_hub_weights: None,
    tiny_weights: dict[str, Path],  # noqa: F811
):
    import huggingface_hub.constants

    repo = "memgrid/tiny-clip"
    args = [
        "score",
        "-p",
        str(scored_project),
        "--metric",
        "clip",
        "--clip-model",
        f"hf-hub:{repo}",
    ]
    first = run_json(runner, *args)
    assert first["unavailable_grids"] == {"clip": 3}
    with open_project(scored_project) as opened:
        stored_at = opened.store.db.execute("SELECT created_at FROM scores").fetchall()
    assert run_json(runner, *args)["held_unavailable"] == {"clip": 3}
    with open_project(scored_project) as opened:
        assert opened.store.db.execute("SELECT created_at FROM scores").fetchall() == stored_at
    # The weights arrive in the Hugging Face cache, laid out as a download would leave them.
    cached = Path(huggingface_hub.constants.HF_HUB_CACHE) / "models--memgrid--tiny-clip"
    (cached / "refs").mkdir(parents=True)
    (cached / "refs" / "main").write_text("0" * 40)
    shutil.copytree(tiny_weights["dir"], cached / "snapshots" / ("0" * 40))
    last = run_json(runner, *args)
    assert (last["grids_scored"], last["unavailable"], last["held_unavailable"]) == (3, {}, {})
    assert values_of(scored_project, COPY_PROMPT, "clip")["n_seeds"] == SEEDS


def test_clip_from_a_local_checkpoint_caches_embeddings(
    scored_project: Path,
    runner: CliRunner,
    tiny_weights: dict[str, Path],  # noqa: F811
):
    args = ["score", "-p", str(scored_project), "--metric", "clip", "--clip-model", TINY_MODEL]
    report = run_json(runner, *args, "--clip-pretrained", str(tiny_weights["pt"]))
    assert report["unavailable"] == {} and report["grids_scored"] == 3
    with open_project(scored_project) as opened:
        stored = opened.store.db.execute("SELECT count(*) FROM embeddings").fetchone()[0]
        unique_images = opened.store.db.execute(
            "SELECT count(DISTINCT sha256) FROM images"
        ).fetchone()[0]
    assert stored == unique_images
    assert values_of(scored_project, COPY_PROMPT, "clip")["median_similarity"] > 0.9


def test_bad_image_fails_its_grid_only(scored_project: Path, runner: CliRunner):
    with open_project(scored_project) as opened:
        grid = opened.store.grids.get(opened.store.grids.find(TEMPLATE_PROMPT, "test"))
        broken = opened.image_path(grid.images[2])
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    result = runner.invoke(app, ["score", "-p", str(scored_project), "--metric", "tiled-l2"])
    assert result.exit_code == 1
    assert broken.name in result.stderr and f"grid {grid.id} not scored" in result.stderr
    assert "Scored 2 grids" in result.stdout


def test_option_mistakes_are_one_line_errors(scored_project: Path, runner: CliRunner, tmp_path):
    result = runner.invoke(app, ["score", "-p", str(scored_project), "--metric", "ssim"])
    assert result.exit_code == 1 and "unknown metric 'ssim'" in result.stderr
    missing = tmp_path / "missing.pt"
    result = runner.invoke(
        app,
        ["score", "-p", str(scored_project), "--metric", "clip", "--clip-pretrained", str(missing)],
    )
    assert result.exit_code == 1 and "missing.pt: CLIP checkpoint not found" in result.stderr
    result = runner.invoke(app, ["score", "-p", str(scored_project), "--sscd", str(missing)])
    assert result.exit_code == 1 and "SSCD TorchScript model not found" in result.stderr


def test_show_prints_scores_region_map_and_reasons(scored_project: Path, runner: CliRunner):
    run_json(runner, "score", "-p", str(scored_project), "--metric", "tiled-l2,phash")
    with open_project(scored_project) as opened:
        grid_id = opened.store.grids.find(TEMPLATE_PROMPT, "test")
        thresholds = opened.store.thresholds.add("v0", {"tau_mem": 0.15}, activate=True)
        opened.store.proposals.add(
            Proposal(
                grid_id=grid_id,
                threshold_set_id=thresholds.id,
                category=Category.UNINTENDED,
                features=(Feature(Category.UNINTENDED, "fixed mark", (54, 55)),),
                reasons=(Reason("region", "a fixed region bottom right", 0.125, 0.05),),
            )
        )
    result = runner.invoke(app, ["show", str(grid_id), "-p", str(scored_project)])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert TEMPLATE_PROMPT in text
    assert f"tiled-l2 (v{TiledL2.version})" in text and "phash (v1)" in text
    assert "region_bbox" in text and "[6, 4, 7, 7]" in text
    assert "[█][█][█][█]" in text  # the mark's tiles, in the region, fully consistent
    assert "proposal (v0 v0): unintended" in text
    assert "+ a fixed region bottom right" in text
    facts = run_json(runner, "show", str(grid_id), "-p", str(scored_project))
    assert facts["grid"]["prompt"] == TEMPLATE_PROMPT and facts["grid"]["seeds"] == list(range(6))
    tiled = next(score for score in facts["scores"] if score["metric"] == "tiled-l2")
    assert np.array(tiled["heatmap"]).shape == (8, 8)
    assert facts["proposal"]["category"] == "unintended"
    assert facts["proposal"]["reasons"][0]["signal"] == "region"


def test_show_an_unscored_grid_and_a_missing_one(scored_project: Path, runner: CliRunner):
    result = runner.invoke(app, ["show", "1", "-p", str(scored_project)])
    assert result.exit_code == 0
    assert "not scored yet" in result.stdout and "proposal: none yet" in result.stdout
    assert run_json(runner, "show", "1", "-p", str(scored_project))["proposal"] is None
    missing = runner.invoke(app, ["show", "99", "-p", str(scored_project)])
    assert (
        missing.exit_code == 1 and "memgrid: error: grid 99: no grid with this id" in missing.stderr
    )


def test_heatmap_rows_shade_by_share_and_mark_the_region():
    assert heatmap_rows([[0.0, 1.0], [0.5, 0.2]], region_tiles=[1]) == ["   [█]", " ▒▒ ░░"]


def test_status_says_when_scores_are_out_of_date_and_score_suggests_propose(
    scored_project: Path, runner: CliRunner
):
    """After an upgrade that changes a metric's version, `status` says so, `score` redoes
    those grids only, and since proposals were made on the old scores it says to propose."""
    status = ["status", "-p", str(scored_project)]
    assert run_json(runner, *status)["grids_needing_scores"]["tiled-l2"] == 3
    weights_free = "tiled-l2,phash,keypoints,gradients"
    run_json(runner, "score", "-p", str(scored_project), "--metric", weights_free)
    facts = run_json(runner, *status)
    assert set(facts["grids_needing_scores"].values()) == {0}
    assert "current" in runner.invoke(app, status).output
    runner.invoke(app, ["propose", "-p", str(scored_project)])
    with open_project(scored_project) as opened, opened.store.atomic():
        opened.store.db.execute("UPDATE scores SET version = '0' WHERE metric = 'keypoints'")
    assert run_json(runner, *status)["grids_needing_scores"]["keypoints"] == 3
    assert "3 grids to score: memgrid score" in runner.invoke(app, status).output
    result = runner.invoke(app, ["score", "-p", str(scored_project), "--metric", weights_free])
    assert result.exit_code == 0, result.output
    assert "Scored 3 grids" in result.output and "next: memgrid propose" in result.output
