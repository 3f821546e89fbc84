"""The review queue's items: open flags, disagreements and skips nobody has settled.

One queue for the reviewer (issue 13): a grid shows once, as its most pressing kind (an
open flag, then a disagreement, then a skip nobody followed with a label); a verdict (an
`adjudicate` event) settles any of them. Open items come first, most contested first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from memgrid.core.records import LabelEvent
from memgrid.core.taxonomy import Category


class ReviewKind(StrEnum):
    FLAG = "flag"
    DISAGREEMENT = "disagreement"
    SKIP = "skip"


@dataclass(frozen=True)
class ReviewItem:
    """A grid to review: the votes that put it here, and the final label if one was set."""

    grid_id: int
    votes: tuple[LabelEvent, ...]
    adjudication: LabelEvent | None = None
    kind: ReviewKind = ReviewKind.DISAGREEMENT

    @property
    def settled(self) -> bool:
        """Only a disagreement is listed once settled (flags and skips leave the queue)."""
        return self.kind is ReviewKind.DISAGREEMENT and self.adjudication is not None

    @property
    def annotators(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(vote.annotator for vote in self.votes))

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
        if self.kind is ReviewKind.FLAG:
            return "; ".join(f"{v.annotator}: {v.note or 'no reason'}" for v in self.votes)
        if self.kind is ReviewKind.SKIP:
            return "skipped by " + ", ".join(self.annotators)
        return ", ".join(
            f"{count}× {category.value}" for category, count in self.categories.most_common()
        )


def review_items(
    disagreements: dict[int, list[LabelEvent]],
    adjudications: dict[int, LabelEvent],
    flags: Iterable[LabelEvent] = (),
    skips: Iterable[LabelEvent] = (),
) -> list[ReviewItem]:
    """Every grid to review, once each, open ones first (flags, disagreements, skips), the
    most contested first within a kind (share, spread, voters), then settled ones."""
    open_flags: dict[int, list[LabelEvent]] = {}
    for flag in flags:
        verdict = adjudications.get(flag.grid_id)
        if verdict is None or flag.id > verdict.id:  # a verdict newer than a flag resolves it
            open_flags.setdefault(flag.grid_id, []).append(flag)
    items = {
        grid_id: ReviewItem(grid_id, tuple(votes), adjudications.get(grid_id), ReviewKind.FLAG)
        for grid_id, votes in open_flags.items()
    }
    for grid_id, votes in disagreements.items():
        items.setdefault(grid_id, ReviewItem(grid_id, tuple(votes), adjudications.get(grid_id)))
    skipped: dict[int, list[LabelEvent]] = {}
    for skip in skips:
        if skip.grid_id not in items and skip.grid_id not in adjudications:
            skipped.setdefault(skip.grid_id, []).append(skip)
    for grid_id, votes in skipped.items():
        items[grid_id] = ReviewItem(grid_id, tuple(votes), None, ReviewKind.SKIP)
    order = list(ReviewKind)
    return sorted(
        items.values(),
        key=lambda d: (
            d.settled,
            order.index(d.kind),
            -d.share,
            -d.spread,
            -len(d.votes),
            d.grid_id,
        ),
    )
