"""Label files: labels made elsewhere (JSONL or CSV) read in, and a project's labels written out.

docs/design.md, "Labels in and out". One row is one label event: the grid it is about
(`grid_id`, or `prompt` with `model` and `source` to tell grids of one prompt apart), the
annotator, the action (label, flag, skip, adjudicate), the category, Webster's type,
features, a note and optionally when it was made. Every row has a stable `event_id`: the
file's own, or one derived from the row's content, so importing a file again adds nothing.
Reading is all or nothing: the first bad row raises an InputError naming its line.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memgrid.core.annotators import MAX_NAME, name_problem
from memgrid.core.errors import InputError
from memgrid.core.export.columns import compact_json
from memgrid.core.export.rows import FORMULA_TRIGGERS, formula_safe
from memgrid.core.metrics.region import DEFAULT_REGION_GRID
from memgrid.core.prompt_files import checked_prompt
from memgrid.core.taxonomy import Category, Feature, LabelAction, LabelState, Webster
from memgrid.core.text_files import csv_table, parse_json, read_text

LABEL_FILE_SUFFIXES = (".jsonl", ".csv")
# Every column a label file may have, in the order `memgrid labels export` writes them.
COLUMNS = (
    "event_id",
    "grid_id",
    "prompt",
    "model",
    "source",
    "annotator",
    "action",
    "category",
    "webster",
    "features",
    "note",
    "time",
    "proposal_shown",
    "proposal_category",
)
# The actions a row may take (an undo is no label: export the current labels instead).
ACTION_STATES = {
    LabelAction.LABEL: LabelState.LABELLED,
    LabelAction.FLAG: LabelState.FLAGGED,
    LabelAction.SKIP: LabelState.SKIPPED,
    LabelAction.ADJUDICATE: LabelState.LABELLED,
}
MAX_TEXT = 10_000  # a note or prompt longer than this is not a label file's


LATEST_TIME = 4_102_444_800.0  # 2100-01-01: a later time is a typo or milliseconds
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")
# Each choice by its lower-case name: a row may say "TV" or "tv", "None" or "none".
_MEMBERS: dict[type, dict[str, Any]] = {
    kind: {member.value.lower(): member for member in kind} for kind in (Category, Webster)
}


@dataclass(frozen=True)
class GridRef:
    """How a row names its grid: by id, or by prompt (with model and source when it must)."""

    grid_id: int | None = None
    prompt: str | None = None
    model: str | None = None
    source: str | None = None

    def describe(self) -> str:
        if self.prompt is None:
            return f"grid {self.grid_id}"
        narrowing = [("model", self.model), ("source", self.source)]
        return f"prompt {self.prompt[:80]!r}" + "".join(
            f", {name} {value!r}" for name, value in narrowing if value is not None
        )


@dataclass(frozen=True)
class LabelRecord:
    """One row of a label file, checked: everything a label event needs, and where it was."""

    grid: GridRef
    annotator: str
    action: LabelAction
    category: Category | None = None
    webster: Webster | None = None
    features: tuple[Feature, ...] = ()
    note: str = ""
    time: float | None = None
    proposal_shown: bool = False
    proposal_category: Category | None = None
    event_id: str = ""
    location: str = ""

    @property
    def state(self) -> LabelState:
        return ACTION_STATES[self.action]

    def fields(self) -> dict[str, Any]:
        """The row as a label file holds it (COLUMNS order; None where it says nothing)."""
        return {
            "event_id": self.event_id,
            "grid_id": self.grid.grid_id,
            "prompt": self.grid.prompt,
            "model": self.grid.model,
            "source": self.grid.source,
            "annotator": self.annotator,
            "action": self.action.value,
            "category": _value(self.category),
            "webster": _value(self.webster),
            "features": [feature.to_dict() for feature in self.features],
            "note": self.note,
            "time": None if self.time is None else time_text(self.time),
            "proposal_shown": self.proposal_shown,
            "proposal_category": _value(self.proposal_category),
        }

    def content_id(self) -> str:
        """An id derived from what the row says (its grid as named, not the project's id)."""
        content = {key: value for key, value in self.fields().items() if key != "event_id"}
        text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return "row-" + hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class LabelFile:
    """The records of one label file, and how many rows repeated an earlier one exactly."""

    records: list[LabelRecord] = field(default_factory=list)
    duplicates_in_file: int = 0
    # Labels whose category was read from a Webster type alone (memorized: unintended).
    categories_from_webster: int = 0


def _value(member: Category | Webster | None) -> str | None:
    return None if member is None else member.value


def time_text(seconds: float) -> str:
    """A label's time as a file holds it: ISO 8601 in UTC, to the microsecond."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds")


# ---- reading ---------------------------------------------------------------------------------


def read_label_file(path: Path, default_annotator: str | None = None) -> LabelFile:
    """Every row of a .jsonl or .csv label file, checked; the first bad row raises InputError.

    `default_annotator` stands in where a row names none.
    """
    suffix = path.suffix.lower()
    if suffix not in LABEL_FILE_SUFFIXES:
        raise InputError(path, f"unknown label file type {suffix or '(none)'}; use .jsonl or .csv")
    text = read_text(path)
    if "\x00" in text:
        raise InputError(path, "contains NUL bytes; not a text file")
    rows = _jsonl_rows(path, text) if suffix == ".jsonl" else _csv_rows(path, text)
    result = LabelFile()
    seen: dict[str, tuple[LabelRecord, str]] = {}
    for location, row in rows:
        record = _record(path, location, row, default_annotator)
        earlier = seen.get(record.event_id)
        if earlier is not None:
            if earlier[0].fields() != record.fields():
                raise InputError(
                    path,
                    f"event_id {record.event_id!r} is used on {earlier[1]} for another label",
                    location,
                )
            result.duplicates_in_file += 1
            continue
        seen[record.event_id] = (record, location)
        result.records.append(record)
        if record.webster not in (None, Webster.NONE) and not row.get("category"):
            result.categories_from_webster += 1
    return result


def _jsonl_rows(path: Path, text: str) -> Iterator[tuple[str, dict[str, Any]]]:
    # Lines end at "\n" only: JSON text may hold U+2028 and other breaks that splitlines() cuts.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        location = f"line {number}"
        row = parse_json(line, path, location)
        if not isinstance(row, dict):
            raise InputError(path, "each line must be a JSON object", location)
        names = _column_names(path, row, location)
        yield location, {names[key]: value for key, value in row.items()}


def _csv_rows(path: Path, text: str) -> Iterator[tuple[str, dict[str, Any]]]:
    header, rows = csv_table(path, text)
    names = _column_names(path, header, "line 1")
    for location, row in rows:
        if None in row:
            raise InputError(path, "more fields than the header has", location)
        # A spreadsheet's leading quote marks text; memgrid writes one before formulas.
        yield (
            location,
            {names[key]: _spreadsheet_text(value) for key, value in row.items() if value},
        )


def _spreadsheet_text(cell: str) -> str:
    if cell.startswith("'") and cell[1:].startswith(FORMULA_TRIGGERS):
        return cell[1:]
    return cell


def _column_names(path: Path, keys: Iterable[str], location: str) -> dict[str, str]:
    """Each column's name as memgrid knows it: a spreadsheet's "Webster " is `webster`."""
    names: dict[str, str] = {}
    for key in keys:
        name = key.strip().lower()
        if name not in COLUMNS:
            raise InputError(
                path, f"unknown column {key!r} (known: {', '.join(COLUMNS)})", location
            )
        earlier = next((k for k, n in names.items() if n == name), None)
        if earlier is not None:
            raise InputError(path, f"columns {earlier!r} and {key!r} are both {name}", location)
        names[key] = name
    return names


class _Row:
    """One row's raw values, read out with the checks (and the error's file and line) at hand."""

    def __init__(self, path: Path, location: str, values: Mapping[str, Any]) -> None:
        self.path, self.location, self.values = path, location, values

    def fail(self, problem: str) -> InputError:
        return InputError(self.path, problem, self.location)

    def text(self, key: str, limit: int = MAX_TEXT) -> str | None:
        value = self.values.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.fail(f"{key} must be text, not {value!r}")
        if len(value) > limit:
            raise self.fail(f"{key} is longer than {limit} characters")
        return value

    def name(self, key: str) -> str | None:
        value = self.text(key, MAX_NAME)
        if value is not None and (problem := name_problem(value)):
            raise self.fail(f"{key} {value!r} {problem}")
        return value

    def choice(self, key: str, kind: type[Category] | type[Webster]) -> Any:
        value = self.text(key, MAX_NAME)
        if value is None:
            return None
        member = _MEMBERS[kind].get(value.strip().lower())
        if member is None:
            choices = ", ".join(known.value for known in kind)
            raise self.fail(f"{key} {value!r} is not one of {choices}")
        return member

    def grid_id(self) -> int | None:
        value = self.values.get("grid_id")
        if value is None or value == "":
            return None
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(f"grid_id must be a positive whole number, not {value!r}")
        return value

    def flag(self, key: str) -> bool:
        value = self.values.get(key)
        if isinstance(value, bool):
            return value
        if value is None or (isinstance(value, str) and value.strip().lower() in _FALSE):
            return False
        if isinstance(value, str) and value.strip().lower() in _TRUE:
            return True
        raise self.fail(f"{key} must be true or false, not {value!r}")

    def time(self) -> float | None:
        value = self.values.get("time")
        if value is None or value == "":
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        elif isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value.strip())
            except ValueError:
                raise self.fail(f"time {value!r} is not ISO 8601 (2024-05-01T12:00:00Z)") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)  # a time without a zone is UTC
            seconds = moment.timestamp()
        else:
            raise self.fail(f"time must be ISO 8601 text or Unix seconds, not {value!r}")
        if not math.isfinite(seconds) or not 0 < seconds < LATEST_TIME:
            raise self.fail(f"time {value!r} is not between 1970 and 2100")
        return seconds

    def features(self) -> tuple[Feature, ...]:
        value = self.values.get("features")
        if value is None or value == "":
            return ()
        if isinstance(value, str):
            try:
                value = parse_json(value, "features")
            except InputError:
                raise self.fail("features must be a JSON list of objects") from None
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.fail("features must be a list of objects")
        return tuple(self._feature(item, number) for number, item in enumerate(value, 1))

    def _feature(self, item: Mapping[str, Any], number: int) -> Feature:
        """{category, name (or note), tiles | box [row0, col0, row1, col1], grid (default 8)}."""
        where = f"feature {number}"
        unknown = set(item) - {"category", "name", "note", "tiles", "box", "grid"}
        if unknown:
            raise self.fail(f"{where}: unknown key {sorted(unknown)[0]!r}")
        category = _Row(self.path, self.location, item).choice("category", Category)
        if category is None:
            raise self.fail(f"{where}: needs a category")
        name = item.get("name", item.get("note", ""))
        if not isinstance(name, str) or len(name) > MAX_NAME:
            raise self.fail(f"{where}: name must be text of at most {MAX_NAME} characters")
        grid = item.get("grid", DEFAULT_REGION_GRID)
        if isinstance(grid, bool) or not isinstance(grid, int) or not 1 <= grid <= 64:
            raise self.fail(f"{where}: grid must be a whole number from 1 to 64")
        if "tiles" in item and "box" in item:
            raise self.fail(f"{where}: give tiles or box, not both")
        if "box" in item:
            tiles = self._box_tiles(item["box"], grid, where)
        else:
            tiles = item.get("tiles", [])
            if not isinstance(tiles, list) or not all(
                isinstance(t, int) and not isinstance(t, bool) and 0 <= t < grid * grid
                for t in tiles
            ):
                raise self.fail(f"{where}: tiles must be whole numbers from 0 to {grid * grid - 1}")
        return Feature(category, name, tuple(sorted(set(tiles))))

    def _box_tiles(self, box: Any, grid: int, where: str) -> list[int]:
        if (
            not isinstance(box, list)
            or len(box) != 4
            or not all(
                isinstance(v, int) and not isinstance(v, bool) and 0 <= v < grid for v in box
            )
            or box[0] > box[2]
            or box[1] > box[3]
        ):
            raise self.fail(
                f"{where}: box must be [row0, col0, row1, col1] within a {grid}x{grid} map"
            )
        row0, col0, row1, col1 = box
        return [r * grid + c for r in range(row0, row1 + 1) for c in range(col0, col1 + 1)]


def _record(
    path: Path, location: str, values: Mapping[str, Any], default_annotator: str | None
) -> LabelRecord:
    row = _Row(path, location, values)
    prompt = row.text("prompt")
    grid = GridRef(
        row.grid_id(),
        None if prompt is None else checked_prompt(prompt, path, location) or None,
        row.text("model"),
        row.text("source"),
    )
    if grid.grid_id is None and grid.prompt is None:
        raise row.fail("names no grid: give grid_id, or prompt (with model and source if needed)")
    annotator = row.name("annotator") or default_annotator
    if not annotator:
        raise row.fail("names no annotator: add an annotator column or pass --annotator")
    named = (row.text("action", MAX_NAME) or LabelAction.LABEL.value).strip().lower()
    action = next((a for a in ACTION_STATES if a.value == named), None)
    if action is None:
        raise row.fail(f"action {named!r} is not one of {', '.join(ACTION_STATES)}")
    category, webster = row.choice("category", Category), row.choice("webster", Webster)
    if action is LabelAction.SKIP and category is not None:
        raise row.fail("a skip has no category")
    if category is None and ACTION_STATES[action] is LabelState.LABELLED:
        if webster is None:
            raise row.fail(f"a {action} needs a category (or a Webster type)")
        # Webster's types say whether a grid is memorized, not what the prompt asked for;
        # memorized without a category is read as unintended, the common case (design.md).
        category = Category.NONE if webster is Webster.NONE else Category.UNINTENDED
    record = LabelRecord(
        grid=grid,
        annotator=annotator,
        action=action,
        category=category,
        webster=webster,
        features=row.features(),
        note=row.text("note") or "",
        time=row.time(),
        proposal_shown=row.flag("proposal_shown"),
        proposal_category=row.choice("proposal_category", Category),
        location=location,
    )
    return replace(record, event_id=row.name("event_id") or record.content_id())


# ---- writing ---------------------------------------------------------------------------------


def label_file_bytes(records: Sequence[LabelRecord], suffix: str) -> bytes:
    """The records as a .jsonl or .csv label file (CSV cells safe to open in a spreadsheet)."""
    if suffix == ".jsonl":
        return "".join(compact_json(record.fields()) + "\n" for record in records).encode()
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for record in records:
        writer.writerow([formula_safe(_csv_cell(value)) for value in record.fields().values()])
    return buffer.getvalue().encode()


def _csv_cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False) if value else ""
    return "" if value is None else value
