"""Ranking disagreements for the adjudication queue: the most contested grids first."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from memgrid.core.records import LabelEvent
from memgrid.core.taxonomy import Category


@dataclass(frozen=True)
class Disagreement:
    """The annotators' votes on one grid, and the final label if one was set."""

    grid_id: int
    votes: tuple[LabelEvent, ...]
    adjudication: LabelEvent | None = None

    @property
    def categories(self) -> Counter[Category]:
        return Counter(v.category for v in self.votes if v.category is not None)

    @property
    def share(self) -> float:
        """1 - majority share: 0 when all agree, towards 1 as votes scatter."""
        counts = self.categories
        total = sum(counts.values())
        return 0.0 if total == 0 else 1.0 - max(counts.values()) / total

    @property
    def spread(self) -> int:
        """How far apart in severity the votes are (none vs unintended is the widest)."""
        severities = [c.severity for c in self.categories]
        return max(severities) - min(severities) if severities else 0

    def summary(self) -> str:
        return ", ".join(
            f"{count}× {category.value}" for category, count in self.categories.most_common()
        )


def rank_disagreements(
    votes: dict[int, list[LabelEvent]], adjudications: dict[int, LabelEvent]
) -> list[Disagreement]:
    """Open disagreements first, most contested first (share, spread, voters), then settled ones."""
    items = [
        Disagreement(grid_id, tuple(events), adjudications.get(grid_id))
        for grid_id, events in votes.items()
    ]
    return sorted(
        items,
        key=lambda d: (d.adjudication is not None, -d.share, -d.spread, -len(d.votes), d.grid_id),
    )
