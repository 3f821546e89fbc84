"""Label files: rows read and checked line by line, stable event ids, and files written back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memgrid.core.errors import InputError
from memgrid.core.label_files import (
    GridRef,
    LabelRecord,
    label_file_bytes,
    read_label_file,
    time_text,
)
from memgrid.core.taxonomy import Category, Feature, LabelAction, LabelState, Webster


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(tmp_path: Path, *rows: dict, name: str = "labels.jsonl") -> Path:
    return write(tmp_path, name, "".join(json.dumps(row) + "\n" for row in rows))


def test_a_webster_style_csv_reads_with_categories_from_the_types(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "webster.csv",
        "prompt,webster\n"
        "  Mona Lisa by Leonardo da Vinci ,MV\n"
        "a living room with a grey sofa,tv\n"
        "a forest path,N\n",
    )
    read = read_label_file(path, default_annotator="webster2023")
    assert [(r.grid.prompt, r.webster, r.category, r.state) for r in read.records] == [
        (
            "Mona Lisa by Leonardo da Vinci",
            Webster.MATCHING_VERBATIM,
            Category.UNINTENDED,
            LabelState.LABELLED,
        ),
        (
            "a living room with a grey sofa",
            Webster.TEMPLATE_VERBATIM,
            Category.UNINTENDED,
            LabelState.LABELLED,
        ),
        ("a forest path", Webster.NONE, Category.NONE, LabelState.LABELLED),
    ]
    assert {r.annotator for r in read.records} == {"webster2023"}
    assert all(r.location.startswith("line ") for r in read.records)
    assert not any(r.proposal_shown for r in read.records)  # memgrid showed them nothing


@pytest.mark.parametrize(
    ("key", "kind"), [("category", Category), ("webster", Webster)], ids=["category", "webster"]
)
def test_choices_are_read_whatever_their_case(
    tmp_path: Path, key: str, kind: type[Category] | type[Webster]
) -> None:
    def label_file(name: str, spellings: list[str]) -> Path:
        rows = "".join(f"{n},ana,{spelling}\n" for n, spelling in enumerate(spellings, start=1))
        return write(tmp_path, name, f"grid_id,annotator,{key}\n{rows}")

    members = [member for member in kind for _ in range(3)]
    spellings = [
        spelling
        for member in kind
        for spelling in (member.value.lower(), member.value.upper(), f" {member.value.title()} ")
    ]
    records = read_label_file(label_file("cases.csv", spellings)).records
    assert [getattr(record, key) for record in records] == members
    # The event id comes from what a row means: "TV" and " tv " are the same label.
    exact = read_label_file(label_file("exact.csv", [member.value for member in members]))
    assert [r.event_id for r in exact.records] == [r.event_id for r in records]


def test_column_names_are_read_whatever_their_case(tmp_path: Path) -> None:
    spreadsheet = write(tmp_path, "sheet.csv", "Prompt, Webster ,ANNOTATOR\na cat,TV,ana\n")
    [record] = read_label_file(spreadsheet).records
    assert (record.grid.prompt, record.webster, record.annotator) == (
        "a cat",
        Webster.TEMPLATE_VERBATIM,
        "ana",
    )
    [from_jsonl] = read_label_file(
        jsonl(tmp_path, {"Prompt": "a cat", "Webster": "TV", "annotator": "ana"})
    ).records
    assert from_jsonl.event_id == record.event_id  # the same label, whatever the spelling
    twice = write(tmp_path, "twice.csv", "prompt,Prompt,annotator,category\na,b,ana,none\n")
    with pytest.raises(InputError, match="line 1: columns 'prompt' and 'Prompt' are both prompt"):
        read_label_file(twice)


def test_every_column_of_a_jsonl_row(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path,
        {
            "event_id": "colleague-17",
            "prompt": "a mug with a logo",
            "model": "sd-1.4",
            "source": "renders/mug",
            "annotator": "chen",
            "action": "adjudicate",
            "category": "Explicit",
            "webster": "TV",
            "features": [
                {"category": "explicit", "note": "brand logo", "box": [0, 6, 1, 7]},
                {"category": "unintended", "name": "watermark", "tiles": [63, 62]},
            ],
            "note": "logo every seed",
            "time": "2024-05-01T12:00:00Z",
            "proposal_shown": True,
            "proposal_category": "none",
        },
    )
    [record] = read_label_file(path).records
    assert record.grid == GridRef(None, "a mug with a logo", "sd-1.4", "renders/mug")
    assert (record.annotator, record.action, record.category) == (
        "chen",
        LabelAction.ADJUDICATE,
        Category.EXPLICIT,
    )
    assert record.features == (
        Feature(Category.EXPLICIT, "brand logo", (6, 7, 14, 15)),
        Feature(Category.UNINTENDED, "watermark", (62, 63)),
    )
    assert record.time == 1714564800.0 and time_text(record.time).startswith("2024-05-01T12:00")
    assert record.proposal_shown and record.proposal_category is Category.NONE
    assert record.event_id == "colleague-17"


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({"annotator": "a", "category": "none"}, "names no grid"),
        ({"grid_id": 1, "category": "none"}, "names no annotator"),
        ({"grid_id": 0, "annotator": "a", "category": "none"}, "grid_id must be a positive"),
        ({"grid_id": True, "annotator": "a", "category": "none"}, "grid_id must be a positive"),
        ({"grid_id": 1, "annotator": "a"}, "a label needs a category (or a Webster type)"),
        ({"grid_id": 1, "annotator": "a", "category": "maybe"}, "category 'maybe' is not one of"),
        ({"grid_id": 1, "annotator": "a", "webster": "XX"}, "webster 'XX' is not one of MV"),
        ({"grid_id": 1, "annotator": "a", "action": "skip", "category": "none"}, "a skip has no"),
        ({"grid_id": 1, "annotator": "a", "action": "undo"}, "action 'undo' is not one of"),
        ({"grid_id": 1, "annotator": "a\nb", "category": "none"}, "control characters"),
        ({"grid_id": 1, "annotator": "a", "category": "none", "catgory": "x"}, "unknown column"),
        ({"grid_id": 1, "annotator": "a", "category": "none", "time": "yesterday"}, "ISO 8601"),
        ({"grid_id": 1, "annotator": "a", "category": "none", "time": 1714564800000}, "2100"),
        (
            {"grid_id": 1, "annotator": "a", "category": "none", "proposal_shown": "perhaps"},
            "true or false",
        ),
        (
            {"grid_id": 1, "annotator": "a", "category": "none", "features": [{"name": "x"}]},
            "feature 1: needs a category",
        ),
        (
            {
                "grid_id": 1,
                "annotator": "a",
                "category": "none",
                "features": [{"category": "none", "tiles": [64]}],
            },
            "tiles must be whole numbers",
        ),
        (
            {
                "grid_id": 1,
                "annotator": "a",
                "category": "none",
                "features": [{"category": "none", "box": [2, 2, 1, 3]}],
            },
            "box must be",
        ),
        (
            {
                "grid_id": 1,
                "annotator": "a",
                "category": "none",
                "features": [{"category": "none", "box": [0, 0, 1, 1], "tiles": [0]}],
            },
            "not both",
        ),
        ({"grid_id": 1, "annotator": "a", "category": "none", "note": "x" * 10_001}, "longer"),
    ],
)
def test_a_bad_row_is_one_line_naming_the_file_and_line(
    tmp_path: Path, row: dict, problem: str
) -> None:
    good = {"grid_id": 2, "annotator": "a", "category": "none"}
    path = jsonl(tmp_path, good, row)
    with pytest.raises(InputError) as caught:
        read_label_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:line 2: ") and problem in message, message
    assert "\n" not in message


def test_a_bad_file_is_named(tmp_path: Path) -> None:
    for name, text, problem in [
        ("labels.txt", "x", "unknown label file type .txt"),
        ("labels.jsonl", "{not json\n", "line 1: invalid JSON"),
        ("labels.jsonl", "[1, 2]\n", "line 1: each line must be a JSON object"),
        ("labels.csv", "grid,annotator\n1,a\n", "line 1: unknown column 'grid'"),
        ("labels.csv", "grid_id,annotator,category\n1,a,none,extra\n", "line 2: more fields"),
        # Read leniently, the open quote would swallow rows 3-4 into row 2's note, silently.
        (
            "labels.csv",
            'grid_id,annotator,category,note\n1,a,none,"looks like a\n2,a,none,x\n3,a,none,x\n',
            "line 2: malformed CSV .a quoted field opened here is never closed.",
        ),
        (
            "labels.csv",
            'grid_id,annotator,category,note\n1,a,none,x\n2,a,none,"fine"but\n',
            "line 3: malformed CSV",
        ),
    ]:
        with pytest.raises(InputError, match=problem):
            read_label_file(write(tmp_path, name, text))


def test_event_ids_are_stable_and_repeats_are_dropped(tmp_path: Path) -> None:
    row = {"prompt": "a cat", "annotator": "ana", "category": "none"}
    first = read_label_file(jsonl(tmp_path, row, row, {**row, "note": "sure"}))
    assert first.duplicates_in_file == 1 and len(first.records) == 2
    again = read_label_file(jsonl(tmp_path, row, name="again.jsonl"))
    assert again.records[0].event_id == first.records[0].event_id  # same row, same id
    assert first.records[0].event_id != first.records[1].event_id
    as_csv = read_label_file(
        write(tmp_path, "same.csv", "prompt,annotator,category\na cat,ana,none\n")
    )
    assert as_csv.records[0].event_id == first.records[0].event_id  # whatever the format
    clash = jsonl(tmp_path, {**row, "event_id": "e1"}, {**row, "event_id": "e1", "note": "x"})
    with pytest.raises(InputError, match="line 2: event_id 'e1' is used on line 1"):
        read_label_file(clash)


HOSTILE_NOTE = '=HYPERLINK("http://x")\n"quoted", comma;\ttab\r\nline\u2028sep'


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_written_files_read_back_to_the_same_records(tmp_path: Path, suffix: str) -> None:
    records = [
        LabelRecord(
            grid=GridRef(3, "-a prompt that starts like a formula", "m", "renders/3"),
            annotator="ana",
            action=LabelAction.LABEL,
            category=Category.UNINTENDED,
            webster=Webster.TEMPLATE_VERBATIM,
            features=(Feature(Category.UNINTENDED, "@watermark", (0, 1, 8)),),
            note=HOSTILE_NOTE,
            time=1714564800.123456,
            proposal_shown=True,
            proposal_category=Category.NONE,
            event_id="p1:17",
        ),
        LabelRecord(grid=GridRef(4), annotator="bo", action=LabelAction.SKIP, event_id="p1:18"),
        LabelRecord(
            grid=GridRef(5), annotator="bo", action=LabelAction.FLAG, note="'", event_id="p1:19"
        ),
    ]
    path = tmp_path / f"out{suffix}"
    path.write_bytes(label_file_bytes(records, suffix))
    read = read_label_file(path).records
    assert [r.fields() for r in read] == [r.fields() for r in records]
    if suffix == ".csv":
        text = path.read_text(encoding="utf-8")
        assert "'=HYPERLINK" in text and "'-a prompt" in text  # safe to open in a spreadsheet


def test_a_quoted_note_may_span_lines(tmp_path: Path) -> None:
    text = 'grid_id,annotator,category,note\n1,a,none,"two\nlines"\n2,a,none,x\n'
    records = read_label_file(write(tmp_path, "labels.csv", text)).records
    assert [(r.grid.grid_id, r.note) for r in records] == [(1, "two\nlines"), (2, "x")]
