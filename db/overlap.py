"""The overlap rule: how many annotators' votes a grid takes, read by the queue, kept by the write.

docs/design.md, "The label model": a grid needs votes while fewer than `overlap` annotators'
votes on it are done (labelled or flagged) and nobody else holds an unexpired lease on it.
The queue offers grids by `NEEDS_VOTES` (and `OPEN_TO_ANNOTATOR`); the store's write checks
`NEEDS_VOTES` in the same transaction as the event it stores (`Labels.append(rule=...)`), so
a key typed on a stale screen, a stalled process or a second app can never add a vote the
grid does not need. Correcting one's own done vote adds none and is always allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from memgrid.core.taxonomy import LabelState
from memgrid.db.rows import placeholders

if TYPE_CHECKING:
    from memgrid.db.store import Store

DONE_STATES = [state.value for state in LabelState if state.done]

# `{grid}` is the grid id's column; :annotator, :overlap and :now are bound.
NEEDS_VOTES = """coalesce((SELECT done FROM grid_progress WHERE grid_id = {grid}), 0) < :overlap
    AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.grid_id = {grid}
                    AND l.annotator != :annotator AND l.expires_at > :now)"""

# A grid the queue may offer: it needs votes, and none of them is this annotator's yet.
OPEN_TO_ANNOTATOR = (
    NEEDS_VOTES
    + """
    AND NOT EXISTS (SELECT 1 FROM votes v WHERE v.grid_id = {grid} AND v.annotator = :annotator)"""
)


@dataclass(frozen=True)
class OverlapRule:
    """What an enforced write checks against: the votes a grid takes, and the time now."""

    overlap: int
    now: float

    def params(self, annotator: str, grid_id: int) -> dict[str, object]:
        return {"annotator": annotator, "overlap": self.overlap, "now": self.now, "grid": grid_id}


def has_done_vote(store: Store, grid_id: int, annotator: str) -> bool:
    """Whether the annotator's current vote on the grid is done (labelled or flagged)."""
    row = store.row(
        f"""SELECT 1 FROM votes WHERE grid_id = ? AND annotator = ?
        AND state IN ({placeholders(DONE_STATES)})""",
        [grid_id, annotator, *DONE_STATES],
    )
    return row is not None


def needs_votes(store: Store, rule: OverlapRule, grid_id: int, annotator: str) -> bool:
    """Whether the grid still takes a vote from this annotator under the rule."""
    row = store.row(f"SELECT {NEEDS_VOTES.format(grid=':grid')}", rule.params(annotator, grid_id))
    return bool(row and row[0])


def refusal(store: Store, rule: OverlapRule, grid_id: int, annotator: str) -> str:
    """Why the grid takes no vote from this annotator, in one line."""
    holder = store.row(
        "SELECT annotator FROM leases WHERE grid_id = ? AND annotator != ? AND expires_at > ?",
        (grid_id, annotator, rule.now),
    )
    if holder is not None:
        return f"{holder[0]} holds grid {grid_id} now"
    voters = [
        row[0]
        for row in store.rows(
            f"""SELECT annotator FROM votes WHERE grid_id = ? AND annotator != ?
            AND state IN ({placeholders(DONE_STATES)}) ORDER BY id""",
            [grid_id, annotator, *DONE_STATES],
        )
    ]
    plural = "vote" if rule.overlap == 1 else "votes"
    return f"grid {grid_id} already has the {rule.overlap} {plural} it needs ({', '.join(voters)})"
