"""`memgrid refs add` and `memgrid match` from the command line: errors are one line each and
nothing stored is lost; the demo shows a reference beside its copied grids."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from memgrid.tui.cli import app
from memgrid.tui.services.project import open_project
from memgrid.tui.services.proposing import propose_all
from memgrid.tui.services.references import match_grids
from memgrid.tui.services.scoring import MetricOptions, build_metrics, score_project
from tests.references.helpers import training_image, write_files_layout


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
