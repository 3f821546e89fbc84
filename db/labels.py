"""Labels: the append-only history of annotation events, and the votes derived from it.

docs/design.md, "The label model": an annotator's **vote** on a grid is their latest label,
skip or flag that still counts (the `votes` view); an adjudicator's latest verdict on a grid
is in the `adjudications` view and never replaces their own vote. Every reader here reads
those two views, so the app, the queue, export and calibration agree on what a vote is.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from memgrid.core.annotators import Role, role_for
from memgrid.core.errors import NotFoundError, VoteRefused
from memgrid.core.records import LabelEvent
from memgrid.core.taxonomy import (
    STATE_PRECEDENCE,
    Category,
    Feature,
    LabelAction,
    LabelState,
    Webster,
)
from memgrid.db.overlap import OverlapRule, has_done_vote, needs_votes, refusal
from memgrid.db.rows import (
    EVENT_COLUMNS,
    IDS_PER_QUERY,
    Noun,
    label_event_record,
    placeholders,
)

INSERT_EVENT = """INSERT INTO label_events (grid_id, annotator, action, state, category, features,
    note, webster, undoes, proposal_shown, proposal_category, session, created_at, origin,
    external_id, os_user, ssh_client)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""


class Labels(Noun):
    # ---- writing: every event is committed before the call returns ---------------------

    def append(
        self,
        grid_id: int,
        annotator: str,
        action: LabelAction,
        *,
        state: LabelState | None = None,
        category: Category | None = None,
        features: Sequence[Feature] = (),
        note: str = "",
        webster: Webster | None = None,
        undoes: int | None = None,
        proposal_shown: bool = True,
        proposal_category: Category | None = None,
        session: str = "",
        rule: OverlapRule | None = None,
    ) -> LabelEvent:
        """Append one event and commit it at once: a label is durable when this returns.

        With a `rule`, the event is stored only if it adds no vote the grid does not need
        under the overlap (db/overlap.py), checked in the same transaction as the write;
        otherwise VoteRefused is raised and nothing is stored.

        The event records the OS account and SSH client of this process; the project's
        `[annotators]` table, when it has one, must let that account act as `annotator`
        in the role the action needs (an undo: the role of the event it undoes).
        """
        event = LabelEvent(
            id=0,
            grid_id=grid_id,
            annotator=annotator,
            action=action,
            state=state,
            category=category,
            features=tuple(features),
            note=note,
            webster=webster,
            undoes=undoes,
            proposal_shown=proposal_shown,
            proposal_category=proposal_category,
            session=session,
            created_at=time.time(),
        )
        row = self._row(event)
        enforced = rule is not None and action is not LabelAction.ADJUDICATE
        with self.store.atomic(immediate=enforced):
            undone_action = None
            if action is LabelAction.UNDO and undoes is not None:
                undone_action = self.get(undoes).action
            self.authorize(annotator, role_for(undone_action or action))
            if rule is None or not enforced:
                return self.get(self._insert(row))
            had_vote = has_done_vote(self.store, grid_id, annotator)
            needed = had_vote or needs_votes(self.store, rule, grid_id, annotator)
            event_id = self._insert(row)
            if not needed and has_done_vote(self.store, grid_id, annotator):
                raise VoteRefused(refusal(self.store, rule, grid_id, annotator))
        return self.get(event_id)

    def _insert(self, row: tuple[Any, ...]) -> int:
        cursor = self.store.write(INSERT_EVENT, row)
        return int(cursor.lastrowid or 0)

    def authorize(self, annotator: str, role: Role = Role.ANNOTATOR) -> None:
        """Refuse (NotAllowedError) unless this process's account may act as `annotator`."""
        if self.store.annotators is not None:
            self.store.annotators.check(annotator, self.store.identity, role)

    def label(self, grid_id: int, annotator: str, category: Category, **details: Any) -> LabelEvent:
        return self.append(
            grid_id,
            annotator,
            LabelAction.LABEL,
            state=LabelState.LABELLED,
            category=category,
            **details,
        )

    def skip(self, grid_id: int, annotator: str, **details: Any) -> LabelEvent:
        return self.append(
            grid_id, annotator, LabelAction.SKIP, state=LabelState.SKIPPED, **details
        )

    def flag(
        self, grid_id: int, annotator: str, category: Category | None = None, **details: Any
    ) -> LabelEvent:
        return self.append(
            grid_id,
            annotator,
            LabelAction.FLAG,
            state=LabelState.FLAGGED,
            category=category,
            **details,
        )

    def adjudicate(
        self, grid_id: int, adjudicator: str, category: Category, **details: Any
    ) -> LabelEvent:
        """Set a grid's final label; the adjudicator's own vote, if any, stands beside it."""
        return self.append(
            grid_id,
            adjudicator,
            LabelAction.ADJUDICATE,
            state=LabelState.LABELLED,
            category=category,
            **details,
        )

    def draft(
        self,
        grid_id: int,
        annotator: str,
        *,
        note: str = "",
        features: Sequence[Feature] = (),
        session: str = "",
    ) -> LabelEvent:
        """Record what is drafted for a grid's label so far (the whole draft, not a change)."""
        return self.append(
            grid_id, annotator, LabelAction.DRAFT, note=note, features=features, session=session
        )

    def undo_last(
        self,
        annotator: str,
        session: str | None = None,
        *,
        rule: OverlapRule | None = None,
        recorded_session: str = "",
    ) -> LabelEvent | None:
        """Undo the annotator's latest event that still counts; returns the undone event.

        Only events made here and still in force: an imported one records a label made
        elsewhere (its file is its history), and one that a later import on the same grid
        superseded changes nothing on screen when undone; undo walks past both. `session`
        limits it to one session's events; the undo is recorded under
        `recorded_session` (default: `session`). With a `rule`, an undo that would bring
        back a vote the grid no longer needs is refused (VoteRefused).
        """
        sql = """SELECT id, grid_id FROM effective_label_events e
            WHERE annotator = ? AND origin = ''
              AND NOT EXISTS (SELECT 1 FROM effective_label_events later
                WHERE later.grid_id = e.grid_id AND later.annotator = e.annotator
                  AND later.id > e.id AND later.origin != '')"""
        params: list[Any] = [annotator]
        if session is not None:
            sql += " AND session = ?"
            params.append(session)
        with self.store.atomic(immediate=rule is not None):
            row = self.store.row(sql + " ORDER BY id DESC LIMIT 1", params)
            if row is None:
                return None
            self.append(
                row[1],
                annotator,
                LabelAction.UNDO,
                undoes=row[0],
                session=recorded_session or session or "",
                rule=rule,
            )
        return self.get(row[0])

    def _row(self, event: LabelEvent) -> tuple[Any, ...]:
        """An event as INSERT_EVENT's values, with this process's OS account."""
        identity = self.store.identity
        return (
            event.grid_id,
            event.annotator,
            event.action.value,
            event.state.value if event.state else None,
            event.category.value if event.category else None,
            json.dumps([f.to_dict() for f in event.features]),
            event.note,
            event.webster.value if event.webster else None,
            event.undoes,
            int(event.proposal_shown),
            event.proposal_category.value if event.proposal_category else None,
            event.session,
            event.created_at,
            event.origin,
            event.external_id,
            identity.user,
            identity.ssh_client,
        )

    def import_many(self, events: Sequence[LabelEvent]) -> int:
        """Append label events made elsewhere, all in one transaction (all or none).

        Each keeps its own time, `origin` (the file) and `external_id` (unique: the same
        row cannot come in twice); ids are given here, and the OS account is the importer's.
        Returns how many were added.
        """
        self.store.write_many(INSERT_EVENT, [self._row(event) for event in events])
        return len(events)

    # ---- reading ------------------------------------------------------------------------

    def imported_where(self, *, external_ids: Sequence[str]) -> dict[str, LabelEvent]:
        """The imported events with these external ids (undone ones too), by external id."""
        wanted = list(dict.fromkeys(external_ids))
        found: dict[str, LabelEvent] = {}
        for start in range(0, len(wanted), IDS_PER_QUERY):
            chunk = wanted[start : start + IDS_PER_QUERY]
            for event in self._events(
                f"""SELECT {EVENT_COLUMNS} FROM label_events
                WHERE external_id IN ({placeholders(chunk)})""",
                chunk,
            ):
                found[event.external_id or ""] = event
        return found

    def get(self, event_id: int) -> LabelEvent:
        row = self.store.row(f"SELECT {EVENT_COLUMNS} FROM label_events WHERE id = ?", (event_id,))
        if row is None:
            raise NotFoundError(f"label event {event_id}", "no label event with this id")
        return label_event_record(row)

    def events_where(self, *, grid_id: int) -> list[LabelEvent]:
        """Every event on a grid, undos and undone ones included, oldest first: the audit trail."""
        return self._events(
            f"SELECT {EVENT_COLUMNS} FROM label_events WHERE grid_id = ? ORDER BY id", [grid_id]
        )

    def draft_where(self, *, grid_id: int, annotator: str) -> LabelEvent | None:
        """The annotator's draft on the grid that no later label or flag has taken over."""
        rows = self.store.rows(
            f"""SELECT {EVENT_COLUMNS} FROM effective_label_events d
            WHERE d.grid_id = ? AND d.annotator = ? AND d.action = 'draft'
              AND NOT EXISTS (SELECT 1 FROM effective_label_events later
                  WHERE later.grid_id = d.grid_id AND later.annotator = d.annotator
                    AND later.id > d.id AND later.action IN ('label', 'flag'))
            ORDER BY d.id DESC LIMIT 1""",
            (grid_id, annotator),
        )
        return label_event_record(rows[0]) if rows else None

    def votes_where(
        self,
        *,
        grid_ids: Sequence[int] | None = None,
        annotator: str | None = None,
        state: LabelState | None = None,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> list[LabelEvent]:
        """Votes (each annotator's latest label, skip or flag that counts), in event order."""
        tests, params = _filters(grid_ids=grid_ids, annotator=annotator, state=state)
        sql = f"SELECT {EVENT_COLUMNS} FROM votes {tests} ORDER BY id"
        if newest_first:
            sql += " DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return self._events(sql, params)

    def adjudications_where(
        self, *, grid_ids: Sequence[int] | None = None
    ) -> dict[int, LabelEvent]:
        """The final label on each adjudicated grid: the latest adjudication that counts."""
        tests, params = _filters(grid_ids=grid_ids)
        events = self._events(
            f"SELECT {EVENT_COLUMNS} FROM adjudications {tests} ORDER BY id", params
        )
        return {event.grid_id: event for event in events}

    def current_where(self, *, grid_ids: Sequence[int]) -> list[LabelEvent]:
        """Every vote and each adjudicator's latest verdict on these grids, by grid, then event.

        What core.agreement resolves a grid's agreed label from.
        """
        if not grid_ids:
            return []
        marks = placeholders(grid_ids)
        return self._events(
            f"""SELECT {EVENT_COLUMNS} FROM votes WHERE grid_id IN ({marks})
            UNION ALL
            SELECT {EVENT_COLUMNS} FROM adjudications WHERE grid_id IN ({marks})
            ORDER BY grid_id, id""",
            [*grid_ids, *grid_ids],
        )

    def current_all(self) -> list[LabelEvent]:
        """Every vote and each adjudicator's latest verdict, on every grid, by grid, then event."""
        return self._events(
            f"""SELECT {EVENT_COLUMNS} FROM votes UNION ALL
            SELECT {EVENT_COLUMNS} FROM adjudications ORDER BY grid_id, id""",
            [],
        )

    def state_counts_where(self, *, annotator: str | None = None) -> dict[str, int]:
        """Grids per vote state (labelled/skipped/flagged), counted once per grid.

        For one annotator it is their own vote; over all annotators a grid takes the first
        state of STATE_PRECEDENCE that any vote is in (core.agreement.grid_state's rule).
        """
        counts = {state.value: 0 for state in LabelState}
        if annotator is not None:
            rows = self.store.rows(
                "SELECT state, count(*) FROM votes WHERE annotator = ? GROUP BY state",
                (annotator,),
            )
        else:
            # core.agreement.grid_state in SQL: a flag counts while no verdict is newer.
            tests = {
                LabelState.FLAGGED: "total(v.state = 'flagged' AND v.id > coalesce(a.latest, 0))",
                LabelState.LABELLED: "total(v.state = 'labelled') + (a.latest IS NOT NULL)",
                LabelState.SKIPPED: "total(v.state = 'skipped')",
            }
            first_state = " ".join(
                f"WHEN {tests[state]} > 0 THEN '{state.value}'" for state in STATE_PRECEDENCE
            )
            rows = self.store.rows(
                f"""SELECT grid_state, count(*) FROM (
                    SELECT CASE {first_state} END AS grid_state
                    FROM votes v LEFT JOIN (
                        SELECT grid_id, max(id) AS latest FROM adjudications GROUP BY grid_id
                    ) a ON a.grid_id = v.grid_id
                    GROUP BY v.grid_id
                    UNION ALL  -- a verdict on a grid nobody voted on: labelled
                    SELECT 'labelled' FROM adjudications d
                    WHERE NOT EXISTS (SELECT 1 FROM votes w WHERE w.grid_id = d.grid_id)
                    GROUP BY d.grid_id
                ) GROUP BY grid_state"""
            )
        for state, count in rows:
            if state in counts:
                counts[state] += count
        return counts

    def times_where(self, *, annotator: str, since: float) -> list[float]:
        """When the annotator's labels and flags that still count were made, since `since`."""
        return [
            row[0]
            for row in self.store.rows(
                """SELECT created_at FROM effective_label_events
                WHERE annotator = ? AND created_at >= ? AND action IN (?, ?)
                ORDER BY created_at""",
                (annotator, since, LabelAction.LABEL.value, LabelAction.FLAG.value),
            )
        ]

    def annotators_all(self) -> list[str]:
        return [
            row[0]
            for row in self.store.rows(
                "SELECT DISTINCT annotator FROM label_events ORDER BY annotator"
            )
        ]

    def disagreements_all(self) -> dict[int, list[LabelEvent]]:
        """Grids whose labelled votes differ in category, with those votes, by annotator.

        Skipped and flagged votes choose no category; adjudications are not votes.
        """
        events = self._events(
            f"""WITH chosen AS (
                SELECT {EVENT_COLUMNS} FROM votes
                WHERE state = 'labelled' AND category IS NOT NULL
            )
            SELECT * FROM chosen WHERE grid_id IN (
                SELECT grid_id FROM chosen GROUP BY grid_id HAVING count(DISTINCT category) > 1)
            ORDER BY grid_id, annotator""",
            [],
        )
        grouped: dict[int, list[LabelEvent]] = {}
        for event in events:
            grouped.setdefault(event.grid_id, []).append(event)
        return grouped

    def skips_unfollowed_all(self) -> list[LabelEvent]:
        """Skip votes on grids nobody has labelled or flagged since and no verdict settles:
        the skips a reviewer looks at."""
        return self._events(
            f"""SELECT {EVENT_COLUMNS} FROM votes v WHERE v.state = 'skipped'
              AND coalesce((SELECT done FROM grid_progress p WHERE p.grid_id = v.grid_id), 0) = 0
              AND NOT EXISTS (SELECT 1 FROM adjudications a WHERE a.grid_id = v.grid_id)
            ORDER BY v.grid_id, v.id""",
            [],
        )

    def vote_patterns_all(self) -> tuple[list[tuple[LabelEvent, ...]], dict[int, int]]:
        """Every labelled grid's votes and verdicts (as `current_where`), grouped by what they say.

        A pattern is that sequence with each event reduced to action, state, category,
        features and Webster type: everything core.agreement reads, so grids with one
        pattern share one agreed label. Returns the patterns (as the events of the first
        grid that showed each) and each grid's pattern index. One pass over the rows and
        one LabelEvent per pattern: a few dozen patterns for 100,000 grids.
        """
        patterns: dict[tuple[Any, ...], int] = {}
        examples: list[tuple[LabelEvent, ...]] = []
        grid_patterns: dict[int, int] = {}
        rows = self.store.rows(
            f"""SELECT {EVENT_COLUMNS} FROM votes UNION ALL
            SELECT {EVENT_COLUMNS} FROM adjudications ORDER BY grid_id, id"""
        )
        start = 0
        while start < len(rows):
            grid_id = rows[start][1]
            end = start + 1
            while end < len(rows) and rows[end][1] == grid_id:
                end += 1
            current = rows[start:end]
            key = tuple((row[3], row[4], row[5], row[6], row[8]) for row in current)
            index = patterns.get(key)
            if index is None:
                index = patterns[key] = len(examples)
                examples.append(tuple(label_event_record(row) for row in current))
            grid_patterns[grid_id] = index
            start = end
        return examples, grid_patterns

    def _events(self, sql: str, params: Sequence[Any]) -> list[LabelEvent]:
        return [label_event_record(row) for row in self.store.rows(sql, params)]


def _filters(
    *,
    grid_ids: Sequence[int] | None = None,
    annotator: str | None = None,
    state: LabelState | None = None,
) -> tuple[str, list[Any]]:
    """A WHERE clause for the filters given (None: not filtered), and its parameters."""
    tests: list[str] = []
    params: list[Any] = []
    if grid_ids is not None:
        tests.append(f"grid_id IN ({placeholders(grid_ids)})")
        params += grid_ids
    if annotator is not None:
        tests.append("annotator = ?")
        params.append(annotator)
    if state is not None:
        tests.append("state = ?")
        params.append(state.value)
    return ("WHERE " + " AND ".join(tests) if tests else ""), params
