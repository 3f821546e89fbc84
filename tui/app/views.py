"""What the app shows one annotator: each grid's view (cached), their labels, others' votes.

Pure of Textual, like the session. Views of grids read ahead are kept (the grid, its
proposal, scores and attribution do not change while it is annotated); votes and verdicts
are read fresh each time a view is asked for.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from memgrid.core.attribution import Attribution
from memgrid.core.records import Grid, LabelEvent, Proposal, Score
from memgrid.core.taxonomy import Feature, LabelState
from memgrid.db.store import Store
from memgrid.tui.app.adjudication import ReviewItem, review_items
from memgrid.tui.app.evidence import Evidence, evidence_from
from memgrid.tui.services.proposing import Proposer

HEATMAP_METRIC = "tiled-l2"  # the region consistency map (docs/design.md, "Signals")
KEEP_VIEWS = 64  # grid views kept in memory (history and read-ahead)
# Said in the status line when a key asks for a mark that waits (the bar above the grid lists them).
DETECTOR_HIDDEN = (
    "Proposal-hidden grid: the detector's marks show after your vote (your label measures it)."
)


def in_blind_share(project_id: str, grid_id: int, share: float) -> bool:
    """True for a fixed pseudo-random `share` of grids: the same ones on every run and machine."""
    digest = hashlib.sha256(f"{project_id}:{grid_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 < share


@dataclass(frozen=True)
class DetectorMarks:
    """What the detector derived for a grid, as far as the annotator may see it now: every
    screen draws the proposal, scores, heat map, seed groups, region, training-image match
    and prompt highlights from here, never from the GridView's own fields."""

    hidden: bool = False  # withheld until this annotator's vote (GridView.detector_hidden)
    proposal: Proposal | None = None
    scores: tuple[Score, ...] = ()
    heatmap: list[list[float]] | None = None
    attribution: Attribution | None = None  # the prompt's names and cues

    @property
    def evidence(self) -> Evidence:
        """The region outline and seed groups (none without scores)."""
        return evidence_from(self.scores, self.proposal)


@dataclass(frozen=True)
class GridView:
    """Everything the annotate screen shows for one grid, read in one go off the UI thread."""

    grid: Grid
    proposal: Proposal | None  # the active proposal, even when hidden (it is recorded)
    proposal_shown: bool
    scores: tuple[Score, ...]
    heatmap: list[list[float]] | None
    mine: LabelEvent | None  # this annotator's vote
    others: tuple[LabelEvent, ...]  # others' votes; empty when others' labels are hidden
    others_hidden: bool
    attribution: Attribution
    adjudication: LabelEvent | None = None
    draft: LabelEvent | None = None  # note and features typed for this grid's next label
    # This annotator voted on the grid in memgrid before, even if that vote was undone since:
    # the detector's marks were on screen after it, and cannot be unseen.
    voted_before: bool = False

    @property
    def draft_note(self) -> str:
        return self.draft.note if self.draft else ""

    @property
    def draft_features(self) -> tuple[Feature, ...]:
        return self.draft.features if self.draft else ()

    @property
    def grid_id(self) -> int:
        return self.grid.id

    @property
    def visible_proposal(self) -> Proposal | None:
        """The proposal Enter takes: none on a proposal-hidden grid, even once it shows after
        the vote (a blind label stays the annotator's own)."""
        return self.proposal if self.proposal_shown else None

    @property
    def voted(self) -> bool:
        """Whether this annotator is done with the grid (labelled or flagged it)."""
        return self.mine is not None and self.mine.state is not None and self.mine.state.done

    @property
    def detector_hidden(self) -> bool:
        """The rule of the proposal-hidden share (docs/design.md, "Calibration and
        agreement"): until this annotator has voted on such a grid, nothing the detector
        derived is shown, so the vote measures the detector instead of echoing it."""
        return self.proposal is not None and not self.marks_seen

    @property
    def marks_seen(self) -> bool:
        """Whether this annotator has had the detector's marks on screen for this grid:
        shown from the start, or since a vote (kept through an undo)."""
        return self.proposal_shown or self.voted or self.voted_before

    @property
    def marks(self) -> DetectorMarks:
        """The detector's output as the rule above lets this annotator see it now."""
        if self.detector_hidden:
            return DetectorMarks(hidden=True)
        return DetectorMarks(
            proposal=self.proposal,
            scores=self.scores,
            heatmap=self.heatmap,
            attribution=self.attribution,
        )


class AnnotatorViews:
    """The read side of one annotator's session: grid views, their history, others' votes."""

    def __init__(
        self, store: Store, annotator: str, *, blind_share: float, show_others: bool
    ) -> None:
        self.store = store
        self.annotator = annotator
        self.blind_share = blind_share
        self.show_others = show_others
        self.project_id = store.project_id or ""
        # The prompt is attributed as `memgrid propose` does, without CLIP (highlights only).
        self.proposer = Proposer(store.entities.all())
        self._cache: OrderedDict[int, GridView] = OrderedDict()
        self._lock = threading.Lock()  # the app's workers share the cache

    def view(self, grid_id: int) -> GridView:
        """The grid's view, from the cache when read ahead, with the votes as they are now."""
        return self._with_fresh_labels(self.read_ahead(grid_id))

    def read_ahead(self, grid_id: int) -> GridView:
        """The grid's view from the cache, read and kept first if need be (votes not read)."""
        with self._lock:
            view = self._cache.get(grid_id)
            if view is not None:
                self._cache.move_to_end(grid_id)
                return view
        view = self._read(grid_id)
        with self._lock:
            self._cache[grid_id] = view
            while len(self._cache) > KEEP_VIEWS:
                self._cache.popitem(last=False)
        return view

    def forget(self) -> None:
        """Drop the kept views, so proposals are read again (after a calibration run)."""
        with self._lock:
            self._cache.clear()

    def history(self, grid_id: int) -> list[LabelEvent]:
        """Every event on the grid, undos included, oldest first."""
        return self.store.labels.events_where(grid_id=grid_id)

    def my_labels(self, limit: int = 500) -> list[LabelEvent]:
        """This annotator's votes, newest first."""
        return self.store.labels.votes_where(
            annotator=self.annotator, newest_first=True, limit=limit
        )

    def grids(self, grid_ids: Sequence[int]) -> list[Grid]:
        return self.store.grids.where(ids=list(grid_ids))

    def grids_in_state(self, state: LabelState) -> list[Grid]:
        """The grids this annotator's vote puts in `state`, oldest vote first."""
        votes = self.store.labels.votes_where(annotator=self.annotator, state=state)
        return self.grids([vote.grid_id for vote in votes])

    def disagreements(self) -> dict[int, list[LabelEvent]]:
        return self.store.labels.disagreements_all()

    def adjudications(self) -> dict[int, LabelEvent]:
        return self.store.labels.adjudications_where()

    def votes_and_verdicts(self, grid_id: int) -> list[LabelEvent]:
        """Every annotator's vote on the grid and every verdict, for the reviewer."""
        return self.store.labels.current_where(grid_ids=[grid_id])

    def review_items(self) -> list[ReviewItem]:
        """The review queue: open flags, disagreements and skips nobody followed up, in one
        read of the store."""
        labels = self.store.labels
        with self.store.snapshot():
            return review_items(
                labels.disagreements_all(),
                labels.adjudications_where(),
                flags=labels.votes_where(state=LabelState.FLAGGED),
                skips=labels.skips_unfollowed_all(),
            )

    def _read(self, grid_id: int) -> GridView:
        grid = self.store.grids.get(grid_id)
        proposal = self.store.proposals.find(grid_id)
        scores = tuple(self.store.scores.where(grid_ids=[grid_id]))
        shown = proposal is not None and not in_blind_share(
            self.project_id, grid_id, self.blind_share
        )
        return GridView(
            grid=grid,
            proposal=proposal,
            proposal_shown=shown,
            scores=scores,
            heatmap=heatmap_of(scores),
            mine=None,
            others=(),
            others_hidden=not self.show_others,
            attribution=self.proposer.attribution(grid),
        )

    def _with_fresh_labels(self, view: GridView) -> GridView:
        votes = self.store.labels.votes_where(grid_ids=[view.grid_id])
        mine = next((e for e in votes if e.annotator == self.annotator), None)
        draft = self.store.labels.draft_where(grid_id=view.grid_id, annotator=self.annotator)
        view = replace(view, mine=mine, draft=draft)
        if view.detector_hidden:  # only then can an undone vote of this annotator matter
            voted_before = any(
                event.annotator == self.annotator
                and not event.imported
                and event.state is not None
                and event.state.done
                for event in self.history(view.grid_id)
            )
            view = replace(view, voted_before=voted_before)
        # Others' votes are not shown before this annotator's own (anchoring), unless asked.
        if not (self.show_others or view.voted):
            return replace(view, others_hidden=True)
        verdicts = self.store.labels.adjudications_where(grid_ids=[view.grid_id])
        return replace(
            view,
            others_hidden=False,
            others=tuple(e for e in votes if e.annotator != self.annotator),
            adjudication=verdicts.get(view.grid_id),
        )


def heatmap_of(scores: Sequence[Score]) -> list[list[float]] | None:
    """The region consistency map: tiled-l2's when present, else any metric's."""
    with_map = [s for s in scores if s.heatmap and s.available]
    preferred = [s for s in with_map if s.metric == HEATMAP_METRIC]
    chosen = (preferred or with_map or [None])[0]
    return chosen.heatmap if chosen is not None else None
