"""The agreed label of a grid, resolved from its annotators' current label events.

docs/design.md, "Calibration and agreement": an adjudication settles a grid; otherwise the category most of its
annotators chose wins, and a tie stays a tie rather than being broken silently. Export
and calibration both read labels this way, so they agree on what "the label" is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from memgrid.core.records import LabelEvent
from memgrid.core.taxonomy import (
    STATE_PRECEDENCE,
    Category,
    Feature,
    LabelAction,
    LabelState,
    Webster,
)

_Value = TypeVar("_Value", bound=Hashable)


class AgreementHow(StrEnum):
    """How a grid's agreed label was reached."""

    ADJUDICATED = "adjudicated"  # an adjudicator's current decision
    MAJORITY = "majority"  # one category has more annotators than any other (a plurality)
    TIE = "tie"  # two or more categories share the most annotators: no agreed label
    UNLABELLED = "unlabelled"  # nobody's current label is `labelled`


class GridState(StrEnum):
    """Where a grid stands over all annotators (or one): the label states plus never touched."""

    LABELLED = "labelled"
    FLAGGED = "flagged"
    SKIPPED = "skipped"
    UNLABELLED = "unlabelled"


@dataclass(frozen=True)
class AgreedLabel:
    """The grid's label as a data set reports it, with how it was reached.

    `annotators` counts the annotators whose current label is `labelled` (adjudications
    are not votes); `support` is how many of them chose `category`. `tied` lists the
    categories of a tie. `features` and `webster` come from the adjudication, else from
    the annotators who chose the agreed category.
    """

    category: Category | None
    how: AgreementHow
    support: int
    annotators: int
    tied: tuple[Category, ...] = ()
    features: tuple[Feature, ...] = ()
    webster: Webster | None = None

    @property
    def share(self) -> float | None:
        """The share of annotators who chose the agreed category; None without annotators."""
        return self.support / self.annotators if self.annotators else None


def agreed_label(events: Iterable[LabelEvent]) -> AgreedLabel:
    """Resolve one grid's agreed label from its current label events.

    `events` are each annotator's current vote (label, flag or skip) and current
    adjudication, as the store's `labels.current_where` gives them. The latest adjudication
    settles the grid; otherwise the category more annotators chose than any other wins
    (a plurality: it can be under half when three categories are in play, which
    `support`/`annotators` shows).
    """
    adjudications: list[LabelEvent] = []
    votes: list[LabelEvent] = []
    for event in events:
        if event.state is not LabelState.LABELLED or event.category is None:
            continue
        (adjudications if event.action is LabelAction.ADJUDICATE else votes).append(event)
    if adjudications:
        decision = max(adjudications, key=lambda event: event.id)
        category = decision.category
        assert category is not None  # filtered above
        return AgreedLabel(
            category=category,
            how=AgreementHow.ADJUDICATED,
            support=sum(vote.category is category for vote in votes),
            annotators=len(votes),
            features=decision.features,
            webster=decision.webster,
        )
    if not votes:
        return AgreedLabel(None, AgreementHow.UNLABELLED, support=0, annotators=0)
    counts = Counter(vote.category for vote in votes)
    top = max(counts.values())
    leaders = [category for category in Category if counts.get(category) == top]
    if len(leaders) > 1:
        return AgreedLabel(
            None, AgreementHow.TIE, support=top, annotators=len(votes), tied=tuple(leaders)
        )
    winners = sorted(
        (vote for vote in votes if vote.category is leaders[0]), key=lambda vote: vote.id
    )
    return AgreedLabel(
        category=leaders[0],
        how=AgreementHow.MAJORITY,
        support=top,
        annotators=len(votes),
        features=tuple(dict.fromkeys(f for vote in winners for f in vote.features)),
        webster=unique_mode(vote.webster for vote in winners if vote.webster is not None),
    )


def grid_state(events: Sequence[LabelEvent]) -> GridState:
    """The first state of STATE_PRECEDENCE that any vote is in, else never touched.

    A flag counts while it is open: no adjudication on the grid is newer than it (a verdict
    resolves it). An adjudicated grid is labelled. The store's label counts
    (`labels.state_counts_where`) follow the same rule, so exports and status agree.
    """
    verdicts = [event.id for event in events if event.action is LabelAction.ADJUDICATE]
    latest_verdict = max(verdicts, default=0)
    states = {
        event.state
        for event in events
        if event.action is not LabelAction.ADJUDICATE
        and (event.state is not LabelState.FLAGGED or event.id > latest_verdict)
    }
    if verdicts:
        states.add(LabelState.LABELLED)
    for state in STATE_PRECEDENCE:
        if state in states:
            return GridState(state.value)
    return GridState.UNLABELLED


def unique_mode(values: Iterable[_Value]) -> _Value | None:
    """The most frequent value when exactly one value is most frequent, else None."""
    ranked = Counter(values).most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]
