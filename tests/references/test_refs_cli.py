"""`memgrid refs add` and `memgrid match` from the command line: errors are one line each and
nothing stored is lost; the demo shows a reference beside its copied grids."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from memgrid.core.images import png_checked
from memgrid.core.references.index import DEFAULT_RADIUS
from memgrid.tui.cli import app
from memgrid.tui.services import references as reference_service
from memgrid.tui.services.project import create_project, open_project
from memgrid.tui.services.proposing import propose_all
from memgrid.tui.services.references import add_references, match_grids
from memgrid.tui.services.scoring import MetricOptions, build_metrics, score_project
from tests.conftest import interrupt_at_call
from tests.references.helpers import (
    copied_seeds,
    training_image,
    varied_seeds,
    write_files_layout,
)

BARN = {"K1": ("a red barn in a field", "barn")}
PIER = {"K2": ("a wooden pier at dawn", "pier")}


def test_bad_items_are_reported_and_the_good_ones_stored(tmp_path: Path, runner: CliRunner) -> None:
    project = tmp_path / "project"
    assert runner.invoke(app, ["init", str(project)]).exit_code == 0
    source = write_files_layout(tmp_path / "refs", {"K1": ("a barn", "barn")})
    (source / "00000" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    training_image("pier").save(tmp_path / "outside.png")
    (source / "00000" / "link.png").symlink_to(tmp_path / "outside.png")
    result = runner.invoke(app, ["refs", "add", str(source), "-p", str(project)])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("memgrid: error:")]
    assert len(errors) == 2
    assert any("broken.png: not a readable image" in line for line in errors)
    assert any("link.png: points outside the reference source" in line for line in errors)
    assert "1 references added, 0 already present, 2 failed" in result.output
    with open_project(project) as opened:
        [reference] = opened.store.references.all()
        assert reference.key == "K1" and reference.caption == "a barn"
        assert (opened.root / reference.path).is_file()
        assert reference.path.startswith(f"images/{reference.sha256[:2]}/")


def test_match_without_references_says_what_to_do(tmp_path: Path, runner: CliRunner) -> None:
    project = tmp_path / "project"
    runner.invoke(app, ["init", str(project)])
    result = runner.invoke(app, ["match", "-p", str(project)])
    assert result.exit_code == 1
    assert "no reference images yet; add some with `memgrid refs add SOURCE`" in result.output


def test_the_demo_shows_references_for_its_copied_grids(
    demo_project_dir: Path, runner: CliRunner, tmp_path: Path
) -> None:
    with open_project(demo_project_dir) as opened:
        store = opened.store
        assert store.references.count == 8
        score_project(opened, build_metrics(MetricOptions(names=("tiled-l2", "phash"))))
        match_grids(opened)
        propose_all(opened)
        kinds = {}
        for grid in store.grids.all():
            [score] = store.scores.where(grid_ids=[grid.id], metric="reference")
            kinds[grid.prompt] = (
                score.values["webster"],
                (score.values["reference"] or {}).get("key"),
            )
        assert kinds["a living room with a grey sofa"] == ("MV", "demo-000001")
        assert kinds["a lighthouse on a rocky coast"] == ("RV", "demo-000003")
        assert kinds["a city street at night"][0] == "N"
        proposal = store.proposals.find(
            next(g.id for g in store.grids.all() if g.prompt == "a lighthouse on a rocky coast")
        )
        assert proposal is not None and proposal.webster is not None
        assert proposal.webster.value == "RV"
    for export_format in ("jsonl", "parquet"):
        out = tmp_path / export_format
        arguments = ["export", "-p", str(demo_project_dir), "-f", export_format, "-o", str(out)]
        result = runner.invoke(app, arguments)
        assert result.exit_code == 0, result.output
    rows = {
        row["prompt"]: row
        for row in map(json.loads, (tmp_path / "jsonl" / "grids.jsonl").read_text().splitlines())
    }
    coast = rows["a lighthouse on a rocky coast"]
    assert coast["reference"]["webster"] == "RV" and coast["reference"]["key"] == "demo-000003"
    assert coast["reference"]["caption"] == '"The Lighthouse at Dusk" poster by Aldo Vessel'
    assert coast["reference"]["seeds"] == 3 and coast["reference"]["distance"] < 0.15
    per_seed = [image["reference"]["webster"] for image in coast["images"]]
    assert per_seed == ["RV", "N", "N", "RV", "N", "N", "RV", "N"]  # seeds 0, 3, 6 copy it
    assert rows["a city street at night"]["reference"]["webster"] == "N"
    table = pq.read_table(tmp_path / "parquet" / "grids.parquet").to_pylist()
    parquet_coast = next(r for r in table if r["prompt"] == "a lighthouse on a rocky coast")
    assert parquet_coast["reference"]["key"] == "demo-000003"
    assert parquet_coast["images"][0]["reference"]["webster"] == "RV"


@pytest.fixture
def four_grids(tmp_path: Path) -> Path:
    """Two grids copying the barn, two varied ones; the pool holds the barn."""
    root = tmp_path / "project"
    with create_project(root) as project:
        for number, seeds in enumerate(
            [copied_seeds("barn"), varied_seeds("a"), copied_seeds("barn"), varied_seeds("b")]
        ):
            images = [
                project.images.put(png_checked(image), seed) for seed, image in enumerate(seeds)
            ]
            project.store.grids.add(f"prompt {number}", images, model="m")
        add_references(project, write_files_layout(tmp_path / "barn", BARN))
    return root


def match_json(runner: CliRunner, root: Path, *options: str) -> dict:
    result = runner.invoke(app, ["match", "-p", str(root), "--json", *options])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def stored_matches(root: Path) -> dict[int, tuple[str, dict]]:
    """Each grid's stored match: when it was written and its values."""
    with open_project(root) as opened:
        rows = opened.store.rows(
            """SELECT grid_id, created_at, "values" FROM scores WHERE metric = 'reference'"""
        )
        return {grid_id: (written, json.loads(values)) for grid_id, written, values in rows}


def test_match_leaves_grids_already_matched_to_the_pool_and_rematch_redoes_them(
    four_grids: Path, runner: CliRunner
) -> None:
    first = match_json(runner, four_grids)
    assert (first["grids"], first["already_matched"]) == (4, 0)
    assert (first.get("MV", 0) + first.get("RV", 0), first["N"]) == (2, 2)
    matched = stored_matches(four_grids)
    again = match_json(runner, four_grids)
    assert (again["grids"], again["already_matched"]) == (0, 4)
    assert stored_matches(four_grids) == matched  # not written again
    result = runner.invoke(app, ["match", "-p", str(four_grids)])
    assert result.stdout.strip() == (
        "no grid to match against 1 references: 4 already matched against this pool were left "
        "as they were (--rematch to match them again)"
    )
    redone = match_json(runner, four_grids, "--rematch")
    assert (redone["grids"], redone["already_matched"]) == (4, 0)
    values = {grid: values for grid, (_, values) in stored_matches(four_grids).items()}
    assert values == {grid: values for grid, (_, values) in matched.items()}


def test_a_grown_pool_or_other_parameters_match_every_grid_again(
    four_grids: Path, runner: CliRunner, tmp_path: Path
) -> None:
    match_json(runner, four_grids)
    assert match_json(runner, four_grids, "--radius", "12")["grids"] == 4
    assert match_json(runner, four_grids, "--radius", "12")["grids"] == 0
    # Back to the default radius: its earlier matches are no longer the latest, which is the
    # one the proposals and exports read, so they are made again.
    assert match_json(runner, four_grids)["grids"] == 4
    with open_project(four_grids) as opened:
        latest = opened.store.scores.where(grid_ids=[1], metric="reference")[-1]
    assert latest.params["hash_radius"] == DEFAULT_RADIUS
    assert match_json(runner, four_grids)["grids"] == 0
    with open_project(four_grids) as opened:
        add_references(opened, write_files_layout(tmp_path / "pier", PIER))
    grown = match_json(runner, four_grids)
    assert (grown["grids"], grown["already_matched"], grown["pool"]) == (4, 0, 2)


def test_ctrl_c_during_match_keeps_the_grids_matched_and_a_rerun_goes_on(
    four_grids: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    interrupt_at_call(monkeypatch, reference_service, "match_grid", call=3)
    result = runner.invoke(app, ["match", "-p", str(four_grids)])
    assert result.exit_code == 130
    assert result.stderr.strip() == (
        "memgrid: error: memgrid match: interrupted: 2 of 4 grids were matched and are stored; "
        "running it again goes on from there"
    )
    assert sorted(stored_matches(four_grids)) == [1, 2]
    monkeypatch.undo()
    rerun = match_json(runner, four_grids)
    assert (rerun["grids"], rerun["already_matched"]) == (2, 2)
    assert sorted(stored_matches(four_grids)) == [1, 2, 3, 4]


def test_ctrl_c_during_rematch_says_the_others_keep_their_match(
    four_grids: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    match_json(runner, four_grids)
    earlier = stored_matches(four_grids)
    interrupt_at_call(monkeypatch, reference_service, "match_grid", call=2)
    result = runner.invoke(app, ["match", "-p", str(four_grids), "--rematch"])
    assert result.exit_code == 130
    assert result.stderr.strip() == (
        "memgrid: error: memgrid match: interrupted: 1 of 4 grids were matched again and are "
        "stored; the others keep the match they had, and `memgrid match` without --rematch "
        "matches any grid still unmatched"
    )
    now = stored_matches(four_grids)
    assert now[1] != earlier[1] and {grid: now[grid] for grid in (2, 3, 4)} == {
        grid: earlier[grid] for grid in (2, 3, 4)
    }


def test_match_names_an_unknown_grid_and_matches_a_named_one_once(
    four_grids: Path, runner: CliRunner
) -> None:
    for options in ([], ["--rematch"]):
        result = runner.invoke(app, ["match", "-p", str(four_grids), "--grid", "99", *options])
        assert result.exit_code == 1
        assert "grid 99: no grid with this id in the project" in result.stderr
    assert stored_matches(four_grids) == {}
    assert match_json(runner, four_grids, "--grid", "2", "--grid", "2")["grids"] == 1
    assert sorted(stored_matches(four_grids)) == [2]
