"""One definition of a vote: every reader of labels agrees on one history.

The history mixes labels, corrections, skips, flags, undo and adjudications, including an
adjudicator who also voted, one who never did, and an undone adjudication.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlite_utils import Database

from memgrid.core.agreement import AgreementHow, agreed_label, grid_state
from memgrid.core.records import GridImage, LabelEvent, QueueOrder
from memgrid.core.taxonomy import Category, LabelAction, LabelState
from memgrid.db.migrations import migrations
from memgrid.db.queue import AnnotationQueue
from memgrid.db.store import Store
from memgrid.tui.app.session import AnnotationSession, SessionOptions
from memgrid.tui.services.calibration import agreed_labels
from memgrid.tui.services.project import Project

EXPLICIT, IMPLICIT, UNINTENDED, NONE = (
    Category.EXPLICIT,
    Category.IMPLICIT,
    Category.UNINTENDED,
    Category.NONE,
)
ANNOTATORS = ("x", "y", "z", "judge")


def build_history(
    store: Store,
) -> tuple[list[int], dict[tuple[int, str], tuple[str, Category | None]]]:
    """The grids, and each annotator's vote on each grid as (action, category), by hand."""
    a, b, c, d, e = (
        store.grids.add(f"prompt {name}", [GridImage(0, f"images/{name}.png", name, 8, 8)])[0]
        for name in "abcde"
    )
    labels = store.labels
    labels.label(a, "x", EXPLICIT)
    labels.label(a, "y", UNINTENDED)
    labels.label(a, "y", NONE)  # a correction: y's vote is the later one
    labels.adjudicate(a, "x", NONE)  # x settles a; x's own vote still says explicit
    labels.label(b, "x", IMPLICIT)
    labels.undo_last("x")  # x has no vote on b any more
    labels.skip(b, "y")
    labels.flag(b, "z", UNINTENDED)
    labels.label(c, "x", NONE)
    labels.skip(c, "x")  # a later skip replaces x's label on c
    labels.adjudicate(c, "judge", UNINTENDED)  # the judge never voted on c
    labels.label(d, "y", NONE)
    labels.adjudicate(d, "y", EXPLICIT)
    labels.undo_last("y")  # the verdict on d is gone; y's vote stands
    votes = {
        (a, "x"): ("label", EXPLICIT),
        (a, "y"): ("label", NONE),
        (b, "y"): ("skip", None),
        (b, "z"): ("flag", UNINTENDED),
        (c, "x"): ("skip", None),
        (d, "y"): ("label", NONE),
    }
    return [a, b, c, d, e], votes


def said(events: list[LabelEvent]) -> dict[tuple[int, str], tuple[str, Category | None]]:
    return {(e.grid_id, e.annotator): (e.action.value, e.category) for e in events}


@pytest.fixture
def history(project: Project) -> tuple[Project, list[int], dict]:
    grid_ids, votes = build_history(project.store)
    return project, grid_ids, votes


def test_the_store_readers_agree_on_votes_and_verdicts(history) -> None:
    project, (a, b, c, d, e), votes = history
    labels = project.store.labels
    assert said(labels.votes_where()) == votes
    for annotator in ANNOTATORS:
        mine = {key: value for key, value in votes.items() if key[1] == annotator}
        assert said(labels.votes_where(annotator=annotator)) == mine
    adjudications = labels.adjudications_where()
    assert {g: (v.annotator, v.category) for g, v in adjudications.items()} == {
        a: ("x", NONE),
        c: ("judge", UNINTENDED),
    }
    current = labels.current_where(grid_ids=[a, b, c, d, e])
    assert said([v for v in current if v.action is not LabelAction.ADJUDICATE]) == votes
    assert [v for v in current if v.action is LabelAction.ADJUDICATE] == list(
        adjudications.values()
    )
    # Disagreements: grids whose labelled votes differ; the verdict on a is no vote.
    disagreements = labels.disagreements_all()
    assert {g: said(events) for g, events in disagreements.items()} == {
        a: {(a, "x"): ("label", EXPLICIT), (a, "y"): ("label", NONE)}
    }


def test_the_agreed_label_is_the_same_by_pattern_and_per_grid(history) -> None:
    project, grid_ids, _ = history
    labels = project.store.labels
    patterns, grid_patterns = labels.vote_patterns_all()
    per_grid = {g: labels.current_where(grid_ids=[g]) for g in grid_ids}
    for grid_id, index in grid_patterns.items():
        assert agreed_label(patterns[index]) == agreed_label(per_grid[grid_id])
    assert set(grid_patterns) == {g for g, events in per_grid.items() if events}
    agreed, ties = agreed_labels(project)
    a, _, c, d, _ = grid_ids
    assert {g: (label.category, label.how) for g, label in agreed.items()} == {
        a: (NONE, AgreementHow.ADJUDICATED),
        c: (UNINTENDED, AgreementHow.ADJUDICATED),
        d: (NONE, AgreementHow.MAJORITY),
    }
    assert agreed[a].annotators == 2 and agreed[a].support == 1  # x's vote still counts
    assert ties == 0


def test_done_state_counts_and_the_queue_follow_the_votes(history) -> None:
    project, grid_ids, votes = history
    store = project.store
    done = Counter(g for (g, _), (action, _) in votes.items() if action != "skip")
    progress = dict(store.db.execute("SELECT grid_id, done FROM grid_progress").fetchall())
    assert {g: n for g, n in progress.items() if n} == dict(done)
    # Status counts a grid by the state of its votes, as export's grid_state does.
    states = Counter(grid_state(store.labels.current_where(grid_ids=[g])).value for g in grid_ids)
    assert store.labels.state_counts_where() == {
        state.value: states[state.value] for state in LabelState
    }
    for annotator in ANNOTATORS:
        own = Counter(
            {"label": "labelled", "skip": "skipped", "flag": "flagged"}[action]
            for (_, who), (action, _) in votes.items()
            if who == annotator
        )
        assert store.labels.state_counts_where(annotator=annotator) == {
            state.value: own[state.value] for state in LabelState
        }
        # Open: fewer than two done votes, and no vote of the annotator's own.
        queue = AnnotationQueue(store, annotator, order=QueueOrder.PROMPT, overlap=2)
        expected = [g for g in grid_ids if done[g] < 2 and (g, annotator) not in votes]
        assert queue.next_open(limit=10) == expected
        assert [g for g in grid_ids if queue.is_open(g)] == expected


def test_the_annotation_app_shows_the_same_votes(history) -> None:
    project, grid_ids, votes = history
    adjudications = project.store.labels.adjudications_where()
    for annotator in ANNOTATORS:
        options = SessionOptions(annotator=annotator, show_others=True)
        session = AnnotationSession(project.store, options)
        for grid_id in grid_ids:
            view = session.view(grid_id)
            mine = said([view.mine] if view.mine else [])
            others = said(list(view.others))
            assert {**mine, **others} == {k: v for k, v in votes.items() if k[0] == grid_id}
            assert set(mine) <= {(grid_id, annotator)}
            assert view.adjudication == adjudications.get(grid_id)


def test_the_votes_migration_recounts_progress_on_an_older_database(tmp_path: Path) -> None:
    """Before m004 an adjudication replaced the adjudicator's vote and counted as done."""
    path = tmp_path / "memgrid.db"
    database = Database(path)  # an m003 database, built by hand
    migrations.apply(database, stop_before="m004_votes")
    database.execute(
        "INSERT INTO prompts (id, text, created_at) VALUES (1, 'p', 'now'), (2, 'q', 'now')"
    )
    database.execute(
        """INSERT INTO grids (id, prompt_id, model, settings_key, created_at)
        VALUES (1, 1, '', 'k', 'now'), (2, 2, '', 'k', 'now')"""
    )
    for grid_id, annotator, action, state in [
        (1, "x", "skip", "skipped"),
        (1, "x", "adjudicate", "labelled"),  # counted x as done under current_labels
        (2, "y", "label", "labelled"),
    ]:
        database.execute(
            """INSERT INTO label_events (grid_id, annotator, action, state, created_at)
            VALUES (?, ?, ?, ?, 0)""",
            (grid_id, annotator, action, state),
        )
    assert dict(database.execute("SELECT grid_id, done FROM grid_progress").fetchall()) == {
        1: 1,
        2: 1,
    }
    database.close()
    store = Store.open(path)
    assert dict(store.db.execute("SELECT grid_id, done FROM grid_progress").fetchall()) == {2: 1}
    assert "current_labels" not in store.db.view_names()
    assert said(store.labels.votes_where()) == {(1, "x"): ("skip", None), (2, "y"): ("label", None)}
    store.close()
