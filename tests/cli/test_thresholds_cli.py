"""`memgrid thresholds list|show|activate|diff`: every version, its origin, and switching back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from memgrid.core.thresholds import Thresholds
from memgrid.db.proposals import Proposals
from memgrid.tui.cli import app
from memgrid.tui.services.project import open_project
from memgrid.tui.services.proposing import Proposer
from tests.conftest import project_copy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def ok(runner: CliRunner, *args: Any) -> Any:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def _history(_demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo with three versions of `default`: v0, a file's, and an accepted calibration."""
    root = tmp_path_factory.mktemp("thresholds") / "demo"
    shutil.copytree(_demo_template, root)
    runner = CliRunner()
    ok(runner, "score", "--metric", "tiled-l2,phash", "-p", root)
    ok(runner, "propose", "-p", root)
    strict = root.parent / "strict.toml"
    strict.write_text('name = "default"\ntau_mem = 0.75\n', encoding="utf-8")
    ok(runner, "propose", "-t", strict, "-p", root)
    ok(runner, "labels", "import", EXAMPLES / "webster-labels.csv", "-a", "webster", "-p", root)
    ok(runner, "calibrate", "--accept", "--bootstraps", "20", "--json", "-p", root)
    return root


@pytest.fixture
def history(_history: Path, tmp_path: Path) -> Path:
    return project_copy(_history, tmp_path)


def test_list_names_every_version_its_origin_and_the_active_one(
    history: Path, runner: CliRunner
) -> None:
    listed = json.loads(ok(runner, "thresholds", "list", "-p", history, "--json").output)
    assert [(s["set"], s["active"]) for s in listed] == [
        ("default@0", False),
        ("default@1", False),
        ("default@2", True),
    ]
    origins = [s["origin"] for s in listed]
    assert origins[0] == "v0"
    assert origins[1].startswith("file /") and origins[1].endswith("/strict.toml")
    assert origins[2] == "calibration run 1"
    text = ok(runner, "thresholds", "list", "-p", history).output
    assert "default@2" in text and "calibration run 1" in text and "active" in text


def test_show_and_diff_read_the_stored_values(history: Path, runner: CliRunner) -> None:
    shown = json.loads(
        ok(runner, "thresholds", "show", "default@1", "-p", history, "--json").output
    )
    assert shown["values"]["tau_mem"] == 0.75
    latest = json.loads(ok(runner, "thresholds", "show", "default", "-p", history, "--json").output)
    assert latest["set"] == "default@2"
    assert "tau_mem" in ok(runner, "thresholds", "show", "default@0", "-p", history).output
    diff = json.loads(
        ok(runner, "thresholds", "diff", "default@0", "default@1", "-p", history, "--json").output
    )
    assert diff["changes"] == [
        {"key": "tau_mem", "from": 0.02, "to": 0.75, "relative": pytest.approx(36.5)}
    ]
    same = ok(runner, "thresholds", "diff", "default@1", "default@v1", "-p", history).output
    assert "the same values" in same
    missing = runner.invoke(app, ["thresholds", "show", "default@9", "-p", str(history)])
    assert missing.exit_code == 1
    assert "no such set or version; stored: default@0, default@1, default@2" in missing.output
    malformed = runner.invoke(app, ["thresholds", "show", "default@x", "-p", str(history)])
    assert malformed.exit_code == 1 and "is not a whole number" in malformed.output


def test_activate_rolls_back_to_a_version_and_recomputes_its_proposals(
    history: Path, runner: CliRunner
) -> None:
    result = ok(runner, "thresholds", "activate", "default@0", "-p", history, "--json")
    activated = json.loads(result.output)
    assert activated["set"] == "default@0" and activated["active"]
    assert activated["proposals"]["proposed"] == 26
    with open_project(history) as project:
        store = project.store
        active = store.thresholds.find_active()
        assert active is not None and active.reference == "default@0"
        thresholds = Thresholds.from_values(active.values)
        proposer = Proposer.for_project(project)  # the one propose pipeline
        for grid in store.grids.all():
            proposal = store.proposals.find(grid.id)
            assert proposal is not None and proposal.threshold_set_id == active.id
            expected = proposer.categorize(grid, store.scores.where(grid_ids=[grid.id]), thresholds)
            assert proposal.category is expected.category


def test_a_failed_activation_leaves_the_active_set_and_its_proposals(
    history: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def proposals(project: Any) -> dict[tuple[int, int], Any]:
        store = project.store
        sets = [t.id for t in store.thresholds.all()]
        return {(g, s): store.proposals.find(g, s) for g in store.grids.ids_all() for s in sets}

    with open_project(history) as project:
        before = proposals(project)
    written = Proposals.add_many

    def write_then_fail(self: Proposals, proposals: Any) -> int:
        written(self, proposals)  # every proposal is written, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Proposals, "add_many", write_then_fail)
    failed = runner.invoke(app, ["thresholds", "activate", "default@0", "-p", str(history)])
    assert failed.exit_code == 1
    monkeypatch.undo()
    with open_project(history) as project:
        active = project.store.thresholds.find_active()
        assert active is not None and active.reference == "default@2"
        assert proposals(project) == before  # v0's were not rewritten either
