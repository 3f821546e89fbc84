"""`memgrid labels import|export`: label files in and out, round trips, and Webster's labels."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from memgrid.core.demo import DEMO_SET, demo_images
from memgrid.core.label_files import read_label_file
from memgrid.core.taxonomy import Category, Feature, LabelState, Webster
from memgrid.tui.app.widgets.labels_panel import describe_event
from memgrid.tui.cli import app
from memgrid.tui.services.project import Project, open_project
from tests.conftest import write_image

WATERMARK = Feature(Category.UNINTENDED, "stock watermark", (0, 1, 8))


def invoke(runner: CliRunner, *args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def ok(runner: CliRunner, *args: Any) -> Any:
    result = invoke(runner, *args)
    assert result.exit_code == 0, result.output
    return result


def make_renders(root: Path, names: list[str]) -> Path:
    """A folder per prompt, as `memgrid import` reads it; two models share one prompt."""
    for index, name in enumerate(names):
        folder = root / name
        folder.mkdir(parents=True)
        (folder / "prompt.txt").write_text(f"a photo of {name.split('-')[0]}\n", encoding="utf-8")
        model = "sd-2.1" if name.endswith("-sd2") else "sd-1.4"
        (folder / "meta.json").write_text(json.dumps({"model": model}), encoding="utf-8")
        for seed in range(2):
            write_image(folder / f"{seed:04d}.png", (index * 30, seed * 90, 120), size=16)
    return root


RENDERS = ["kitchen", "lighthouse", "mug", "forest", "mug-sd2"]


def build_project(runner: CliRunner, root: Path, renders: Path, order: list[str]) -> Path:
    """A project of RENDERS imported one folder at a time in `order` (so grid ids differ)."""
    ok(runner, "init", root)
    for name in order:
        ok(runner, "import", renders / name, "-p", root)
    return root


def grid_of(project: Project, prompt: str, model: str = "sd-1.4") -> int:
    (found,) = [g.id for g in project.store.grids.all() if (g.prompt, g.model) == (prompt, model)]
    return found


def label_as_the_app_does(root: Path) -> None:
    with open_project(root) as project:
        labels = project.store.labels
        kitchen, lighthouse = (
            grid_of(project, "a photo of kitchen"),
            grid_of(project, "a photo of lighthouse"),
        )
        mug, forest = grid_of(project, "a photo of mug"), grid_of(project, "a photo of forest")
        mug2 = grid_of(project, "a photo of mug", "sd-2.1")
        labels.label(
            kitchen,
            "ana",
            Category.UNINTENDED,
            features=(WATERMARK,),
            webster=Webster.TEMPLATE_VERBATIM,
            note='=SUM(A1) "quoted"\nsecond line',
            proposal_shown=True,
            proposal_category=Category.NONE,
            session="s1",
        )
        labels.label(kitchen, "bo", Category.NONE, proposal_shown=False)
        labels.adjudicate(kitchen, "judge", Category.UNINTENDED, features=(WATERMARK,))
        labels.label(lighthouse, "ana", Category.EXPLICIT)
        labels.undo_last("ana")  # the lighthouse label is undone: not a current label
        labels.flag(lighthouse, "bo", Category.IMPLICIT, note="unsure")
        labels.skip(forest, "ana")
        labels.label(mug, "ana", Category.EXPLICIT, webster=Webster.MATCHING_VERBATIM)
        labels.label(mug2, "ana", Category.NONE)
        labels.label(mug, "ana", Category.IMPLICIT)  # changed her mind: the later one counts


def current_labels(root: Path) -> list[tuple[Any, ...]]:
    """Every current label, by prompt and model rather than by the project's grid ids."""
    with open_project(root) as project:
        store = project.store
        grids = {g.id: g for g in store.grids.all()}
        return sorted(
            (
                grids[e.grid_id].prompt,
                grids[e.grid_id].model,
                e.annotator,
                e.action,
                e.state,
                e.category,
                e.features,
                e.note,
                e.webster,
                e.proposal_shown,
                e.proposal_category,
                round(e.created_at, 6),
            )
            for e in store.labels.current_all()
        )


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_export_then_import_into_a_fresh_copy_gives_the_same_current_labels(
    tmp_path: Path, runner: CliRunner, suffix: str
) -> None:
    renders = make_renders(tmp_path / "renders", RENDERS)
    original = build_project(runner, tmp_path / "original", renders, RENDERS)
    label_as_the_app_does(original)
    exported = tmp_path / f"labels{suffix}"
    ok(runner, "labels", "export", exported, "-p", original)

    # The copy imported the same renders in another order: the same grids, other ids.
    copy = build_project(runner, tmp_path / "copy", renders, RENDERS[::-1])
    result = ok(runner, "labels", "import", exported, "-p", copy, "--json")
    report = json.loads(result.output)
    assert report["added"] == report["rows"] == 7 and report["already_imported"] == 0
    assert current_labels(copy) == current_labels(original)

    again = json.loads(ok(runner, "labels", "import", exported, "-p", copy, "--json").output)
    assert again["added"] == 0 and again["already_imported"] == 7  # idempotent
    assert current_labels(copy) == current_labels(original)

    # The copy exports the same rows, event ids and times included; only its grid ids differ.
    ok(runner, "labels", "export", tmp_path / f"again{suffix}", "-p", copy)
    assert file_rows(tmp_path / f"again{suffix}") == file_rows(exported)


def file_rows(path: Path) -> list[dict[str, Any]]:
    rows = [record.fields() for record in read_label_file(path).records]
    return sorted(({**row, "grid_id": None} for row in rows), key=lambda row: row["event_id"])


def test_one_prompt_from_two_folders_round_trips_by_each_grids_origin(
    tmp_path: Path, runner: CliRunner
) -> None:
    """The same prompt and model before and after a mitigation: two grids, told apart by
    the folder each was imported from, in the file and in the project it goes to."""
    folders = ["mug", "mug-after"]
    renders = make_renders(tmp_path / "renders", folders)

    def labels_by_origin(root: Path) -> dict[str, Category | None]:
        with open_project(root) as project:
            origins = {grid.id: grid.origin for grid in project.store.grids.all()}
            return {origins[e.grid_id]: e.category for e in project.store.labels.current_all()}

    original = build_project(runner, tmp_path / "original", renders, folders)
    with open_project(original) as project:
        grids = {grid.origin: grid.id for grid in project.store.grids.all()}
        project.store.labels.label(grids["mug"], "ana", Category.EXPLICIT)
        project.store.labels.label(grids["mug-after"], "ana", Category.NONE)
    exported = tmp_path / "labels.csv"
    ok(runner, "labels", "export", exported, "-p", original)
    assert sorted(row["source"] for row in file_rows(exported)) == folders
    copy = build_project(runner, tmp_path / "copy", renders, folders[::-1])
    ok(runner, "labels", "import", exported, "-p", copy)
    assert (
        labels_by_origin(copy)
        == labels_by_origin(original)
        == {
            "mug": Category.EXPLICIT,
            "mug-after": Category.NONE,
        }
    )


def test_imported_labels_are_marked_with_their_file(tmp_path: Path, runner: CliRunner) -> None:
    renders = make_renders(tmp_path / "renders", RENDERS)
    root = build_project(runner, tmp_path / "p", renders, RENDERS)
    labels = tmp_path / "colleague.csv"
    labels.write_text(
        "prompt,model,annotator,category,note,time\n"
        "a photo of mug,sd-2.1,chen,explicit,brand logo,2024-05-01T12:00:00Z\n",
        encoding="utf-8",
    )
    ok(runner, "labels", "import", labels, "-p", root)
    with open_project(root) as project:
        [event] = project.store.labels.current_all()
        assert event.origin == str(labels.resolve()) and event.external_id
        assert event.created_at == 1714564800.0
        assert not event.proposal_shown  # memgrid showed chen nothing
        text = describe_event(event).plain
        assert text.startswith("chen (imported from colleague.csv): ")
    # A dataset says which labels came from a file (by its name: no local folders leak).
    ok(runner, "export", "-f", "jsonl", "-o", tmp_path / "out", "-p", root)
    rows = [
        json.loads(line) for line in (tmp_path / "out" / "grids.jsonl").read_text().splitlines()
    ]
    [labelled] = [row for row in rows if row["labels"]]
    assert [label["imported_from"] for label in labelled["labels"]] == ["colleague.csv"]


def test_a_bad_row_stores_nothing_and_names_its_line(tmp_path: Path, runner: CliRunner) -> None:
    renders = make_renders(tmp_path / "renders", RENDERS)
    root = build_project(runner, tmp_path / "p", renders, RENDERS)
    cases = {
        "prompt,annotator,category\na photo of kitchen,ana,none\na photo of nothing,ana,none\n": "line 3: no grid for prompt 'a photo of nothing'",
        "prompt,annotator,category\na photo of kitchen,ana,none\na photo of mug,ana,none\n": "line 3: prompt 'a photo of mug' names 2 grids",
        "grid_id,annotator,category\n1,ana,none\n99,ana,none\n": "line 3: no grid with id 99",
        "prompt,source,annotator,category\na photo of mug,kitchen,ana,none\n": "line 2: no grid for prompt 'a photo of mug', source 'kitchen'",
        "prompt,annotator,category\na photo of kitchen,ana,sometimes\n": "line 2: category",
    }
    for text, problem in cases.items():
        path = tmp_path / "bad.csv"
        path.write_text(text, encoding="utf-8")
        result = invoke(runner, "labels", "import", path, "-p", root)
        assert result.exit_code == 1, text
        assert result.output.startswith(f"memgrid: error: {path}:") and problem in result.output
        with open_project(root) as project:
            assert project.store.labels.current_all() == []
    # Model or source tells the two mug grids apart.
    path = tmp_path / "good.csv"
    path.write_text(
        "prompt,model,source,annotator,category\n"
        "a photo of mug,sd-2.1,,ana,none\n"
        "a photo of mug,,renders/mug,bo,explicit\n",
        encoding="utf-8",
    )
    ok(runner, "labels", "import", path, "-p", root)
    with open_project(root) as project:
        models = {
            e.annotator: project.store.grids.get(e.grid_id).model
            for e in project.store.labels.current_all()
        }
    assert models == {"ana": "sd-2.1", "bo": "sd-1.4"}


def test_a_changed_row_under_an_imported_event_id_is_refused(
    tmp_path: Path, runner: CliRunner
) -> None:
    renders = make_renders(tmp_path / "renders", RENDERS)
    root = build_project(runner, tmp_path / "p", renders, RENDERS)
    path = tmp_path / "labels.jsonl"
    row = {"event_id": "e1", "prompt": "a photo of forest", "annotator": "ana", "category": "none"}
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    ok(runner, "labels", "import", path, "-p", root)
    path.write_text(json.dumps({**row, "category": "explicit"}) + "\n", encoding="utf-8")
    result = invoke(runner, "labels", "import", path, "-p", root)
    assert result.exit_code == 1
    assert "line 1: event_id 'e1' was imported before" in result.output
    assert "give the changed row a new event_id" in result.output


def test_export_refuses_to_replace_a_file_without_overwrite(
    tmp_path: Path, runner: CliRunner
) -> None:
    renders = make_renders(tmp_path / "renders", RENDERS)
    root = build_project(runner, tmp_path / "p", renders, RENDERS)
    label_as_the_app_does(root)
    out = tmp_path / "labels.csv"
    out.write_text("mine", encoding="utf-8")
    result = invoke(runner, "labels", "export", out, "-p", root)
    assert result.exit_code == 1 and "already exists; pass --overwrite" in result.output
    assert out.read_text() == "mine"
    ok(runner, "labels", "export", out, "-p", root, "--overwrite")
    with open(out, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 7
    kitchen = next(
        r for r in rows if r["annotator"] == "ana" and r["prompt"] == "a photo of kitchen"
    )
    assert kitchen["note"].startswith("'=SUM")  # safe to open in a spreadsheet
    assert kitchen["source"].endswith("kitchen") and kitchen["webster"] == "TV"
    assert json.loads(kitchen["features"]) == [WATERMARK.to_dict()]


# ---- Webster's labels, then calibration ------------------------------------------------------

WEBSTER_TYPES = {
    "explicit-copy": "MV",
    "implicit-copy": "MV",
    "unintended-copy": "MV",
    "unintended-template": "TV",
    "explicit-template": "TV",
    "varied": "N",
}


def test_webster_labels_for_imported_grids_calibrate(tmp_path: Path, runner: CliRunner) -> None:
    """Webster-style labels (prompt, MV/TV/RV/N) on grids made by `memgrid import`."""
    renders = tmp_path / "renders"
    labelled = [grid for grid in DEMO_SET if grid.group in WEBSTER_TYPES]
    for index, grid in enumerate(labelled):
        folder = renders / f"grid{index:02d}"
        folder.mkdir(parents=True)
        (folder / "prompt.txt").write_text(grid.prompt, encoding="utf-8")
        for seed, image in demo_images(grid):
            image.resize((128, 128)).save(folder / f"{seed:04d}.png")
    root = tmp_path / "project"
    ok(runner, "init", root)
    ok(runner, "import", renders, "-p", root)
    ok(runner, "score", "--metric", "phash", "-p", root)  # the quick pixel metric
    ok(runner, "propose", "-p", root)
    webster = tmp_path / "webster.csv"
    with open(webster, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "webster"])
        writer.writerows([grid.prompt, WEBSTER_TYPES[grid.group]] for grid in labelled)
    result = ok(runner, "labels", "import", webster, "-p", root, "--annotator", "webster2023")
    assert f"{len(labelled)} label events added on {len(labelled)} grids" in result.output
    memorized = len(labelled) - 6
    assert f"note: {memorized} rows gave a Webster type and no category: read as unintended" in (
        result.stderr
    )

    result = ok(runner, "calibrate", "-p", root, "--json", "--bootstraps", "50")
    (run,) = json.loads(result.output)
    assert run["label_count"] == len(labelled)
    copies = sum(WEBSTER_TYPES[g.group] == "MV" for g in labelled)
    assert run["category_counts"] == {
        "explicit": 0,
        "implicit": 0,
        "unintended": len(labelled) - 6,  # memorized types read as unintended
        "none": 6,
    }
    # tau_mem is fitted on the copies against the varied grids: the TV grids are templates.
    assert "template-only" in run["threshold_fits"]["tau_mem"]
    fit = next(f for f in run["signals"] if f["signal"] == "pixel:clique_share")
    assert fit["positives"] == len(labelled) - 6 and fit["negatives"] == 6
    assert copies == 9
    assert run["fitted"]["tau_mem"] != run["current"]["tau_mem"]
    with open_project(root) as project:
        events = project.store.labels.current_all()
        assert {e.annotator for e in events} == {"webster2023"}
        assert all(e.state is LabelState.LABELLED and e.imported for e in events)


def test_labels_commands_need_a_label_file(tmp_path: Path, runner: CliRunner) -> None:
    root = tmp_path / "p"
    ok(runner, "init", root)
    result = invoke(runner, "labels", "export", tmp_path / "labels.txt", "-p", root)
    assert result.exit_code == 1 and "must end in .jsonl or .csv" in result.output
    missing = invoke(runner, "labels", "import", tmp_path / "none.csv", "-p", root)
    assert missing.exit_code == 1 and "file not found" in missing.output
    shutil.rmtree(root)


# ---- memgrid label ---------------------------------------------------------------------------


def test_label_writes_as_the_app_does_and_keeps_to_leases_and_overlap(
    tmp_path: Path, runner: CliRunner
) -> None:
    from memgrid.db.queue import AnnotationQueue

    renders = make_renders(tmp_path / "renders", RENDERS)
    root = build_project(runner, tmp_path / "p", renders, RENDERS)
    with open_project(root) as project:
        kitchen = grid_of(project, "a photo of kitchen")
        forest = grid_of(project, "a photo of forest")
        AnnotationQueue(project.store, "bo").claim(forest)  # bo has the forest on screen
    result = ok(
        runner,
        "label",
        kitchen,
        "unintended",
        "-p",
        root,
        "-a",
        "ana",
        "--webster",
        "TV",
        "--note",
        "stock watermark",
        "--json",
    )
    written = json.loads(result.output)
    assert (written["grid_id"], written["category"], written["webster"]) == (
        kitchen,
        "unintended",
        "TV",
    )
    leased = invoke(runner, "label", forest, "none", "-p", root, "-a", "ana")
    assert leased.exit_code == 1
    assert f"grid {forest}: another annotator holds it in the app" in leased.output
    done = invoke(runner, "label", kitchen, "none", "-p", root, "-a", "chen")
    assert done.exit_code == 1
    assert f"grid {kitchen}: ana labelled it already and --overlap is 1; " in done.output
    assert "pass --overlap 2 to add another label" in done.output
    ok(runner, "label", kitchen, "none", "-p", root, "-a", "chen", "--overlap", "2")
    ok(runner, "label", kitchen, "explicit", "-p", root, "-a", "ana")  # a quick fix of her own
    missing = invoke(runner, "label", 999, "none", "-p", root)
    assert missing.exit_code == 1 and "grid 999: no grid with this id" in missing.output
    with open_project(root) as project:
        votes = {(v.annotator, v.category) for v in project.store.labels.votes_where()}
        assert votes == {("ana", Category.EXPLICIT), ("chen", Category.NONE)}
        history = project.store.labels.events_where(grid_id=kitchen)
        assert history[0].webster is Webster.TEMPLATE_VERBATIM
        assert history[0].note == "stock watermark"
        assert not any(e.proposal_shown or e.imported for e in history)
        # Each command handed its lease back: the kitchen is free for the next annotator.
        assert AnnotationQueue(project.store, "dan").claim(kitchen)


def test_label_reads_its_choices_whatever_their_case(tmp_path: Path, runner: CliRunner) -> None:
    renders = make_renders(tmp_path / "renders", RENDERS[:1])
    root = build_project(runner, tmp_path / "p", renders, RENDERS[:1])
    with open_project(root) as project:
        kitchen = grid_of(project, "a photo of kitchen")
    ok(runner, "label", kitchen, "Implicit", "-p", root, "-a", "ana", "--webster", "rv")
    with open_project(root) as project:
        (vote,) = project.store.labels.votes_where(grid_ids=[kitchen])
        assert (vote.category, vote.webster) == (Category.IMPLICIT, Webster.RETRIEVAL_VERBATIM)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("bob ", "has control characters or outer spaces"),
        ("x\ny", "has control characters or outer spaces"),
        ("   ", "is empty"),
        ("a" * 201, "is longer than 200 characters"),
    ],
)
def test_a_name_a_label_file_could_not_carry_back_is_refused_at_the_command_line(
    demo_project_dir: Path, runner: CliRunner, name: str, problem: str
) -> None:
    """An export must import again: the label file's rule for names holds for --annotator
    too, so a label is never stored under a name its export would be refused for."""
    for command in (["label", "1", "none"], ["annotate"], ["labels", "import", "x.csv"]):
        result = invoke(runner, *command, "-p", demo_project_dir, "-a", name)
        assert result.exit_code == 2
        assert problem in result.output and len(result.output.splitlines()) == 1
    with open_project(demo_project_dir) as project:
        assert project.store.db.execute("SELECT count(*) FROM label_events").fetchone()[0] == 0


def test_a_name_with_inner_spaces_round_trips(
    demo_project_dir: Path, tmp_path: Path, runner: CliRunner
) -> None:
    ok(runner, "label", "1", "none", "-p", demo_project_dir, "-a", "Ana María")
    exported = tmp_path / "labels.jsonl"
    ok(runner, "labels", "export", exported, "-p", demo_project_dir)
    assert [r.annotator for r in read_label_file(exported).records] == ["Ana María"]


def export_then_import(
    runner: CliRunner, source: Path, target: Path, file: Path
) -> tuple[int, int]:
    """`labels export` from one project, `labels import` into another: (added, already there)."""
    ok(runner, "labels", "export", file, "-p", source)
    report = json.loads(ok(runner, "labels", "import", file, "-p", target, "--json").output)
    return report["added"], report["already_imported"]


def test_importing_a_projects_own_export_adds_nothing(
    demo_project_dir: Path, tmp_path: Path, runner: CliRunner
) -> None:
    """Its rows name this project's events (`<project id>:<event id>`): a copy would be a
    second current label, and undo would take back the copy and leave the label."""
    ok(runner, "label", "3", "unintended", "-p", demo_project_dir, "-a", "A")
    moved = export_then_import(runner, demo_project_dir, demo_project_dir, tmp_path / "l.jsonl")
    assert moved == (0, 1)
    with open_project(demo_project_dir) as project:
        assert len(project.store.labels.events_where(grid_id=3)) == 1


def test_labels_from_a_copy_of_the_project_are_imported(
    demo_project_dir: Path, tmp_path: Path, runner: CliRunner
) -> None:
    """A copied folder keeps the project's id, so the copy's event 1 has the same event id
    as this project's event 1: told apart by what they say, the copy's label comes in."""
    copy = tmp_path / "copy"
    shutil.copytree(demo_project_dir, copy)
    ok(runner, "label", "5", "explicit", "-p", demo_project_dir, "-a", "lead")
    ok(runner, "label", "1", "none", "-p", copy, "-a", "alice")
    assert export_then_import(runner, copy, demo_project_dir, tmp_path / "alice.csv") == (1, 0)
    with open_project(demo_project_dir) as project:
        current = {(e.grid_id, e.annotator) for e in project.store.labels.current_all()}
    assert current == {(5, "lead"), (1, "alice")}


@pytest.mark.parametrize("number", ["\u00b2", "99999999999999999999", "007x"])
def test_an_event_id_that_only_looks_like_this_projects_is_a_new_row(
    demo_project_dir: Path, tmp_path: Path, runner: CliRunner, number: str
) -> None:
    with open_project(demo_project_dir) as project:
        project_id = project.store.project_id
    row = {"grid_id": 2, "annotator": "ana", "category": "none"}
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({**row, "event_id": f"{project_id}:{number}"}) + "\n")
    report = json.loads(
        ok(runner, "labels", "import", labels, "-p", demo_project_dir, "--json").output
    )
    assert report["added"] == 1
