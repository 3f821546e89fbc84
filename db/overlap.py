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
