"""`memgrid calibrate` and `memgrid agreement` on the demo project, and the app's screen."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from xml.etree import ElementTree

import pytest
from textual.app import App
from typer.testing import CliRunner

from memgrid.core.agreement import agreed_label
from memgrid.core.attribution import attribute
from memgrid.core.categorizer import categorize
from memgrid.core.demo import DEMO_SET
from memgrid.core.taxonomy import Category, Webster
from memgrid.core.thresholds import Thresholds, v0_values
from memgrid.tui.app.screens.calibration import CalibrationScreen
from memgrid.tui.cli import app
from memgrid.tui.services.calibration import (
    LabelledCategorizer,
    accept_run,
    agreed_labels,
    read_labels,
)
from memgrid.tui.services.calibration_report import svg_histogram
from memgrid.tui.services.project import Project, open_project
from tests.conftest import project_copy

# The demo's truth per group; the borderline grids get an annotator's judgement.
GROUP_LABELS = {
    "explicit-copy": Category.EXPLICIT,
    "implicit-copy": Category.IMPLICIT,
    "unintended-copy": Category.UNINTENDED,
    "unintended-template": Category.UNINTENDED,
    "explicit-template": Category.EXPLICIT,
    "varied": Category.NONE,
}
BORDERLINE_LABELS = {
    "a poster of concentric rings over a striped sea": Category.IMPLICIT,
    "a circular sunburst over coloured bands": Category.NONE,
    "a person sitting in a living room": Category.UNINTENDED,
    "a meadow under a wide sky": Category.NONE,
    "a lighthouse on a rocky coast": Category.NONE,  # 3 of 8 seeds repeat: not enough
}
UNLABELLED = ("a snowy village at dawn", "still life with bottles and a lamp")  # left out


@pytest.fixture(scope="module")
def _scored_demo(_demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo project scored (tiled-l2, phash) and proposed once for the module."""
    root = tmp_path_factory.mktemp("calibrate") / "demo"
    shutil.copytree(_demo_template, root)
    runner = CliRunner()
    for command in (["score", "--metric", "tiled-l2,phash"], ["propose"]):
        result = runner.invoke(app, [*command, "-p", str(root)])
        assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def demo(_scored_demo: Path, tmp_path: Path) -> Path:
    return project_copy(_scored_demo, tmp_path)


def label_demo(root: Path, annotator: str = "ana", blind_every: int = 4) -> None:
    """Label the demo through the store API, as the app records labels."""
    groups = {grid.prompt: grid.group for grid in DEMO_SET}
    with open_project(root) as project:
        store = project.store
        for grid in store.grids.all():
            if grid.prompt in UNLABELLED:
                continue
            group = groups[grid.prompt]
            category = GROUP_LABELS.get(group) or BORDERLINE_LABELS[grid.prompt]
            proposal = store.proposals.find(grid.id)
            store.labels.label(
                grid.id,
                annotator,
                category,
                webster=Webster.TEMPLATE_VERBATIM if group.endswith("template") else None,
                proposal_shown=grid.id % blind_every != 0,
                proposal_category=proposal.category if proposal else None,
            )


def pixel_clique_shares(root: Path) -> dict[int, float]:
    with open_project(root) as project:
        return {
            grid_id: max(
                s.values["clique_size"] / s.values["n_seeds"]
                for s in project.store.scores.where(grid_ids=[grid_id])
                if s.metric in ("tiled-l2", "phash") and s.available
            )
            for grid_id in project.store.grids.ids_all()
        }


def proposals(root: Path) -> dict[int, Category]:
    with open_project(root) as project:
        store = project.store
        return {g: store.proposals.find(g).category for g in store.grids.ids_all()}  # type: ignore[union-attr]


def test_calibrate_without_labels_fails_and_stores_no_run(demo: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["calibrate", "-p", str(demo), "--no-plots"])
    assert result.exit_code == 1
    assert result.output.startswith("memgrid: error: ")
    assert "no grid has an agreed label to calibrate on" in result.output
    assert len(result.output.splitlines()) == 1
    with open_project(demo) as project:
        assert project.store.runs.all() == []
    # A tie is no agreed label either, and the error says what to do about it.
    with open_project(demo) as project:
        grid_id = project.store.grids.ids_all()[0]
        project.store.labels.label(grid_id, "ana", Category.EXPLICIT)
        project.store.labels.label(grid_id, "bo", Category.NONE)
    result = runner.invoke(app, ["calibrate", "-p", str(demo)])
    assert result.exit_code == 1 and "1 tied between annotators: adjudicate them" in result.output


def test_calibrate_accept_changes_the_proposals_as_the_new_thresholds_say(
    demo: Path, runner: CliRunner
) -> None:
    label_demo(demo)
    before = proposals(demo)
    shares = pixel_clique_shares(demo)
    result = runner.invoke(app, ["calibrate", "-p", str(demo), "--accept", "--json"])
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.output)
    assert run["label_count"] == 24
    assert run["accepted"] == "default v1"
    # tau_mem: F1 on the labelled whole-image copies vs the not-memorized grids puts the
    # cut between the largest not-memorized clique share (3/8) and the next (4/8).
    tau_mem = run["fitted"]["tau_mem"]
    assert 3 / 8 < tau_mem <= 4 / 8
    assert run["changes"]["tau_mem"] == [pytest.approx(0.02), tau_mem]
    assert "template-only" in run["threshold_fits"]["tau_mem"]
    assert run["before"]["matrix"] and run["after"]["matrix"]
    assert run["after"]["macro_f1"] >= run["before"]["macro_f1"]
    after = proposals(demo)
    with open_project(demo) as project:
        active = project.store.thresholds.find_active()
        assert active is not None and active.label == "default v1"
        assert active.values["tau_mem"] == pytest.approx(tau_mem)
        runs = project.store.runs.all()
        assert runs[-1].accepted and runs[-1].fitted_threshold_set_id == active.id
        lexicon = project.store.entities.all()
        # What the accepted thresholds say, computed directly by the categorizer.
        expected_after = {
            g: categorize(
                project.store.scores.where(grid_ids=[g]),
                Thresholds.from_values(active.values),
                attribute(project.store.grids.get(g).prompt, lexicon),
            ).category
            for g in project.store.grids.ids_all()
        }
    assert after == expected_after
    changed = {g for g in before if before[g] != after[g]}
    # The tau_mem fit alone: a 3-of-8 clique no longer counts, so a grid whose memorization
    # rested on it alone (no fixed region) is now not memorized.
    assert {
        g for g, share in shares.items() if 3 / 8 <= share < tau_mem and after[g] is Category.NONE
    } & changed
    assert changed  # the demo's "lighthouse on a rocky coast" at least
    assert all(after[g] is Category.NONE for g in changed)


def test_calibrate_fits_the_combined_scores_weights(demo: Path, runner: CliRunner) -> None:
    # Item 8: the memorized/not decision is a logistic model whose weights the labels fit.
    label_demo(demo)
    result = runner.invoke(app, ["calibrate", "-p", str(demo), "--accept", "--json"])
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.output)
    fitted = run["fitted"]
    weight_keys = {"w_bias", "w_copy", "w_layout", "w_matches", "w_region", "w_semantic"}
    assert weight_keys <= set(fitted)
    assert any(key in run["changes"] for key in weight_keys)
    # No clip score in the project: nothing informs the semantic weight, which keeps v0...
    assert fitted["w_semantic"] == pytest.approx(4.0) and "w_semantic" not in run["changes"]
    # ...and copies labelled without a Webster type cannot be told from semantic-only ones.
    assert any("left out of the combined score's fit" in w for w in run["warnings"])
    with open_project(demo) as project:
        active = project.store.thresholds.find_active()
        assert active is not None
        assert active.values["w_copy"] == pytest.approx(fitted["w_copy"])


def test_calibration_categorizes_as_memgrid_propose_did(demo: Path) -> None:
    """One pipeline: under the active set, calibration's category is the stored proposal's."""
    label_demo(demo)
    with open_project(demo) as project:
        store = project.store
        active = store.thresholds.find_active()
        assert active is not None
        labelled = read_labels(project).data
        categorizer = LabelledCategorizer(project, labelled.grid_ids)
        values = {**v0_values(), **active.values}
        calibrated = {
            int(grid_id): categorizer(index, values)
            for index, grid_id in enumerate(labelled.grid_ids)
        }
        stored = {g: store.proposals.find(g).category for g in calibrated}  # type: ignore[union-attr]
    assert len(calibrated) == 24
    assert calibrated == stored
    assert len(set(stored.values())) > 1  # the demo's grids are not all one category


def test_report_writes_one_self_contained_html_file(demo: Path, runner: CliRunner) -> None:
    label_demo(demo)
    report = demo / "calibration.html"
    result = runner.invoke(app, ["calibrate", "-p", str(demo), "--report", str(report)])
    assert result.exit_code == 0, result.output
    text = report.read_text()
    assert text.startswith("<!DOCTYPE html>")
    svgs = re.findall(r"<svg.*?</svg>", text, re.S)
    assert len(svgs) >= 2  # a histogram and the ROC curve
    for svg in svgs:
        ElementTree.fromstring(svg)  # well-formed
    assert "Confusion matrix before" in text and "Best separating signal" in text
    for svg in svgs:  # every line inside the plot's frame, every label inside the picture
        check_svg_fits(ElementTree.fromstring(svg))
    assert "http" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")  # no links out
    # The terminal gets the same plots, with the thresholds marked.
    assert "pixel:clique_share: grids per human label" in result.output
    assert "tau_mem now 0.02" in result.output and "tau_mem fitted" in result.output
    assert "ROC, memorized vs not" in result.output


def test_a_report_over_an_existing_file_is_refused_before_anything_is_stored(
    demo: Path, runner: CliRunner
) -> None:
    """Without --overwrite an existing file stays, and --accept stores nothing; the
    project's own database is never a report, even with --overwrite."""
    label_demo(demo)
    before = active_set_and_proposals(demo)
    notes = demo.parent / "notes.txt"
    notes.write_text("my notes")
    command = ["calibrate", "-p", str(demo), "--accept", "--no-plots", "--report"]
    result = runner.invoke(app, [*command, str(notes)])
    assert result.exit_code == 1
    assert result.output == (
        f"memgrid: error: {notes}: already exists; pass --overwrite to replace it\n"
    )
    assert notes.read_text() == "my notes"
    result = runner.invoke(app, [*command, str(demo / "memgrid.db"), "--overwrite"])
    assert result.exit_code == 1 and "is part of the project" in result.output
    assert active_set_and_proposals(demo) == before  # the database opens, nothing accepted
    with open_project(demo) as project:
        assert project.store.runs.all() == []
    result = runner.invoke(app, [*command, str(notes), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert notes.read_text().startswith("<!DOCTYPE html>")


def check_svg_fits(svg: ElementTree.Element) -> None:
    width = float(svg.get("width"))  # type: ignore[arg-type]
    name = "{http://www.w3.org/2000/svg}"
    frame = svg.find(f"{name}rect")
    assert frame is not None
    left, top = float(frame.get("x")), float(frame.get("y"))  # type: ignore[arg-type]
    right = left + float(frame.get("width"))  # type: ignore[arg-type]
    bottom = top + float(frame.get("height"))  # type: ignore[arg-type]
    for line in svg.iter(f"{name}polyline"):
        for point in line.get("points", "").split():
            x, y = (float(v) for v in point.split(","))
            assert left - 0.01 <= x <= right + 0.01 and top - 0.01 <= y <= bottom + 0.01, point
    for text in svg.iter(f"{name}text"):
        x, anchor = float(text.get("x")), text.get("text-anchor")  # type: ignore[arg-type]
        half = len(text.text or "") * 6.5 / 2  # about 6.5 px a character at 11 px
        reach = {"middle": x + half, "end": x, "start": x + 2 * half}[anchor or "start"]
        assert reach <= width, (text.text, x, anchor)


def test_report_draws_a_threshold_outside_the_scores_inside_the_frame() -> None:
    summary = {
        "histograms": [
            {
                "signal": "clip:median_similarity",
                "edges": [0.2, 0.3, 0.4],
                "counts": {"none": [3, 1], "explicit": [0, 2]},
            }
        ],
        "current": {"tau_sem": 0.95},
        "fitted": {"tau_sem": 0.95},
        "signals": [],
        "objective": "f1",
    }
    svg = svg_histogram(summary, "clip:median_similarity")
    check_svg_fits(ElementTree.fromstring(svg[: svg.index("</svg>") + 6]))
    assert ">0.95</text>" in svg  # the axis now reaches the threshold


def test_by_model_stores_a_set_for_the_model(demo: Path, runner: CliRunner) -> None:
    label_demo(demo)
    result = runner.invoke(app, ["calibrate", "-p", str(demo), "--by-model", "--accept", "--json"])
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.output)
    with open_project(demo) as project:
        model = project.store.grids.get(1).model
        active = project.store.thresholds.find_active(model)
    assert run["model"] == model
    assert active is not None and active.model == model and active.label == run["accepted"]


def test_bad_objective_is_one_line_error(demo: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["calibrate", "-p", str(demo), "--objective", "recall"])
    assert result.exit_code == 1
    assert "unknown objective 'recall'" in result.output


def test_agreement_reports_kappa_and_the_blind_share(demo: Path, runner: CliRunner) -> None:
    label_demo(demo, "ana")
    label_demo(demo, "ben", blind_every=3)
    with open_project(demo) as project:  # ben changes his mind on one grid
        project.store.labels.label(1, "ben", Category.IMPLICIT)
    result = runner.invoke(app, ["agreement", "-p", str(demo), "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["annotators"] == ["ana", "ben"]
    assert found["items_multi_rated"] == 24
    (pair,) = found["pairs"]
    assert pair["items"] == 24 and pair["observed"] == pytest.approx(23 / 24)
    assert 0.8 < pair["kappa"] < 1.0
    assert found["blind"]["labels"] > 0 and found["shown"]["labels"] > 0
    text = runner.invoke(app, ["agreement", "-p", str(demo)])
    assert text.exit_code == 0 and "Krippendorff's alpha (nominal)" in text.output


@pytest.fixture
def anyio_backend() -> str:
    """The Pilot test runs on asyncio (anyio's pytest plugin drives it)."""
    return "asyncio"


class ScreenHost(App[None]):
    def __init__(self, screen: CalibrationScreen) -> None:
        super().__init__()
        self.calibration = screen

    def on_mount(self) -> None:
        self.push_screen(self.calibration)


@pytest.mark.anyio
async def test_calibration_screen_shows_the_run_and_accepts_it(demo: Path) -> None:
    label_demo(demo)
    with open_project(demo) as project:
        screen = CalibrationScreen(project)
        host = ScreenHost(screen)
        async with host.run_test() as pilot:
            await pilot.pause()
            await host.workers.wait_for_complete()
            await pilot.pause()
            assert screen.run is None  # nothing stored yet
            await pilot.press("c")
            await host.workers.wait_for_complete()
            await pilot.pause()
            assert screen.run is not None and screen.run.changed
            assert screen.query_one("#signals").row_count > 0
            await pilot.press("a")
            await host.workers.wait_for_complete()
            await pilot.pause()
            assert screen.run.accepted is not None
        active = project.store.thresholds.find_active()
        assert active is not None and active.version == 1


def test_vote_patterns_give_each_grid_its_own_agreed_label(project: Project) -> None:
    """The bulk read calibration uses agrees with resolving every grid on its own."""
    store = project.store
    grids = [store.grids.add(f"prompt {n}", [], model="m")[0] for n in range(8)]
    store.labels.label(grids[0], "ana", Category.NONE)
    store.labels.label(grids[1], "ana", Category.NONE)
    store.labels.label(grids[1], "ben", Category.UNINTENDED)  # a tie
    store.labels.label(grids[2], "ana", Category.NONE)
    store.labels.label(grids[2], "ben", Category.UNINTENDED)
    store.labels.adjudicate(grids[2], "ana", Category.EXPLICIT)  # settles it; ana's vote stays
    store.labels.label(grids[3], "ana", Category.IMPLICIT)
    store.labels.undo_last("ana")  # undone: grid 3 has no label left
    store.labels.label(grids[4], "ana", Category.NONE)
    store.labels.label(grids[4], "ana", Category.UNINTENDED, webster=Webster.TEMPLATE_VERBATIM)
    store.labels.skip(grids[5], "ana")
    store.labels.flag(grids[6], "ana", Category.NONE)
    for annotator in ("ana", "ben", "cy"):
        store.labels.label(
            grids[7], annotator, Category.IMPLICIT if annotator != "cy" else Category.NONE
        )
    patterns, grid_patterns = store.labels.vote_patterns_all()
    resolved = [agreed_label(events) for events in patterns]
    for grid_id in grids:
        alone = agreed_label(store.labels.current_where(grid_ids=[grid_id]))
        if grid_id in grid_patterns:
            assert resolved[grid_patterns[grid_id]] == alone, grid_id
        else:
            assert alone.category is None
    agreed, ties = agreed_labels(project)
    assert ties == 1
    assert {g: label.category for g, label in agreed.items()} == {
        grids[0]: Category.NONE,
        grids[2]: Category.EXPLICIT,
        grids[4]: Category.UNINTENDED,
        grids[7]: Category.IMPLICIT,
    }
    assert agreed[grids[4]].webster is Webster.TEMPLATE_VERBATIM


def active_set_and_proposals(root: Path) -> tuple[str | None, int]:
    """The active set's label and how many grids have a proposal under it."""
    with open_project(root) as project:
        store = project.store
        active = store.thresholds.find_active()
        shown = store.proposals.active_where(grid_ids=store.grids.ids_all())
        return (active.label if active else None), len(shown)


def interrupt_proposal_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill as the first batch of proposals is written: none of the new ones lands."""

    def killed(*_: object, **__: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("memgrid.db.proposals.Proposals.add_many", killed)


def test_a_killed_accept_leaves_the_old_set_active_with_its_proposals(
    demo: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    label_demo(demo)
    before = active_set_and_proposals(demo)
    assert before[0] == "default v0" and before[1] > 0
    interrupt_proposal_writes(monkeypatch)
    result = runner.invoke(app, ["calibrate", "-p", str(demo), "--accept", "--no-plots"])
    assert result.exit_code != 0
    assert active_set_and_proposals(demo) == before
    with open_project(demo) as project:
        assert not any(run.accepted for run in project.store.runs.all())
    monkeypatch.undo()
    with open_project(demo) as project:  # accepting the run again takes up its stored set
        (run,) = project.store.runs.all()
        accepted = accept_run(project, run.id)
        assert accepted.accepted is not None and accepted.accepted.label == "default v1"
        assert project.store.runs.get(run.id).accepted
    assert active_set_and_proposals(demo) == ("default v1", before[1])


def test_a_killed_propose_with_a_new_set_leaves_the_old_one_active(
    demo: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    before = active_set_and_proposals(demo)
    strict = tmp_path / "strict.toml"
    strict.write_text('name = "strict"\ntau_mem = 0.5\n')
    interrupt_proposal_writes(monkeypatch)
    result = runner.invoke(app, ["propose", "-p", str(demo), "-t", str(strict)])
    assert result.exit_code != 0
    assert active_set_and_proposals(demo) == before
    monkeypatch.undo()
    result = runner.invoke(app, ["propose", "-p", str(demo), "-t", "strict"])
    assert result.exit_code == 0, result.output
    assert active_set_and_proposals(demo) == ("strict v0", before[1])
