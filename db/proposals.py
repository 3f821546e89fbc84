"""Proposals: the categorizer's label for each grid under each threshold set."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from memgrid.core.records import Proposal, ProposedLabels
from memgrid.core.taxonomy import Category, Webster
from memgrid.db.rows import PROPOSAL_COLUMNS, Noun, now_text, placeholders, proposal_record

# The set a grid's proposal is read under: the active set for its model, else the
# project-wide one. `g` is the grid.
ACTIVE_SET_OF_GRID = """(SELECT t.id FROM threshold_sets t
    WHERE t.active = 1 AND (t.model = g.model OR t.model IS NULL)
    ORDER BY t.model IS NULL LIMIT 1)"""


class Proposals(Noun):
    def add(self, proposal: Proposal) -> None:
        """Store a proposal, replacing the grid's earlier one under the same set."""
        self.store.write(
            """INSERT INTO proposals (grid_id, threshold_set_id, category, features, reasons,
                webster, score, margin, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (grid_id, threshold_set_id) DO UPDATE SET
                category = excluded.category, features = excluded.features,
                reasons = excluded.reasons, webster = excluded.webster,
                score = excluded.score, margin = excluded.margin,
                created_at = excluded.created_at""",
            (
                proposal.grid_id,
                proposal.threshold_set_id,
                proposal.category.value,
                json.dumps([f.to_dict() for f in proposal.features]),
                json.dumps([r.to_dict() for r in proposal.reasons]),
                proposal.webster.value if proposal.webster else None,
                proposal.score,
                proposal.margin,
                now_text(),
            ),
        )

    def add_many(self, proposals: Iterable[Proposal]) -> int:
        """Store proposals in one transaction; returns how many."""
        count = 0
        with self.store.atomic():
            for proposal in proposals:
                self.add(proposal)
                count += 1
        return count

    def find(self, grid_id: int, threshold_set_id: int | None = None) -> Proposal | None:
        """The grid's proposal under a set (default: the active set for the grid's model)."""
        if threshold_set_id is None:
            return next(iter(self.active_where(grid_ids=[grid_id])), None)
        row = self.store.row(
            f"SELECT {PROPOSAL_COLUMNS} FROM proposals WHERE grid_id = ? AND threshold_set_id = ?",
            (grid_id, threshold_set_id),
        )
        return None if row is None else proposal_record(row)

    def active_where(self, *, grid_ids: Sequence[int]) -> list[Proposal]:
        """Each grid's proposal under the threshold set active for its model, in grid order."""
        if not grid_ids:
            return []
        columns = ", ".join(f"p.{c.strip()}" for c in PROPOSAL_COLUMNS.split(","))
        return [
            proposal_record(row)
            for row in self.store.rows(
                f"""SELECT {columns} FROM grids g
                JOIN proposals p ON p.grid_id = g.id AND p.threshold_set_id = {ACTIVE_SET_OF_GRID}
                WHERE g.id IN ({placeholders(grid_ids)}) ORDER BY g.id""",
                list(grid_ids),
            )
        ]

    def active_labels_all(self) -> ProposedLabels:
        """Every grid's proposed category and Webster type under the set active for its model."""
        rows = self.store.rows(
            f"""SELECT g.id, p.category, p.webster FROM grids g
            JOIN proposals p ON p.grid_id = g.id AND p.threshold_set_id = {ACTIVE_SET_OF_GRID}
            ORDER BY g.id"""
        )
        if not rows:
            return ProposedLabels([], [], [])
        grid_ids, categories, webster = zip(*rows, strict=True)
        category_of = {category.value: category for category in Category}
        webster_of = {kind.value: kind for kind in Webster}
        return ProposedLabels(
            list(grid_ids),
            [category_of[value] for value in categories],
            [webster_of.get(value) for value in webster],
        )

    def category_counts_all(self) -> dict[str, int]:
        """Proposals per category under each grid's active threshold set."""
        counts = {category.value: 0 for category in Category}
        for category, count in self.store.rows(
            """SELECT p.category, count(*) FROM proposals p
            JOIN threshold_sets t ON t.id = p.threshold_set_id AND t.active = 1
            GROUP BY p.category"""
        ):
            counts[category] = count
        return counts
