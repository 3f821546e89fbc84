"""The annotation queue: which grid is next for whom, leases, and overlap.

docs/design.md, "The label model": a grid is open to an annotator while fewer than
`overlap` annotators' votes on it are done (labelled or flagged), the annotator has no
vote on it, and nobody else holds an unexpired lease on it. That rule is written once, in
db/overlap.py, where the store's write enforces it too: the queue walks by it and rechecks
a grid by it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

from memgrid.core.records import QueueOrder
from memgrid.core.taxonomy import LabelState
from memgrid.db.overlap import NEEDS_VOTES, OPEN_TO_ANNOTATOR
from memgrid.db.proposals import ACTIVE_SET_OF_GRID

if TYPE_CHECKING:
    from memgrid.db.store import Store

# Open grid ids fetched per query when reading ahead, in multiples of the grids read ahead:
# the queue query is the costly part on large projects.
FETCH_BATCH = 4

# Orders that an index on proposals can serve: the key column and the index's ORDER BY.
_INDEXED_ORDERS = {
    QueueOrder.THRESHOLD: ("margin", "abs(p.margin)"),
    QueueOrder.SCORE: ("score", "p.score DESC"),
}


class AnnotationQueue:
    """One annotator's queue: open grids in a stable order, each leased before it is shown.

    It keeps the open grids fetched ahead (`upcoming`); `seen` arguments are the grids the
    annotator's session has shown already, which the queue does not offer again.
    """

    def __init__(
        self,
        store: Store,
        annotator: str,
        *,
        order: QueueOrder = QueueOrder.THRESHOLD,
        overlap: int = 1,
        random_seed: int = 0,
        lease_seconds: float = 600.0,
        read_ahead: int = 4,
        clock: Callable[[], float] = time.time,
        only: Sequence[int] = (),
    ) -> None:
        self.store = store
        # A fixed list (`memgrid annotate --grids-from`): these grids in this order, done or
        # not, since the point is to look at them again; leases still apply.
        self.only = tuple(dict.fromkeys(only))
        self.annotator = annotator
        self.order = order
        self.overlap = overlap
        self.random_seed = random_seed
        self.lease_seconds = lease_seconds
        self.read_ahead = read_ahead
        self.clock = clock
        self.upcoming: deque[int] = deque()  # open grids fetched ahead, not shown yet

    # ---- what comes next ------------------------------------------------------------

    def next_grid(self, seen: Collection[int], current: int | None = None) -> int | None:
        """The next open grid nobody else holds, claimed for this annotator.

        Grids fetched ahead may have been claimed or finished by someone else since: those
        are dropped. When no open grid is left, the annotator's skipped grids come back,
        oldest first (except `current`, the one on screen).
        """
        while True:
            if not self.upcoming:
                self.upcoming.extend(self.next_open(self.read_ahead, list(seen)))
            if not self.upcoming:
                break
            grid_id = self.upcoming.popleft()
            # Lease first, then look: checking first would let another annotator label
            # and release the grid between the check and the claim (found by bench/soak.py).
            if self.claim(grid_id):
                if self.is_open(grid_id):
                    return grid_id
                self.release(grid_id)
        skipped = self.store.labels.votes_where(annotator=self.annotator, state=LabelState.SKIPPED)
        for grid_id in (vote.grid_id for vote in skipped):
            if self.only and grid_id not in self.only:
                continue
            # A skipped grid others have given its votes since is done: it stays away.
            if grid_id != current and self.needs_votes(grid_id) and self.claim(grid_id):
                return grid_id
        return None

    def ahead(self, seen: Collection[int]) -> list[int]:
        """The open grids that come next (up to `read_ahead`), to read before they are shown.

        Nothing is claimed: `next_grid` claims each when its turn comes.
        """
        if len(self.upcoming) < self.read_ahead:
            exclude = [*seen, *self.upcoming]
            self.upcoming.extend(self.next_open(self.read_ahead * FETCH_BATCH, exclude))
        return list(self.upcoming)[: self.read_ahead]

    # ---- which grids are open -------------------------------------------------------

    def next_open(self, limit: int = 1, exclude: Sequence[int] = ()) -> list[int]:
        """The first `limit` grids open to the annotator, in the queue's order."""
        if self.only:
            excluded_ids = set(exclude)
            return [grid_id for grid_id in self.only if grid_id not in excluded_ids][:limit]
        params = self._params(limit=limit)
        excluded = ",".join(str(int(g)) for g in exclude) or "-1"
        keyed_set = self._only_active_set() if self.order in _INDEXED_ORDERS else None
        if keyed_set is not None:
            return self._open_by_proposal_key(keyed_set, excluded, params)
        order_sql, join_sql = _order_clause(self.order, self.random_seed)
        rows = self.store.rows(
            f"""SELECT g.id FROM grids g {join_sql}
            WHERE g.id NOT IN ({excluded}) AND {OPEN_TO_ANNOTATOR.format(grid="g.id")}
            ORDER BY {order_sql} LIMIT :limit""",
            params,
        )
        return [row[0] for row in rows]

    def is_open(self, grid_id: int) -> bool:
        """Whether the grid is open to the annotator now (a grid fetched ahead may not be)."""
        if self.only:
            return True  # a listed grid is shown even when done: it is there to be looked at
        row = self.store.row(
            f"SELECT {OPEN_TO_ANNOTATOR.format(grid=':grid')}", self._params(grid=grid_id)
        )
        return bool(row[0])

    def needs_votes(self, grid_id: int) -> bool:
        """Whether the grid still takes a vote from this annotator under the overlap."""
        row = self.store.row(
            f"SELECT {NEEDS_VOTES.format(grid=':grid')}", self._params(grid=grid_id)
        )
        return bool(row[0])

    def grids_with_all_votes(self) -> int:
        """Grids with every vote the overlap asks for (the project's progress)."""
        row = self.store.row("SELECT count(*) FROM grid_progress WHERE done >= ?", (self.overlap,))
        return int(row[0])

    def held_by_others(self) -> tuple[int, float | None]:
        """Grids that need this annotator's vote but another's lease holds, and when the
        first of those leases runs out."""
        row = self.store.row(
            """SELECT count(*), min(l.expires_at) FROM leases l
            WHERE l.annotator != :annotator AND l.expires_at > :now
              AND coalesce((SELECT done FROM grid_progress p WHERE p.grid_id = l.grid_id), 0)
                  < :overlap
              AND NOT EXISTS (SELECT 1 FROM votes v WHERE v.grid_id = l.grid_id
                              AND v.annotator = :annotator)""",
            self._params(),
        )
        return int(row[0]), row[1]

    # ---- leases ---------------------------------------------------------------------

    def claim(self, grid_id: int) -> bool:
        """Lease a grid to the annotator; False if another holds an unexpired lease."""
        now = self.clock()
        cursor = self.store.write(
            """INSERT INTO leases (grid_id, annotator, expires_at) VALUES (?, ?, ?)
            ON CONFLICT (grid_id) DO UPDATE SET annotator = excluded.annotator,
                expires_at = excluded.expires_at
            WHERE leases.annotator = excluded.annotator OR leases.expires_at <= ?""",
            (grid_id, self.annotator, now + self.lease_seconds, now),
        )
        return cursor.rowcount > 0

    def release(self, grid_id: int) -> None:
        self.store.write(
            "DELETE FROM leases WHERE grid_id = ? AND annotator = ?", (grid_id, self.annotator)
        )

    def release_all(self, held: Collection[int]) -> None:
        """Hand back the grids in `held` and every grid fetched ahead (on a clean exit)."""
        for grid_id in {*held, *self.upcoming}:
            self.release(grid_id)

    # ---- helpers --------------------------------------------------------------------

    def _params(self, **more: Any) -> dict[str, Any]:
        return {
            "annotator": self.annotator,
            "overlap": self.overlap,
            "now": self.clock(),
            **more,
        }

    def _only_active_set(self) -> int | None:
        """The active threshold set when one project-wide set is the only active one."""
        rows = self.store.rows("SELECT id, model FROM threshold_sets WHERE active = 1")
        return rows[0][0] if len(rows) == 1 and rows[0][1] is None else None

    def _open_by_proposal_key(
        self, set_id: int, excluded: str, params: dict[str, Any]
    ) -> list[int]:
        """The threshold and score orders, walked along an index instead of sorting every grid.

        Same order as the general query: grids with a key first, by the key, then grids
        without one (no proposal, or no score) by id.
        """
        key, index_order = _INDEXED_ORDERS[self.order]
        params = {**params, "set": set_id}
        keyed = self.store.rows(
            f"""SELECT p.grid_id FROM proposals p
            WHERE p.threshold_set_id = :set AND p.{key} IS NOT NULL
              AND p.grid_id NOT IN ({excluded}) AND {OPEN_TO_ANNOTATOR.format(grid="p.grid_id")}
            ORDER BY {index_order}, p.grid_id LIMIT :limit""",
            params,
        )
        found = [row[0] for row in keyed]
        if len(found) < params["limit"]:
            rest = self.store.rows(
                f"""SELECT g.id FROM grids g
                WHERE NOT EXISTS (SELECT 1 FROM proposals p WHERE p.grid_id = g.id
                                  AND p.threshold_set_id = :set AND p.{key} IS NOT NULL)
                  AND g.id NOT IN ({excluded}) AND {OPEN_TO_ANNOTATOR.format(grid="g.id")}
                ORDER BY g.id LIMIT :limit""",
                {**params, "limit": params["limit"] - len(found)},
            )
            found += [row[0] for row in rest]
        return found


def _order_clause(order: QueueOrder, random_seed: int) -> tuple[str, str]:
    """ORDER BY and JOIN for a queue order; every order ends on the grid id, so it is stable."""
    active_proposal = (
        f"LEFT JOIN proposals p ON p.grid_id = g.id AND p.threshold_set_id = {ACTIVE_SET_OF_GRID}"
    )
    if order == QueueOrder.THRESHOLD:
        return "p.margin IS NULL, abs(p.margin), g.id", active_proposal
    if order == QueueOrder.SCORE:
        return "p.score IS NULL, p.score DESC, g.id", active_proposal
    if order == QueueOrder.PROMPT:
        return "(SELECT text FROM prompts WHERE id = g.prompt_id), g.id", ""
    if order == QueueOrder.RANDOM:
        # A fixed pseudo-random permutation: a multiplicative hash of the id, salted by the seed.
        salt = int(random_seed) % 2147483647
        return f"((g.id + {salt}) * 2654435761) % 4294967291, g.id", ""
    raise ValueError(f"not a QueueOrder: {order!r}")  # QueueOrder.parse checks user input
