"""Reference images in merged shards, in `memgrid status` and in `memgrid show`: merge carries
the pool (each reference once) and the matches that still hold, named by the merged
project's ids; a shard's database cannot make it read outside its folder."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memgrid.core.errors import InputError
from memgrid.core.images import png_checked
from memgrid.core.records import Score
from memgrid.tui.cli import app
from memgrid.tui.services.merging import merge_projects
from memgrid.tui.services.project import Project, create_project, open_project
from memgrid.tui.services.references import add_references, match_grids
from tests.references.helpers import copied_seeds, write_files_layout

BARN = {"K1": ("a red barn in a field", "barn")}
PIER = {"K2": ("a wooden pier at dawn", "pier")}
SECRET = b"secret bytes that must not leave their folder"


def make_shard(root: Path, prompt: str, seeds: list, pools: list[dict]) -> Path:
    """A project with one grid, references from each pool in turn, and the grid's match.

    Each pool is one source folder, shared by the shards that add it: a reference's key,
    url and caption are the same in every shard, its id depends on the order of adding.
    """
    with create_project(root) as project:
        images = [project.images.put(png_checked(image), seed) for seed, image in enumerate(seeds)]
        project.store.grids.add(prompt, images, model="m")
        for pool in pools:
            source = root.parent / ("refs-" + "-".join(pool))
            if not source.exists():
                write_files_layout(source, pool)
            add_references(project, source)
        match_grids(project)
    return root


def match_of(project: Project, prompt: str) -> Score:
    grid = next(g for g in project.store.grids.all() if g.prompt == prompt)
    [score] = project.store.scores.where(grid_ids=[grid.id], metric="reference")
    return score


def assert_named_by_this_project(project: Project, score: Score) -> None:
    """Every id in the match is this project's, and says what this project's row says."""
    stored = {r.id: r for r in project.store.references.all()}
    values = score.values
    best = values["reference"]
    assert stored[best["id"]].describe() == {k: best[k] for k in stored[best["id"]].describe()}
    assert (project.root / best["path"]).is_file()
    assert {seed["reference_id"] for seed in values["seeds"]} <= set(stored)
    assert values["references"] == {
        key: stored[int(key)].describe() for key in values["references"]
    }


@pytest.fixture
def two_shards(tmp_path: Path) -> list[Path]:
    # The same pool, added in opposite orders: the shards' ids for a reference differ.
    return [
        make_shard(tmp_path / "a", "a red barn in a field", copied_seeds("barn"), [BARN, PIER]),
        make_shard(tmp_path / "b", "a quiet lake", copied_seeds("pier"), [PIER, BARN]),
    ]


def test_merge_carries_references_and_their_matches_once(
    tmp_path: Path, two_shards: list[Path]
) -> None:
    merged = tmp_path / "merged"
    report = merge_projects(two_shards, merged)
    assert (report.references_added, report.references_present) == (2, 2)
    assert report.reference_matches_stale == 0
    with open_project(merged) as project:
        assert project.store.references.count == 2
        barn, lake = match_of(project, "a red barn in a field"), match_of(project, "a quiet lake")
        assert (barn.values["webster"], barn.values["reference"]["key"]) == ("MV", "K1")
        assert (lake.values["webster"], lake.values["reference"]["key"]) == ("RV", "K2")
        for score in (barn, lake):
            assert_named_by_this_project(project, score)
        # The link to the prompt is the prompt's text (the caption): it came along too.
        assert project.store.references.linked_prompt_count() == 1
        before = [match_of(project, p).values for p in ("a red barn in a field", "a quiet lake")]
    again = merge_projects(two_shards, merged)
    assert (again.references_added, again.references_present) == (0, 4)
    with open_project(merged) as project:
        assert project.store.references.count == 2
        after = [match_of(project, p).values for p in ("a red barn in a field", "a quiet lake")]
    assert after == before


def test_a_match_against_a_smaller_pool_is_not_carried(tmp_path: Path, runner: CliRunner) -> None:
    shards = [
        make_shard(tmp_path / "a", "a red barn in a field", copied_seeds("barn"), [BARN]),
        make_shard(tmp_path / "b", "a quiet lake", copied_seeds("pier"), [BARN, PIER]),
    ]
    merged = tmp_path / "merged"
    result = runner.invoke(app, ["merge", *map(str, shards), "--into", str(merged)])
    assert result.exit_code == 0, result.output
    assert "2 references added" in result.stdout
    assert (
        "note: 1 reference matches were made against another reference pool or other seeds; "
        "run `memgrid match` again" in result.stderr
    )
    with open_project(merged) as project:
        barn = next(g for g in project.store.grids.all() if g.prompt == "a red barn in a field")
        assert project.store.scores.where(grid_ids=[barn.id], metric="reference") == []
        assert_named_by_this_project(project, match_of(project, "a quiet lake"))
        # `memgrid match`, as the note says: only the grid whose match was not carried.
        report = match_grids(project)
        assert (report.grids, report.already_matched) == (1, 1)
        assert match_of(project, "a red barn in a field").values["webster"] != "N"


def test_matches_a_merge_carries_are_current_in_the_merged_project(
    tmp_path: Path, two_shards: list[Path]
) -> None:
    """The shards added one pool in opposite orders (other ids): the merged project's pool is
    the same pool, so its carried matches need no second pass."""
    merged = tmp_path / "merged"
    merge_projects(two_shards, merged)
    with open_project(merged) as project:
        report = match_grids(project)
    assert (report.grids, report.already_matched) == (0, 2)


def test_a_shard_whose_reference_points_out_of_it_merges_nothing_from_outside(
    tmp_path: Path,
) -> None:
    shard = make_shard(tmp_path / "a", "a red barn in a field", copied_seeds("barn"), [BARN])
    secret = tmp_path / "elsewhere" / "secret.png"
    secret.parent.mkdir()
    secret.write_bytes(SECRET)
    connection = sqlite3.connect(shard / "memgrid.db")
    connection.execute("UPDATE reference_images SET path = ?, sha256 = 'f00'", (str(secret),))
    connection.commit()
    connection.close()
    with pytest.raises(InputError, match=r"secret\.png: points outside"):
        merge_projects([shard], tmp_path / "merged")
    merged = [p for p in (tmp_path / "merged" / "images").rglob("*") if p.is_file()]
    assert not any(SECRET in path.read_bytes() for path in merged)
    with open_project(tmp_path / "merged") as project:
        assert project.store.references.count == 0


def test_a_malformed_match_in_a_shard_is_not_carried(tmp_path: Path) -> None:
    shard = make_shard(tmp_path / "a", "a red barn in a field", copied_seeds("barn"), [BARN])
    connection = sqlite3.connect(shard / "memgrid.db")
    connection.execute(
        """UPDATE scores SET "values" = json_set("values", '$.seeds[0].reference_id', 999)
        WHERE metric = 'reference'"""
    )
    connection.commit()
    connection.close()
    report = merge_projects([shard], tmp_path / "merged")
    assert report.reference_matches_stale == 1
    with open_project(tmp_path / "merged") as project:
        assert project.store.references.count == 1
        assert project.store.scores.where(grid_ids=[1], metric="reference") == []


def test_status_counts_references(
    tmp_path: Path, two_shards: list[Path], runner: CliRunner
) -> None:
    facts = json.loads(runner.invoke(app, ["status", "--json", "-p", str(two_shards[0])]).output)
    assert facts["references"] == {
        "stored": 2,
        "linked_prompts": 1,
        "grids_matched": 1,
        "matched_by_type": {"MV": 1},
    }
    text = runner.invoke(app, ["status", "-p", str(two_shards[0])]).output
    assert "│ references          │ 2 stored, 1 prompts linked" in text
    assert "│ grids checked       │ 1 grids (1 MV)" in text


def test_show_prints_the_match_per_seed(two_shards: list[Path], runner: CliRunner) -> None:
    with open_project(two_shards[1]) as project:
        # A caption with a terminal escape: shown escaped, like every user string.
        project.store.write("UPDATE reference_images SET caption = 'a pier\x1b[2J'")
        match_grids(project)
        grid_id = project.store.grids.ids_all()[0]
    output = runner.invoke(app, ["show", str(grid_id), "-p", str(two_shards[1])]).output
    section = output.split("reference (v1)\n")[1].split("\n\n")[0]
    lines = section.splitlines()
    assert lines[0].split() == [
        "type",
        "4/4",
        "seeds",
        "copy",
        "another",
        "training",
        "image",
        "(RV)",
    ]
    assert lines[1].startswith("  best match         reference ")
    assert "key K2" in lines[1] and "caption 'a pier\\x1b[2J'" in lines[1]
    assert "\x1b" not in output  # escaped by the one sanitiser, not sent to the terminal
    assert "{" not in section  # no JSON blob
    per_seed = [line.split() for line in lines if line.startswith("    seed ")]
    assert [words[:3] for words in per_seed] == [["seed", str(s), "RV"] for s in range(4)]
    assert all(
        words[3:6] == ["reference", words[4], "key"] and words[6] == "K2" for words in per_seed
    )
    assert all(words[7] == "distance" and float(words[8]) < 0.15 for words in per_seed)
