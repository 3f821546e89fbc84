"""The agreed label, the export filters, flat rows and the staged export folder."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
from pathlib import Path

import pytest

from memgrid.core.agreement import AgreedLabel, AgreementHow, GridState, agreed_label, grid_state
from memgrid.core.errors import InputError, ProjectError, UnavailableError
from memgrid.core.export.base import ExportItem, project_file
from memgrid.core.export.columns import ColumnKind, DataColumns, column_kind
from memgrid.core.export.csv import CsvWriter
from memgrid.core.export.options import ExportFilters, ExportFormat, ExportOptions, ImageMode
from memgrid.core.export.rows import compact_json, flat_columns, flat_row
from memgrid.core.export.schema import load_pyarrow
from memgrid.core.export.staging import staged_destination
from memgrid.core.records import LabelEvent
from memgrid.core.taxonomy import Category, Feature, LabelAction, LabelState, Webster

WATERMARK = Feature(Category.UNINTENDED, "watermark", (0, 1))
FACE = Feature(Category.EXPLICIT, "named person's face")
_next_id = iter(range(1, 10_000))


def event(
    annotator: str,
    category: Category | None,
    *,
    action: LabelAction = LabelAction.LABEL,
    state: LabelState | None = LabelState.LABELLED,
    features: tuple[Feature, ...] = (),
    webster: Webster | None = None,
) -> LabelEvent:
    return LabelEvent(
        id=next(_next_id),
        grid_id=1,
        annotator=annotator,
        action=action,
        state=state,
        category=category,
        features=features,
        webster=webster,
    )


def vote(annotator: str, category: Category, **details) -> LabelEvent:
    return event(annotator, category, **details)


def adjudication(annotator: str, category: Category, **details) -> LabelEvent:
    return event(annotator, category, action=LabelAction.ADJUDICATE, **details)


def flag(annotator: str) -> LabelEvent:
    return event(annotator, None, action=LabelAction.FLAG, state=LabelState.FLAGGED)


def skip(annotator: str) -> LabelEvent:
    return event(annotator, None, action=LabelAction.SKIP, state=LabelState.SKIPPED)


# ---- the agreed label --------------------------------------------------------------------


def test_majority_wins_with_its_supporters_features_and_webster_type() -> None:
    agreed = agreed_label(
        [
            vote(
                "ana", Category.UNINTENDED, features=(WATERMARK,), webster=Webster.TEMPLATE_VERBATIM
            ),
            vote("bo", Category.UNINTENDED, features=(WATERMARK, FACE)),
            vote("chen", Category.NONE, webster=Webster.NONE),
        ]
    )
    assert agreed == AgreedLabel(
        category=Category.UNINTENDED,
        how=AgreementHow.MAJORITY,
        support=2,
        annotators=3,
        features=(WATERMARK, FACE),
        webster=Webster.TEMPLATE_VERBATIM,
    )
    assert agreed.share == pytest.approx(2 / 3)


def test_a_tie_is_reported_with_the_tied_categories_and_no_label() -> None:
    agreed = agreed_label([vote("ana", Category.IMPLICIT), vote("bo", Category.NONE)])
    assert agreed.category is None
    assert agreed.how is AgreementHow.TIE
    assert agreed.tied == (Category.IMPLICIT, Category.NONE)
    assert (agreed.support, agreed.annotators) == (1, 2)


def test_adjudication_settles_a_grid_and_support_counts_annotators_who_agree() -> None:
    agreed = agreed_label(
        [
            vote("ana", Category.IMPLICIT),
            vote("bo", Category.NONE),
            adjudication("judge", Category.NONE, features=(FACE,), webster=Webster.NONE),
        ]
    )
    assert agreed.category is Category.NONE
    assert agreed.how is AgreementHow.ADJUDICATED
    assert (agreed.support, agreed.annotators) == (1, 2)
    assert agreed.features == (FACE,)
    assert agreed.webster is Webster.NONE


def test_the_latest_adjudication_wins() -> None:
    first = adjudication("judge", Category.EXPLICIT)
    second = adjudication("chief", Category.IMPLICIT)
    assert agreed_label([second, first]).category is Category.IMPLICIT


def test_flags_and_skips_do_not_vote() -> None:
    agreed = agreed_label([vote("ana", Category.EXPLICIT), flag("bo"), skip("chen")])
    assert (agreed.category, agreed.how, agreed.support, agreed.annotators) == (
        Category.EXPLICIT,
        AgreementHow.MAJORITY,
        1,
        1,
    )
    assert agreed_label([flag("bo"), skip("chen")]).how is AgreementHow.UNLABELLED
    assert agreed_label([]).share is None


def test_grid_state_keeps_an_open_flag_first_then_labelled_then_skipped() -> None:
    # Issue 13, defect 4: a flag stays on the grid when someone else labels it...
    assert grid_state([skip("a"), flag("b"), vote("c", Category.NONE)]) is GridState.FLAGGED
    assert grid_state([skip("a"), flag("b")]) is GridState.FLAGGED
    # ...until a verdict newer than the flag resolves it.
    open_flag = flag("b")
    verdict = adjudication("judge", Category.NONE)
    assert grid_state([open_flag, vote("c", Category.NONE), verdict]) is GridState.LABELLED
    assert grid_state([verdict, flag("d")]) is GridState.FLAGGED
    assert grid_state([skip("a"), vote("c", Category.NONE)]) is GridState.LABELLED
    assert grid_state([skip("a")]) is GridState.SKIPPED
    assert grid_state([]) is GridState.UNLABELLED


# ---- filters -----------------------------------------------------------------------------


MAJORITY = [
    vote("ana", Category.EXPLICIT),
    vote("bo", Category.EXPLICIT),
    vote("chen", Category.NONE),
]
ADJUDICATED = [vote("ana", Category.NONE), adjudication("judge", Category.UNINTENDED)]
TIE = [vote("ana", Category.IMPLICIT), vote("bo", Category.NONE)]
FLAGGED = [flag("ana")]
SKIPPED = [skip("bo")]
UNTOUCHED: list[LabelEvent] = []
GRIDS = {
    "majority": MAJORITY,
    "adjudicated": ADJUDICATED,
    "tie": TIE,
    "flagged": FLAGGED,
    "skipped": SKIPPED,
    "untouched": UNTOUCHED,
}


def admitted(filters: ExportFilters) -> set[str]:
    return {name for name, events in GRIDS.items() if filters.admits(events, agreed_label(events))}


def test_no_filter_keeps_every_grid() -> None:
    assert admitted(ExportFilters()) == set(GRIDS)


def test_category_filter_reads_the_agreed_category() -> None:
    assert admitted(ExportFilters(categories=(Category.EXPLICIT,))) == {"majority"}
    assert admitted(ExportFilters(categories=(Category.UNINTENDED, Category.IMPLICIT))) == {
        "adjudicated"
    }


def test_state_filter_reads_the_grid_state() -> None:
    assert admitted(ExportFilters(states=(GridState.LABELLED,))) == {
        "majority",
        "adjudicated",
        "tie",
    }
    assert admitted(ExportFilters(states=(GridState.FLAGGED, GridState.SKIPPED))) == {
        "flagged",
        "skipped",
    }
    assert admitted(ExportFilters(states=(GridState.UNLABELLED,))) == {"untouched"}


def test_annotator_filter_keeps_their_grids_and_makes_state_theirs() -> None:
    assert admitted(ExportFilters(annotator="ana")) == {"majority", "adjudicated", "tie", "flagged"}
    assert admitted(ExportFilters(annotator="bo", states=(GridState.SKIPPED,))) == {"skipped"}
    assert admitted(ExportFilters(annotator="bo", states=(GridState.UNLABELLED,))) == {
        "adjudicated",
        "flagged",
        "untouched",
    }


def test_min_agreement_filter_reads_the_share_of_annotators() -> None:
    assert admitted(ExportFilters(min_agreement=0.6)) == {"majority"}
    assert admitted(ExportFilters(min_agreement=0.5)) == {"majority", "tie"}
    assert admitted(ExportFilters(min_agreement=0.0)) == {"majority", "adjudicated", "tie"}


def test_adjudicated_only_filter() -> None:
    assert admitted(ExportFilters(adjudicated_only=True)) == {"adjudicated"}


def test_filters_combine() -> None:
    both = ExportFilters(categories=(Category.EXPLICIT,), adjudicated_only=True)
    assert admitted(both) == set()


# ---- options -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("export_format", "with_images", "shard_size", "problem"),
    [
        (ExportFormat.IMAGEFOLDER, ImageMode.NONE, 10, "need their images"),
        (ExportFormat.WEBDATASET, ImageMode.NONE, 10, "need their images"),
        (ExportFormat.WEBDATASET, ImageMode.LINK, 10, "use copy, not link"),
        (ExportFormat.WEBDATASET, None, 0, "at least 1"),
    ],
)
def test_impossible_options_are_refused_before_writing(
    tmp_path: Path,
    export_format: ExportFormat,
    with_images: ImageMode | None,
    shard_size: int,
    problem: str,
) -> None:
    options = ExportOptions(
        export_format, tmp_path / "out", with_images=with_images, shard_size=shard_size
    )
    with pytest.raises(InputError, match=problem):
        options.check(tmp_path / "project")
    assert not (tmp_path / "out").exists()


def test_image_formats_copy_by_default_and_row_formats_leave_images() -> None:
    assert ExportOptions(ExportFormat.IMAGEFOLDER, Path("x")).image_mode is ImageMode.COPY
    assert ExportOptions(ExportFormat.PARQUET, Path("x")).image_mode is ImageMode.NONE


def test_the_project_folder_and_its_parents_are_never_a_destination(tmp_path: Path) -> None:
    project = tmp_path / "work" / "project"
    project.mkdir(parents=True)
    for destination in (project, project.parent, project / ".." / "project"):
        with pytest.raises(InputError, match="is the project folder or holds it"):
            ExportOptions(ExportFormat.JSONL, destination, overwrite=True).check(project)


def test_the_projects_own_files_are_never_a_destination(tmp_path: Path) -> None:
    project = tmp_path / "project"
    own = [project / "images", project / "memgrid.db"]
    for destination in (project / "images", project / "images" / "ab", project / "memgrid.db"):
        with pytest.raises(InputError, match="is part of the project"):
            ExportOptions(ExportFormat.JSONL, destination, overwrite=True).check(project, own)
    (project / "exports").mkdir(parents=True)
    ExportOptions(ExportFormat.JSONL, project / "exports" / "set").check(project, own)


def earlier_export(folder: Path, rows: str = "{}\n") -> Path:
    """A folder as an earlier export leaves it: rows and a memgrid manifest."""
    folder.mkdir()
    (folder / "grids.jsonl").write_text(rows)
    manifest = {"export_layout_version": 1, "format": "jsonl", "memgrid_version": "0.1.0"}
    (folder / "export.json").write_text(json.dumps(manifest))
    return folder


def test_an_existing_export_needs_overwrite(tmp_path: Path) -> None:
    earlier_export(tmp_path / "out")
    with pytest.raises(InputError, match="already exists; pass --overwrite"):
        ExportOptions(ExportFormat.JSONL, tmp_path / "out").check(tmp_path / "project")
    ExportOptions(ExportFormat.JSONL, tmp_path / "out", overwrite=True).check(tmp_path / "project")


def thesis_folder(folder: Path) -> Path:
    folder.mkdir()
    (folder / "thesis.tex").write_text("three years of work")
    return folder


def not_memgrids_manifest(folder: Path) -> Path:
    folder.mkdir()
    (folder / "export.json").write_text('{"exported_by": "another tool"}')
    return folder


def unreadable_manifest(folder: Path) -> Path:
    folder.mkdir()
    (folder / "export.json").write_bytes(b"\xff\xfe not json")
    return folder


def manifest_is_a_folder(folder: Path) -> Path:
    (folder / "export.json").mkdir(parents=True)
    return folder


def plain_file(path: Path) -> Path:
    path.write_text("a file")
    return path


def link_to_an_export(path: Path) -> Path:
    path.symlink_to(earlier_export(path.with_name("real-export")), target_is_directory=True)
    return path


NOT_EXPORTS = [
    thesis_folder,
    not_memgrids_manifest,
    unreadable_manifest,
    manifest_is_a_folder,
    plain_file,
    link_to_an_export,
]


def snapshot(root: Path) -> dict[str, bytes | None]:
    return {
        str(path.relative_to(root)): None if path.is_dir() else path.read_bytes()
        for path in sorted(root.rglob("*"))
    }


@pytest.mark.parametrize("make", NOT_EXPORTS)
@pytest.mark.parametrize("overwrite", [False, True])
def test_only_an_earlier_export_can_be_replaced(tmp_path: Path, make, overwrite: bool) -> None:
    destination = make(tmp_path / "out")
    before = snapshot(tmp_path)
    with pytest.raises(InputError, match="not a memgrid export") as refused:
        ExportOptions(ExportFormat.JSONL, destination, overwrite=overwrite).check(tmp_path / "p")
    assert str(refused.value).startswith(f"{destination}: ")
    assert "\n" not in str(refused.value)
    with (
        pytest.raises(InputError, match="not a memgrid export"),
        staged_destination(destination, overwrite=overwrite) as staging,
    ):
        (staging / "grids.jsonl").write_text("{}\n")
    assert snapshot(tmp_path) == before


def test_a_destination_that_stops_being_an_export_mid_way_is_kept(tmp_path: Path) -> None:
    destination = earlier_export(tmp_path / "out")
    ExportOptions(ExportFormat.JSONL, destination, overwrite=True).check(tmp_path / "project")
    with (
        pytest.raises(InputError, match="not a memgrid export"),
        staged_destination(destination, overwrite=True) as staging,
    ):
        shutil.rmtree(destination)
        thesis_folder(destination)
        (staging / "grids.jsonl").write_text("{}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (destination / "thesis.tex").read_text() == "three years of work"


def test_a_destination_in_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    destination = tmp_path / "no-such-folder" / "deeper" / "out"
    with pytest.raises(InputError) as refused:
        ExportOptions(ExportFormat.JSONL, destination).check(tmp_path / "project")
    message = str(refused.value)
    assert message == f"{destination}: folder {destination.parent} does not exist; create it first"
    with pytest.raises(InputError, match="does not exist; create it first"):  # noqa: SIM117
        with staged_destination(destination, overwrite=False):
            pass
    assert list(tmp_path.iterdir()) == []


def test_a_destination_under_a_file_is_an_error(tmp_path: Path) -> None:
    plain_file(tmp_path / "notes")
    with pytest.raises(InputError, match="is not a folder"):
        ExportOptions(ExportFormat.JSONL, tmp_path / "notes" / "out").check(tmp_path / "project")


def test_stored_image_paths_cannot_leave_the_project(tmp_path: Path) -> None:
    assert project_file(tmp_path, "images/ab/abc.png") == tmp_path / "images/ab/abc.png"
    for hostile in ("../outside.png", "/etc/passwd", "images/../../x.png", ""):
        with pytest.raises(ProjectError, match="leaves the project folder"):
            project_file(tmp_path, hostile)


def test_parquet_without_pyarrow_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(UnavailableError, match=r"pip install 'memgrid\[export\]'"):
        load_pyarrow()


# ---- the staged destination ------------------------------------------------------------------


def test_a_finished_export_is_renamed_onto_the_destination(tmp_path: Path) -> None:
    with staged_destination(tmp_path / "out", overwrite=False) as staging:
        (staging / "grids.jsonl").write_text("{}\n")
        assert not (tmp_path / "out").exists()
    assert (tmp_path / "out" / "grids.jsonl").read_text() == "{}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("interruption", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_an_interrupted_export_leaves_nothing_at_the_destination(
    tmp_path: Path, interruption: BaseException
) -> None:
    with (
        pytest.raises(type(interruption)),
        staged_destination(tmp_path / "out", overwrite=False) as staging,
    ):
        (staging / "grids.jsonl").write_text("half a row")
        raise interruption
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_overwrite_keeps_the_old_export(tmp_path: Path) -> None:
    earlier_export(tmp_path / "out", rows="old\n")
    with pytest.raises(KeyboardInterrupt), staged_destination(tmp_path / "out", overwrite=True):
        raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert (tmp_path / "out" / "grids.jsonl").read_text() == "old\n"


def test_overwrite_replaces_an_earlier_export(tmp_path: Path) -> None:
    earlier_export(tmp_path / "out", rows="old\n")
    with staged_destination(tmp_path / "out", overwrite=True) as staging:
        (staging / "new.txt").write_text("new")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


# ---- rows as text ------------------------------------------------------------------------------


HOSTILE = 'a "quoted" ../../etc/passwd,\nsecond line\r\nthird\u2028fourth\ttab \\ backslash'


def hostile_row() -> dict:
    return {
        "grid_id": 7,
        "prompt_id": 3,
        "prompt": HOSTILE,
        "prompt_meta": {},
        "model": "m",
        "source": "import",
        "category": None,
        "state": "unlabelled",
        "agreement": {
            "how": "unlabelled",
            "support": 0,
            "annotators": 0,
            "share": None,
            "tied": [],
        },
        "features": [],
        "webster": None,
        "labels": [],
        "proposal": None,
        "reference": None,
        "scores": {},
        "settings": {"note": HOSTILE},
        "provenance": {},
        "images": [],
        "contact_sheet": None,
    }


def test_compact_json_is_one_line_even_for_hostile_text() -> None:
    text = compact_json(hostile_row())
    assert text.splitlines() == [text]
    assert json.loads(text)["prompt"] == HOSTILE


def test_flat_rows_survive_csv_with_newlines_and_quotes() -> None:
    flat = flat_row(hostile_row())
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(flat), lineterminator="\n")
    writer.writeheader()
    writer.writerow(flat)
    [read] = list(csv.DictReader(io.StringIO(buffer.getvalue(), newline="")))
    assert read["prompt"] == HOSTILE
    assert json.loads(read["settings"]) == {"note": HOSTILE}
    assert read["category"] == "" and read["proposal"] == "null"


# Text a spreadsheet would run as a formula (OWASP, "CSV Injection"), and text it would not.
FORMULAS = [
    "=cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "\t=1+2",
    "\r=1+2",
    "'=1+2",  # already quoted: quoted again, so dropping one quote always gives the text back
]
HARMLESS = ["a cat = a dog", "Mona Lisa", "", " =1+2", "42", "\u2028=1"]


def csv_read_back(rows: list[dict], columns: DataColumns = DataColumns()) -> list[dict[str, str]]:
    text = CsvWriter.render_lines([flat_columns(columns)]) + CsvWriter.render(
        [ExportItem(row) for row in rows], columns
    )
    return list(csv.DictReader(io.StringIO(text, newline="")))


@pytest.mark.parametrize("text", FORMULAS)
def test_csv_cells_a_spreadsheet_would_run_get_a_leading_quote(text: str) -> None:
    row = {
        **hostile_row(),
        "prompt": text,
        "model": text,
        "proposal": {"category": "none", "threshold_set": {"name": text, "version": 1}},
    }
    [read] = csv_read_back([row])
    assert read["prompt"] == read["model"] == read["proposal_threshold_set"] == "'" + text
    assert read["prompt"][1:] == text
    assert json.loads(read["proposal"])["threshold_set"]["name"] == text  # JSON text: not a cell


@pytest.mark.parametrize("text", FORMULAS)
def test_csv_prompt_fields_a_spreadsheet_would_run_get_a_leading_quote(text: str) -> None:
    columns = DataColumns(prompt_meta=(("url", ColumnKind.TEXT),))
    [read] = csv_read_back([{**hostile_row(), "prompt_meta": {"url": text}}], columns)
    assert read["prompt_meta.url"] == "'" + text


@pytest.mark.parametrize("text", HARMLESS)
def test_csv_cells_a_spreadsheet_would_show_are_left_alone(text: str) -> None:
    [read] = csv_read_back([{**hostile_row(), "prompt": text}])
    assert read["prompt"] == text


def test_a_reference_caption_is_a_cell_like_any_other_text() -> None:
    reference = {
        "webster": "RV",
        "key": "=1+2",
        "url": "http://x",
        "caption": HOSTILE,
        "distance": 0.04,
    }
    [read] = csv_read_back([{**hostile_row(), "reference": reference}])
    assert read["reference_key"] == "'=1+2" and read["reference_caption"] == HOSTILE
    assert (read["reference_webster"], read["reference_distance"]) == ("RV", "0.04")
    assert json.loads(read["reference"])["key"] == "=1+2"


def test_csv_numbers_stay_numbers() -> None:
    row = {
        **hostile_row(),
        "proposal": {"category": "none", "score": -0.25, "margin": -0.5, "threshold_set": None},
    }
    [read] = csv_read_back([row])
    assert (read["proposal_score"], read["proposal_margin"]) == ("-0.25", "-0.5")


def test_a_bare_carriage_return_stays_inside_its_csv_cell() -> None:
    # Readers end a line at a lone CR too, so a cell holding one must be quoted.
    rows = [{**hostile_row(), "grid_id": 1, "prompt": "first\rsecond"}, hostile_row()]
    read = csv_read_back(rows)
    assert [row["prompt"] for row in read] == ["first\rsecond", HOSTILE]


# ---- the project's own columns -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("json_types", "kind"),
    [
        ({"text"}, ColumnKind.TEXT),
        ({"integer"}, ColumnKind.INTEGER),
        ({"integer", "null"}, ColumnKind.INTEGER),
        ({"integer", "real"}, ColumnKind.REAL),
        ({"true", "false"}, ColumnKind.BOOL),
        ({"integer", "text"}, ColumnKind.TEXT),
        ({"true", "integer"}, ColumnKind.TEXT),
        ({"array"}, ColumnKind.TEXT),
        ({"null"}, ColumnKind.TEXT),
    ],
)
def test_one_column_type_holds_every_value_a_key_has(
    json_types: set[str], kind: ColumnKind
) -> None:
    assert column_kind(json_types) is kind


def test_flat_rows_hold_prompt_fields_and_scalar_score_values_in_their_columns() -> None:
    columns = DataColumns.from_types(
        {"source_id": {"text"}, "rank": {"integer", "text"}, "tags": {"array"}},
        {"tiled-l2": {"clique_share": {"real"}, "region_tiles": {"array"}, "n_seeds": {"integer"}}},
    )
    row = {
        **hostile_row(),
        "prompt_meta": {"source_id": "sd-7", "rank": 3, "tags": ["a", "b"]},
        "scores": {"tiled-l2": {"values": {"clique_share": 1, "n_seeds": 8, "region_tiles": [1]}}},
    }
    flat = flat_row(row, columns)
    assert list(flat) == flat_columns(columns)
    assert flat_columns(columns)[2:6] == [
        "prompt",
        "prompt_meta.rank",
        "prompt_meta.source_id",
        "prompt_meta.tags",
    ]
    assert flat["prompt_meta.rank"] == "3"  # a key holding text and numbers is text
    assert flat["prompt_meta.tags"] == '["a","b"]'
    assert flat["score.tiled-l2.clique_share"] == 1.0  # a real column holds floats
    assert flat["score.tiled-l2.n_seeds"] == 8
    assert "score.tiled-l2.region_tiles" not in flat  # lists stay in the scores JSON
    bare = flat_row({**hostile_row(), "prompt_meta": {}}, columns)
    assert bare["prompt_meta.source_id"] is None and bare["score.tiled-l2.n_seeds"] is None
