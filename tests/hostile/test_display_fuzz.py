"""Property tests: hostile text through every reader is kept exactly, and through every
display path (CLI lines, Rich tables, the app's widgets, error messages) it is shown
escaped and never read as markup."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table

from memgrid.core.attribution import attribute
from memgrid.core.display_text import needs_escape, printable
from memgrid.core.errors import InputError
from memgrid.core.importing import plan_import
from memgrid.core.prompt_files import read_prompt_file
from memgrid.core.records import Entity, Grid, LabelEvent, Proposal, Reason, Score
from memgrid.core.taxonomy import Category, Feature, LabelAction, LabelState
from memgrid.tui.app.adjudication import ReviewItem
from memgrid.tui.app.screens.adjudicate import review_option
from memgrid.tui.app.screens.grid_list import grid_option
from memgrid.tui.app.screens.history import describe_history
from memgrid.tui.app.session import Progress
from memgrid.tui.app.widgets.labels_panel import describe_event
from memgrid.tui.app.widgets.progress_bar import describe_progress
from memgrid.tui.app.widgets.prompt_view import highlight_prompt, legend
from memgrid.tui.app.widgets.proposal_panel import describe_proposal, describe_scores
from memgrid.tui.commands.proposing import summary_lines
from memgrid.tui.commands.scoring import grid_lines
from memgrid.tui.display import say, user_text
from memgrid.tui.services.proposing import ProposeReport
from tests.hostile.corpus import hostile_prompt, hostile_text, raw_escapes

categories = st.sampled_from(list(Category))


def on_terminal(renderable: object) -> str:
    """What Rich writes for `renderable` to a truecolor terminal."""
    console = Console(file=io.StringIO(), force_terminal=True, color_system="truecolor", width=100)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


# ---- the sanitiser itself -------------------------------------------------------------


@given(text=st.text())
def test_printable_leaves_nothing_a_terminal_would_obey(text: str) -> None:
    shown = printable(text)
    assert not any(needs_escape(character) for character in shown)
    assert raw_escapes(shown) == 0
    assert printable(shown) == shown  # escaping twice changes nothing


@given(text=hostile_text)
def test_error_messages_are_escaped_whatever_the_path_and_problem(text: str) -> None:
    message = str(InputError(Path("/data") / text.replace("/", "|"), text, text))
    assert raw_escapes(message) == 0 and "\n" not in message


# ---- readers keep the data exactly ------------------------------------------------------


@given(prompts=st.lists(hostile_prompt, min_size=1, max_size=5, unique=True))
def test_jsonl_and_csv_prompt_files_keep_hostile_prompts_exactly(prompts: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        jsonl = Path(folder) / "prompts.jsonl"
        jsonl.write_text("\n".join(json.dumps({"prompt": p}) for p in prompts), encoding="utf-8")
        table = io.StringIO(newline="")
        writer = csv.writer(table)
        writer.writerow(["prompt"])
        writer.writerows([p] for p in prompts)
        comma = Path(folder) / "prompts.csv"
        comma.write_text(table.getvalue(), encoding="utf-8", newline="")
        for path in (jsonl, comma):
            assert [p for p, _ in read_prompt_file(path).prompts] == prompts


@given(prompt=hostile_prompt, model=hostile_text)
def test_manifests_and_grid_folders_keep_hostile_prompts_and_models_exactly(
    prompt: str, model: str
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        manifest = root / "manifest.jsonl"
        row = {"prompt": prompt, "seed": 3, "path": "a.png", "model": model}
        manifest.write_text(json.dumps(row), encoding="utf-8")
        (planned,) = plan_import(manifest).grids
        assert planned.prompt == prompt and planned.model == model
        grid = root / "grids" / "g"
        grid.mkdir(parents=True)
        (grid / "prompt.txt").write_text(prompt, encoding="utf-8")
        (grid / "meta.json").write_text(json.dumps({"model": model}), encoding="utf-8")
        (grid / "0000.png").write_bytes(b"")  # planned by name; decoded only on import
        (planned,) = plan_import(root / "grids").grids
        assert planned.prompt == prompt and planned.model == (model or "unknown")


# ---- display paths: the CLI ---------------------------------------------------------------


def hostile_grid(prompt: str, text: str) -> Grid:
    return Grid(1, 1, prompt, text, {"x": text}, {}, text)


def hostile_proposal(text: str, category: Category) -> Proposal:
    return Proposal(
        1,
        1,
        category,
        features=(Feature(category, text, (0, 9)),),
        reasons=(Reason(text, text, 0.4, 0.5, True), Reason("s", text, fired=False)),
        score=0.4,
        margin=-0.1,
    )


def hostile_scores(text: str) -> list[Score]:
    return [
        Score(1, text, {}, text, {text: text, "n": 1.5}, heatmap=[[0.5] * 8] * 8),
        Score(1, "clip", {}, "1", {}, available=False, note=text),
    ]


@given(prompt=hostile_text, text=hostile_text, category=categories)
def test_show_lines_and_propose_summary_are_escaped(
    capsys: pytest.CaptureFixture[str], prompt: str, text: str, category: Category
) -> None:
    lines = grid_lines(
        hostile_grid(prompt, text), hostile_scores(text), hostile_proposal(text, category), text
    )
    report = ProposeReport(threshold_sets=[text], clip_unavailable=text, created=text)
    capsys.readouterr()
    for line in [*lines, *summary_lines(report)]:
        say(line)  # what the commands print with
    assert raw_escapes(capsys.readouterr().out) == 0


@given(cells=st.lists(hostile_text, min_size=2, max_size=6))
def test_rich_tables_of_user_text_neither_crash_nor_leak(cells: list[str]) -> None:
    table = Table(title=user_text(cells[0]))
    table.add_column(user_text(cells[1]))
    for cell in cells:
        table.add_row(user_text(cell))
    assert raw_escapes(on_terminal(table), app_frame=True) == 0


# ---- display paths: the app's widgets -----------------------------------------------------


def hostile_event(text: str, category: Category, event_id: int = 1) -> LabelEvent:
    return LabelEvent(
        event_id,
        1,
        text,
        LabelAction.LABEL,
        LabelState.LABELLED,
        category,
        features=(Feature(category, text, (1,)),),
        note=text,
    )


@given(prompt=hostile_text, text=hostile_text, category=categories)
def test_every_widget_describer_shows_hostile_text_escaped(
    prompt: str, text: str, category: Category
) -> None:
    lexicon = [Entity(name=text.strip() or "x", type="work", aliases=(text,))]
    attribution = attribute(f"{prompt} by {text} 'Quoted {text}'", lexicon)
    event = hostile_event(text, category)
    undo = LabelEvent(2, 1, text, LabelAction.UNDO, None, None, undoes=1)
    renderables = [
        highlight_prompt(attribution),
        legend(attribution),
        describe_proposal(hostile_proposal(text, category), True),
        describe_scores(tuple(hostile_scores(text))),
        describe_event(event, with_time=True),
        describe_history(1, [event, undo]),
        describe_progress(Progress(1, 2, 3.0), text),
        grid_option(1, prompt, text).prompt,
        review_option(ReviewItem(1, (event, hostile_event(text, Category.NONE)))).prompt,
    ]
    for renderable in renderables:
        assert raw_escapes(on_terminal(renderable), app_frame=True) == 0
    assert printable(prompt) in highlight_prompt(attribution).plain
