"""`memgrid report` on a project with two models and known labels (tui/services/report.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memgrid.core.errors import InputError
from memgrid.core.records import Proposal
from memgrid.core.report import mcnemar
from memgrid.core.taxonomy import Category, Webster
from memgrid.tui.cli import app
from memgrid.tui.services.project import Project, create_project, open_project
from memgrid.tui.services.report import ModelRates, Report, project_report
from tests.hostile.corpus import HOSTILE_STRINGS, raw_escapes

EXPLICIT, IMPLICIT, UNINTENDED, NONE = tuple(Category)
ORIGINAL, MITIGATED = "sd-1.4", "sd-1.4 + ablation"
SETTINGS = {"steps": 50, "guidance": 7.5}
# Per prompt: (label under the original, under the mitigated model); None: no human label.
HUMAN = [
    (UNINTENDED, NONE),
    (UNINTENDED, UNINTENDED),
    (EXPLICIT, NONE),
    (IMPLICIT, NONE),
    (NONE, NONE),
    (NONE, EXPLICIT),
    (None, None),
    (None, None),
]
# The proposals of every grid (humans overrule them where they labelled).
PROPOSED = [
    (UNINTENDED, UNINTENDED),
    (UNINTENDED, UNINTENDED),
    (EXPLICIT, EXPLICIT),
    (NONE, NONE),
    (NONE, NONE),
    (NONE, NONE),
    (UNINTENDED, NONE),
    (NONE, NONE),
]
PROPOSED_WEBSTER = {
    UNINTENDED: Webster.MATCHING_VERBATIM,
    EXPLICIT: Webster.MATCHING_VERBATIM,
    NONE: Webster.NONE,
}


def build(root: Path) -> dict[tuple[str, int], int]:
    """The two-model project; returns grid ids by (model, prompt number)."""
    grids = {}
    with create_project(root) as project:
        store = project.store
        active = store.thresholds.add("default", {"tau_mem": 0.5}, activate=True)
        for number, (humans, proposed) in enumerate(zip(HUMAN, PROPOSED, strict=True)):
            for model, human, proposal in zip((ORIGINAL, MITIGATED), humans, proposed, strict=True):
                grid_id, _ = store.grids.add(
                    f"prompt {number}",
                    [],
                    model=model,
                    settings=SETTINGS,
                    prompt_metadata={"set": "laion" if number % 2 else "coco"},
                )
                grids[(model, number)] = grid_id
                store.proposals.add(
                    Proposal(grid_id, active.id, proposal, webster=PROPOSED_WEBSTER[proposal])
                )
                if human is not None:
                    store.labels.label(grid_id, "ana", human)
    return grids


@pytest.fixture
def two_models(tmp_path: Path) -> tuple[Path, dict[tuple[str, int], int]]:
    root = tmp_path / "two-models"
    return root, build(root)


def opened(root: Path) -> Project:
    return open_project(root)


def rates_of(report: Report, model: str, group: str | None = None) -> tuple[dict, ModelRates]:
    found = next(m for m in report.models if m.model == model and m.group == group)
    return {rate.figure: rate for rate in found.rates}, found


def test_counts_and_rates_per_model(two_models) -> None:
    root, _ = two_models
    with opened(root) as project:
        report = project_report(project, bootstraps=200)
    rates, original = rates_of(report, ORIGINAL)
    assert (original.grids, original.human, original.proposed, original.unknown) == (8, 6, 2, 0)
    # Original: humans unintended x2, explicit, implicit, none x2; proposals on the last two
    # (unintended, none).
    assert rates["unintended"].count == 3 and rates["unintended"].count_human == 2
    assert rates["explicit"].count == 1 and rates["implicit"].count == 1
    assert rates["memorized"].count == 5 and rates["memorized"].rate == pytest.approx(5 / 8)
    assert rates["memorized"].total_human == 6
    low, high = rates["memorized"].interval
    assert low <= 5 / 8 <= high
    # Webster: humans gave none; their memorized grids take the proposal's verbatim type
    # (MV on prompts 0, 1, 2; prompt 3's proposal says N, so its type stays unknown), their
    # not-memorized grids are N; unlabelled grids take their proposals' (MV, N).
    assert rates["MV"].count == 4 and rates["MV"].total == 7
    assert rates["MV"].count_human == 0 and rates["MV"].total_human == 2
    rates, _ = rates_of(report, MITIGATED)
    assert rates["memorized"].count == 2 and rates["unintended"].count == 1
    assert report.comparison is None and report.grid_ids == []


def test_paired_comparison_and_moved_prompts(two_models) -> None:
    root, grids = two_models
    with opened(root) as project:
        report = project_report(project, compare=(ORIGINAL, MITIGATED), bootstraps=200)
    comparison = report.comparison
    assert comparison.prompts == 8
    memorized = comparison.change("memorized")
    # Memorized under the original only: prompts 0, 2, 3 (human) and 6 (proposal);
    # under the mitigated model only: prompt 5.
    assert (memorized.both, memorized.a_only, memorized.b_only) == (1, 4, 1)
    assert memorized.change == pytest.approx((1 - 4) / 8)
    assert memorized.pairs_human == 6
    assert memorized.test == mcnemar(4, 1)
    low, high = memorized.interval
    assert low <= memorized.change <= high
    moved_away = [item.prompt for item in comparison.memorized_under_a_only]
    assert moved_away == ["prompt 0", "prompt 2", "prompt 3", "prompt 6"]
    assert [item.prompt for item in comparison.memorized_under_b_only] == ["prompt 5"]
    first = comparison.memorized_under_a_only[0]
    assert (first.grid_a, first.grid_b) == (grids[(ORIGINAL, 0)], grids[(MITIGATED, 0)])
    assert (first.category_a, first.category_b, first.human_a) == ("unintended", "none", True)
    assert report.grid_ids[:2] == [grids[(ORIGINAL, 0)], grids[(MITIGATED, 0)]]
    assert len(report.grid_ids) == 10


def test_only_shared_prompts_are_paired(two_models) -> None:
    root, _ = two_models
    with opened(root) as project:
        project.store.grids.add("only the original ran this", [], model=ORIGINAL, settings=SETTINGS)
        report = project_report(project, compare=(ORIGINAL, MITIGATED), bootstraps=0)
    assert report.comparison.prompts == 8
    assert report.comparison.change("memorized").interval is None


def test_a_tie_counts_with_its_proposal_and_an_adjudication_settles_it(two_models) -> None:
    root, grids = two_models
    with opened(root) as project:
        tied = grids[(MITIGATED, 6)]  # proposal: none
        project.store.labels.label(tied, "ana", UNINTENDED)
        project.store.labels.label(tied, "bo", EXPLICIT)
        report = project_report(project, bootstraps=0)
        rates, model = rates_of(report, MITIGATED)
        assert report.ties == 1 and any("tied" in warning for warning in report.warnings)
        assert rates["memorized"].count == 2 and model.human == 6
        project.store.labels.adjudicate(tied, "cy", IMPLICIT)
        rates, model = rates_of(project_report(project, bootstraps=0), MITIGATED)
    assert rates["implicit"].count == 1 and rates["implicit"].count_human == 1
    assert model.human == 7


def test_grids_without_label_or_proposal_are_counted_apart(two_models) -> None:
    root, _ = two_models
    with opened(root) as project:
        project.store.grids.add("never proposed", [], model=ORIGINAL, settings=SETTINGS)
        report = project_report(project, bootstraps=0)
    rates, original = rates_of(report, ORIGINAL)
    assert original.grids == 9 and original.unknown == 1
    assert rates["memorized"].total == 8
    assert any("neither" in warning for warning in report.warnings)


def test_groups_by_prompt_field_and_source(two_models) -> None:
    root, _ = two_models
    with opened(root) as project:
        report = project_report(project, by="prompt:set", bootstraps=0)
        rates, coco = rates_of(report, ORIGINAL, "coco")  # prompts 0, 2, 4, 6
        assert coco.grids == 4 and rates["memorized"].count == 3
        by_source = project_report(project, by="source", bootstraps=0)
        assert {m.group for m in by_source.models} == {None, "(none)"}
        with pytest.raises(InputError, match="no prompt has a field 'sett' \\(fields: set\\)"):
            project_report(project, by="prompt:sett", bootstraps=0)  # misspelt


def test_settings_variants_are_models_of_their_own(two_models) -> None:
    root, _ = two_models
    with opened(root) as project:
        for number in range(3):
            project.store.grids.add(
                f"prompt {number}", [], model=ORIGINAL, settings={"steps": 50, "guidance": 3.0}
            )
        report = project_report(
            project, compare=(f"{ORIGINAL} (guidance=7.5)", f"{ORIGINAL} (guidance=3.0)")
        )
        names = [m.model for m in report.models]
        assert names == [f"{ORIGINAL} (guidance=3.0)", f"{ORIGINAL} (guidance=7.5)", MITIGATED]
        assert report.comparison.prompts == 3
        with pytest.raises(Exception, match="several settings"):
            project_report(project, compare=(ORIGINAL, MITIGATED))


def test_grids_imported_from_separate_folders_are_one_run_of_their_model(tmp_path: Path) -> None:
    """The import origin keeps each source folder's grid apart in the store; the report
    groups by model and settings alone, so four folders of one model are one row and pair
    with another model's grids of the same prompts."""
    with create_project(tmp_path / "imported") as project:
        for number in range(4):
            for model in (ORIGINAL, MITIGATED):
                project.store.grids.add(
                    f"prompt {number}",
                    [],
                    model=model,
                    settings=SETTINGS,
                    origin=f"{model}/folder-{number}",
                )
        report = project_report(project, compare=(ORIGINAL, MITIGATED))
    assert [(m.model, m.grids) for m in report.models] == [(ORIGINAL, 4), (MITIGATED, 4)]
    assert report.comparison.prompts == 4
    # A prompt imported twice under one model is still one pair, by its first grid.
    with open_project(tmp_path / "imported") as project:
        again, _ = project.store.grids.add(
            "prompt 0", [], model=ORIGINAL, settings=SETTINGS, origin="another/folder"
        )
        report = project_report(project, compare=(ORIGINAL, MITIGATED))
    assert report.comparison.prompts == 4
    moved = [*report.comparison.memorized_under_a_only, *report.comparison.memorized_under_b_only]
    assert again not in {prompt.grid_a for prompt in moved}


def run(*args: str) -> object:
    return CliRunner().invoke(app, ["report", *args], catch_exceptions=False)


def test_cli_json_html_and_tables(two_models, tmp_path: Path) -> None:
    root, grids = two_models
    page = tmp_path / "report.html"
    result = run("-p", str(root), "--compare", ORIGINAL, MITIGATED, "--json", "--html", str(page))
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["kind"] == "memgrid-report" and found["bootstraps"] == 1000
    assert [m["model"] for m in found["models"]] == [ORIGINAL, MITIGATED]
    memorized = next(c for c in found["comparison"]["changes"] if c["figure"] == "memorized")
    assert (memorized["a_only"], memorized["b_only"]) == (4, 1)
    assert found["grid_ids"][:2] == [grids[(ORIGINAL, 0)], grids[(MITIGATED, 0)]]
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<svg" in text and "Paired comparison" in text
    assert "http" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")  # self-contained

    result = run("-p", str(root), "--compare", ORIGINAL, MITIGATED)
    assert result.exit_code == 0, result.output
    assert "Primary category per model" in result.output
    assert "Memorized under A, not under B: 4 prompts" in result.output
    assert "memgrid annotate --grids-from report.json" in result.output


def test_an_html_report_never_replaces_a_file_unasked_nor_the_database(two_models) -> None:
    root, _ = two_models
    page = root.parent / "report.html"
    assert run("-p", str(root), "--html", str(page), "--no-plots").exit_code == 0
    first = page.read_bytes()
    refused = CliRunner().invoke(app, ["report", "-p", str(root), "--html", str(page)])
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"memgrid: error: {page}: already exists; pass --overwrite to replace it\n"
    )
    assert page.read_bytes() == first
    database = root / "memgrid.db"
    refused = CliRunner().invoke(
        app, ["report", "-p", str(root), "--html", str(database), "--overwrite"]
    )
    assert refused.exit_code == 1 and "is part of the project" in refused.stderr
    assert run("-p", str(root), "--no-plots").exit_code == 0  # the database is intact
    assert run("-p", str(root), "--html", str(page), "--overwrite", "--no-plots").exit_code == 0


def test_user_text_is_shown_as_text(tmp_path: Path) -> None:
    """Model names and prompts from the hostile corpus: escaped in the terminal, in the HTML."""
    root = tmp_path / "hostile"
    hostile_model = "[bold red]evil[/] <script>alert(1)</script>" + HOSTILE_STRINGS[0]
    with create_project(root) as project:
        store = project.store
        active = store.thresholds.add("default", {}, activate=True)
        for index, text in enumerate(HOSTILE_STRINGS):
            prompt = f"prompt {index} {text}".replace("\x00", "")
            for model, category in ((hostile_model, UNINTENDED), ("plain", NONE)):
                grid_id, _ = store.grids.add(prompt, [], model=model)
                store.proposals.add(Proposal(grid_id, active.id, category))
    page = tmp_path / "r.html"
    result = run("-p", str(root), "--compare", hostile_model, "plain", "--html", str(page))
    assert result.exit_code == 0, result.output
    assert raw_escapes(result.output) == 0
    assert "[bold red]evil[/]" in result.output  # shown, not read as markup
    assert f"Memorized under A, not under B: {len(HOSTILE_STRINGS)} prompts" in result.output
    text = page.read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text
    # Written to /dev/stdout (or cat'ed later), the page reaches a terminal: no escapes.
    assert raw_escapes(text) == 0
    assert text.count("<title>") == 1


def test_the_page_title_is_the_report_s(two_models, tmp_path: Path) -> None:
    root, _ = two_models
    page = tmp_path / "r.html"
    assert run("-p", str(root), "--no-plots", "--html", str(page)).exit_code == 0
    assert "<title>memgrid memorization report</title>" in page.read_text()


def test_piped_tables_keep_every_column(two_models, monkeypatch: pytest.MonkeyPatch) -> None:
    # Rich lays a table out for 80 columns when output is not a terminal and drops what does
    # not fit: a saved report lost its `memorized` column.
    root, _ = two_models
    monkeypatch.delenv("COLUMNS", raising=False)
    result = run("-p", str(root), "--no-plots")
    header = next(line for line in result.output.splitlines() if line.strip().startswith("model"))
    assert header.split()[-1] == "memorized"


def test_cli_errors_are_one_line(two_models) -> None:
    root, _ = two_models
    result = CliRunner().invoke(app, ["report", "-p", str(root), "--compare", "nope", MITIGATED])
    assert result.exit_code == 1
    assert "memgrid: error: --compare: model 'nope' has no grids" in result.output
    result = CliRunner().invoke(app, ["report", "-p", str(root), "--compare", ORIGINAL, ORIGINAL])
    assert result.exit_code == 1 and "two different models" in result.output
    result = CliRunner().invoke(app, ["report", "-p", str(root), "--by", "colour"])
    assert result.exit_code == 1 and "prompt:FIELD" in result.output


def test_grids_of_unknown_prompt_are_never_paired(tmp_path: Path) -> None:
    # Grids imported without a prompt.txt all share the prompt "": not one prompt given
    # to both models, so a fire and a phone case must not become a pair.
    root = tmp_path / "unknown"
    with create_project(root) as project:
        store = project.store
        active = store.thresholds.add("default", {}, activate=True)
        for model, origin in ((ORIGINAL, "fire"), (MITIGATED, "phone")):
            grid_id, _ = store.grids.add("", [], model=model, origin=origin)
            store.proposals.add(Proposal(grid_id, active.id, UNINTENDED))
            grid_id, _ = store.grids.add("a known prompt", [], model=model)
            store.proposals.add(Proposal(grid_id, active.id, UNINTENDED))
    with open_project(root) as project:
        report = project_report(project, compare=(ORIGINAL, MITIGATED), bootstraps=10)
    assert report.comparison is not None and report.comparison.prompts == 1
