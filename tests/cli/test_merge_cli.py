"""`memgrid merge` keeps each grid's scores only where they were made on the seeds it keeps,
tells imported grids of one prompt apart by their folder, and says what it did not carry."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from memgrid.core.images import png_checked
from memgrid.core.records import Entity, Score
from memgrid.core.taxonomy import Category
from memgrid.tui.cli import app
from memgrid.tui.services.merging import merge_projects
from memgrid.tui.services.project import create_project, open_project


def seed(value: int) -> Image.Image:
    return Image.new("RGB", (32, 32), (value, 2 * value % 256, 255 - value))


def shard(root: Path, grids: list[tuple[str, str, list[int]]], median: float) -> Path:
    """A project with grids of (prompt, origin, seed colours), each scored `median`."""
    with create_project(root) as project:
        for prompt, origin, colours in grids:
            images = [
                project.images.put(png_checked(seed(value)), index)
                for index, value in enumerate(colours)
            ]
            grid_id, _ = project.store.grids.add(prompt, images, model="m", origin=origin)
            project.store.scores.add(
                Score(grid_id, "phash", {}, "1", {"median_similarity": median})
            )
    return root


def medians(root: Path) -> dict[tuple[str, str], float]:
    with open_project(root) as project:
        return {
            (grid.prompt, grid.origin): score.values["median_similarity"]
            for grid in project.store.grids.all()
            for score in project.store.scores.where(grid_ids=[grid.id])
        }


def test_grids_of_one_prompt_from_two_folders_keep_their_scores(tmp_path: Path) -> None:
    """Keyed without the folder, the two grids looked like one grid grown by the other's
    seeds, and both lost their scores (realgrids-dev: 16 of 142)."""
    source = shard(
        tmp_path / "a",
        [("a rainy street", "folder-1", [1, 2, 3]), ("a rainy street", "folder-2", [4, 5])],
        0.5,
    )
    report = merge_projects([source], tmp_path / "merged")
    assert (report.scores_copied, report.scores_dropped, report.grids_added) == (2, 0, 2)
    assert medians(tmp_path / "merged") == medians(source)


def test_scores_made_on_pixels_the_merge_does_not_keep_are_not_carried(tmp_path: Path) -> None:
    """Two shards with one seed rendered differently: the first's image is kept, and so
    are its scores; the second's scores describe pixels that are not there."""
    first = shard(tmp_path / "first", [("a boat", "", [10, 20, 30])], 0.25)
    second = shard(tmp_path / "second", [("a boat", "", [10, 20, 99])], 0.75)
    report = merge_projects([first, second], tmp_path / "merged")
    assert report.conflicting_images == 1 and report.scores_dropped == 1
    assert medians(tmp_path / "merged") == {("a boat", ""): 0.25}


def test_merge_adds_the_lexicon_and_says_what_it_leaves(tmp_path: Path, runner: CliRunner) -> None:
    source = shard(tmp_path / "a", [("a cat", "", [1, 2])], 0.5)
    with open_project(source) as project:
        project.store.entities.add_many([Entity("Nemo", "work")])
        project.store.thresholds.add("default", {"tau_mem": 0.5}, activate=True)
        project.store.labels.label(1, "ana", Category.NONE)
    into = tmp_path / "merged"
    result = runner.invoke(app, ["merge", "--into", str(into), str(source)])
    assert result.exit_code == 0, result.output
    assert "1 lexicon entries added" in result.stdout
    assert "1 threshold sets and their proposals were not merged" in result.stderr
    assert "1 labels in the shards were not merged" in result.stderr
    with open_project(into) as project:
        assert [entity.name for entity in project.store.entities.all()] == ["Nemo"]


def test_a_shard_missing_an_image_merges_every_other_grid_and_names_the_one_it_could_not(
    tmp_path: Path, runner: CliRunner
) -> None:
    source = shard(
        tmp_path / "a",
        [("a boat", "", [1, 2]), ("a lighthouse", "", [3, 4]), ("a dog", "", [5, 6])],
        0.5,
    )
    with open_project(source) as project:
        lost = project.image_path(project.store.grids.get(2).images[0])
    kept = lost.read_bytes()
    lost.unlink()
    into = tmp_path / "merged"
    result = runner.invoke(app, ["merge", "--into", str(into), str(source)])
    assert result.exit_code == 1
    assert f"{lost}: image file not found (grid 2 of {source} not merged)" in result.stderr
    with open_project(into) as project:
        assert sorted(g.prompt for g in project.store.grids.all()) == ["a boat", "a dog"]
    lost.write_bytes(kept)  # put back: the merge again adds only what was missing
    result = runner.invoke(app, ["merge", "--into", str(into), str(source)])
    assert result.exit_code == 0, result.output
    with open_project(into) as project:
        assert project.store.grids.count == 3


def test_a_shard_that_is_no_project_is_named_before_anything_is_made(
    tmp_path: Path, runner: CliRunner
) -> None:
    source = shard(tmp_path / "a", [("a cat", "", [1, 2])], 0.5)
    missing = tmp_path / "typo"
    into = tmp_path / "merged"
    result = runner.invoke(app, ["merge", "--into", str(into), str(source), str(missing)])
    assert result.exit_code == 1
    assert result.stderr == (
        f"memgrid: error: {missing}: not a memgrid project (no memgrid.db): nothing to merge\n"
    )
    assert not into.exists()
