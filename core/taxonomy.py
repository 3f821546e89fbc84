"""The memorization taxonomy of Naseh et al. (arXiv 2312.07550) and the label's parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Category(StrEnum):
    """What the prompt's author expected of the recurring content."""

    EXPLICIT = "explicit"
    IMPLICIT = "implicit"
    UNINTENDED = "unintended"
    NONE = "none"

    @property
    def severity(self) -> int:
        """Higher is more serious; the grid's primary category is the most serious feature."""
        return _SEVERITY[self]

    @property
    def title(self) -> str:
        return _TITLES[self]

    @property
    def memorized(self) -> bool:
        return self is not Category.NONE


_SEVERITY = {
    Category.NONE: 0,
    Category.EXPLICIT: 1,
    Category.IMPLICIT: 2,
    Category.UNINTENDED: 3,
}
_TITLES = {
    Category.EXPLICIT: "explicit intended",
    Category.IMPLICIT: "implicit intended",
    Category.UNINTENDED: "unintended",
    Category.NONE: "not memorized",
}


def most_serious(categories: list[Category]) -> Category:
    """The primary category of a grid: unintended > implicit > explicit > none."""
    return max(categories, key=lambda c: c.severity, default=Category.NONE)


class LabelState(StrEnum):
    """Whether an annotator is done with a grid."""

    LABELLED = "labelled"
    SKIPPED = "skipped"  # not done; comes back in the queue
    FLAGGED = "flagged"  # unsure; wants review

    @property
    def done(self) -> bool:
        """A labelled or flagged vote counts towards a grid's overlap; a skip does not."""
        return self is not LabelState.SKIPPED


# A grid's state over several annotators' votes: the first state here that any vote is in.
# An open flag comes first: it stays on the grid, whoever labels it, until a verdict
# (an adjudication newer than the flag) resolves it (core.agreement.grid_state).
STATE_PRECEDENCE = (LabelState.FLAGGED, LabelState.LABELLED, LabelState.SKIPPED)


class LabelAction(StrEnum):
    """What a label event does (docs/design.md, "The label model").

    An annotator's **vote** on a grid is their latest `label`, `skip` or `flag` that still
    counts; an `adjudicate` event is never a vote, and an `undo` cancels the event it names.
    A `draft` holds the note and features typed before the grid's label (never a vote): the
    next label or flag takes them over.
    """

    LABEL = "label"
    SKIP = "skip"
    FLAG = "flag"
    ADJUDICATE = "adjudicate"
    UNDO = "undo"
    DRAFT = "draft"


class Webster(StrEnum):
    """Webster (2023) replication types, kept for interoperability."""

    MATCHING_VERBATIM = "MV"
    TEMPLATE_VERBATIM = "TV"
    RETRIEVAL_VERBATIM = "RV"
    NONE = "N"


WHOLE_IMAGE = "whole image"


@dataclass(frozen=True)
class Feature:
    """One memorized feature of a grid: its category, a short name and where it sits.

    `tiles` holds indices into the region map (row * columns + column); empty means
    the whole image.
    """

    category: Category
    name: str
    tiles: tuple[int, ...] = field(default_factory=tuple)

    @property
    def where(self) -> str:
        return WHOLE_IMAGE if not self.tiles else f"{len(self.tiles)} tiles"

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category.value,
            "name": self.name,
            "tiles": list(self.tiles),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Feature:
        return cls(
            category=Category(data["category"]),
            name=str(data.get("name", "")),
            tiles=tuple(int(t) for t in data.get("tiles", ())),
        )
