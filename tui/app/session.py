"""One annotator's session: the queue, what each grid shows, and every label action.

Pure of Textual so it can be tested directly: the app's workers call these methods and
post the results. Every action is committed through the store before the method returns,
so whatever the screen shows as done is already in the database. One lock serialises the
store connection between the app's worker threads.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from memgrid.core.attribution import Attribution
from memgrid.core.errors import NotFoundError
from memgrid.core.records import Grid, LabelEvent, Proposal, Score
from memgrid.core.taxonomy import Category, Feature, LabelState
from memgrid.db.store import Store
from memgrid.tui.services.proposing import Proposer

HEATMAP_METRIC = "tiled-l2"  # the region consistency map (docs/design.md, "Signals")
RATE_WINDOW_SECONDS = 3600.0
RATE_MIN_SPAN_SECONDS = 300.0  # a rate over a few seconds would be noise
PREFETCH_BATCH = 4  # queue ids fetched per query, in multiples of the grids read ahead
KEEP_VIEWS = 64  # grid views kept in memory (history and read-ahead)


def in_blind_share(project_id: str, grid_id: int, share: float) -> bool:
    """True for a fixed pseudo-random `share` of grids: the same ones on every run and machine."""
    digest = hashlib.sha256(f"{project_id}:{grid_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 < share


@dataclass(frozen=True)
class SessionOptions:
    """Who annotates, in which order, and how the queue is shared with others."""

    annotator: str
    order: str = "threshold"
    random_seed: int = 0
    overlap: int = 1
    hide_others: bool = False  # --blind: do not show other annotators' labels
    blind_share: float = 0.1  # share of grids shown without the proposal (docs/design.md, "Calibration and agreement")
    lease_seconds: float = 600.0
    prefetch: int = 4


@dataclass(frozen=True)
class GridView:
    """Everything the annotate screen shows for one grid, read in one go off the UI thread."""

    grid: Grid
    proposal: Proposal | None  # the active proposal, even when hidden (it is recorded)
    proposal_shown: bool
    scores: tuple[Score, ...]
    heatmap: list[list[float]] | None
    mine: LabelEvent | None
    others: tuple[LabelEvent, ...]  # empty when others' labels are hidden
    others_hidden: bool
    attribution: Attribution
    adjudication: LabelEvent | None = None

    @property
    def grid_id(self) -> int:
        return self.grid.id

    @property
    def visible_proposal(self) -> Proposal | None:
        return self.proposal if self.proposal_shown else None


@dataclass(frozen=True)
class Progress:
    done: int  # grids this annotator labelled or flagged
    total: int
    labels_per_hour: float | None  # None until there is a label in the window
    skipped: int = 0
    flagged: int = 0


@dataclass(frozen=True)
class Outcome:
    """What an action did: the grid to show now, a line for the status bar, the new progress."""

    view: GridView | None
    message: str
    progress: Progress
    event: LabelEvent | None = None
    advanced: bool = False


@dataclass
class Draft:
    """A note and features typed for a grid before its label; they go on its next event."""

    note: str = ""
    features: list[Feature] = field(default_factory=list)


class AnnotationSession:
    """The queue of one annotator, their history in this session, and their actions."""

    def __init__(
        self,
        store: Store,
        options: SessionOptions,
        *,
        clock: Callable[[], float] = time.time,
        session_id: str | None = None,
    ) -> None:
        self.store = store
        self.options = options
        self.clock = clock
        self.session_id = session_id or uuid.uuid4().hex[:12]
        self.project_id = store.project_id or ""
        # The prompt is attributed as `memgrid propose` does, without CLIP (highlights only).
        self.proposer = Proposer(store.entities())
        self.visited: list[int] = []  # grids shown in this session, oldest first
        self.position = -1  # index of the current grid in `visited`
        self.upcoming: deque[int] = deque()  # open grids fetched ahead, not shown yet
        self.drafts: dict[int, Draft] = {}
        self._views: OrderedDict[int, GridView] = OrderedDict()
        self._lock = threading.RLock()

    # ---- reading ---------------------------------------------------------------------

    @property
    def annotator(self) -> str:
        return self.options.annotator

    @property
    def current_id(self) -> int | None:
        return self.visited[self.position] if 0 <= self.position < len(self.visited) else None

    def current(self) -> GridView | None:
        grid_id = self.current_id
        return None if grid_id is None else self.view(grid_id)

    def draft(self, grid_id: int) -> Draft:
        return self.drafts.setdefault(grid_id, Draft())

    def view(self, grid_id: int) -> GridView:
        """The grid's view, from the cache when prefetched; labels are read fresh each time."""
        with self._lock:
            return self._with_fresh_labels(self._cached_or_load(grid_id))

    def forget_views(self) -> None:
        """Drop prefetched views, so proposals are read again (after a calibration run)."""
        with self._lock:
            self._views.clear()

    def cached_view(self, grid_id: int) -> GridView | None:
        return self._views.get(grid_id)

    def _load_view(self, grid_id: int) -> GridView:
        grid = self.store.grid(grid_id)
        proposal = self.store.proposal(grid_id)
        scores = tuple(self.store.scores(grid_id))
        shown = proposal is not None and not in_blind_share(
            self.project_id, grid_id, self.options.blind_share
        )
        return GridView(
            grid=grid,
            proposal=proposal,
            proposal_shown=shown,
            scores=scores,
            heatmap=heatmap_of(scores),
            mine=None,
            others=(),
            others_hidden=self.options.hide_others,
            attribution=self.proposer.attribution(grid),
        )

    def _with_fresh_labels(self, view: GridView) -> GridView:
        labels = self.store.current_labels(view.grid_id)
        mine = next((e for e in labels if e.annotator == self.annotator), None)
        others = tuple(
            e for e in labels if e.annotator != self.annotator and e.action != "adjudicate"
        )
        adjudication = next((e for e in labels if e.action == "adjudicate"), None)
        return replace(
            view,
            mine=mine,
            others=() if self.options.hide_others else others,
            adjudication=None if self.options.hide_others else adjudication,
        )

    def progress(self) -> Progress:
        with self._lock:
            counts = self.store.label_counts(self.annotator)
            now = self.clock()
            times = self.store.label_times(self.annotator, now - RATE_WINDOW_SECONDS)
            total = self.store.grid_count
        rate = None
        if times:
            span = max(now - times[0], RATE_MIN_SPAN_SECONDS)
            rate = len(times) * 3600.0 / span
        return Progress(
            done=counts["labelled"] + counts["flagged"],
            total=total,
            labels_per_hour=rate,
            skipped=counts["skipped"],
            flagged=counts["flagged"],
        )

    def history(self, grid_id: int) -> list[LabelEvent]:
        with self._lock:
            return self.store.label_history(grid_id)

    def my_labels(self, limit: int = 500) -> list[LabelEvent]:
        with self._lock:
            return self.store.labels_by(self.annotator, limit)

    def grids(self, grid_ids: Sequence[int]) -> list[Grid]:
        with self._lock:
            return self.store.grids(list(grid_ids))

    def grids_in_state(self, state: LabelState) -> list[Grid]:
        with self._lock:
            return self.store.grids(self.store.grids_in_state(state, self.annotator))

    # ---- the queue -------------------------------------------------------------------

    def start(self) -> Outcome:
        """Open the session at the next open grid: after a crash, that is where work resumes."""
        with self._lock:
            view = self._advance_to_new()
            message = "" if view else "No open grids: every grid is done."
            return Outcome(view, message, self.progress(), advanced=view is not None)

    def prefetch(self) -> list[GridView]:
        """Read the next open grids ahead of time; returns their views (for thumbnails).

        Grid ids are fetched in batches (the queue query is the costly part on large
        projects); views are read for the next `prefetch` only.
        """
        with self._lock:
            if len(self.upcoming) < self.options.prefetch:
                exclude = [*self.visited, *self.upcoming]
                batch = self.options.prefetch * PREFETCH_BATCH
                self.upcoming.extend(self._open_grids(batch, exclude))
            ahead = list(self.upcoming)[: self.options.prefetch]
            return [self._cached_or_load(g) for g in ahead]

    def _cached_or_load(self, grid_id: int) -> GridView:
        view = self._views.get(grid_id)
        if view is None:
            view = self._views[grid_id] = self._load_view(grid_id)
            while len(self._views) > KEEP_VIEWS:
                self._views.popitem(last=False)
        else:
            self._views.move_to_end(grid_id)
        return view

    def _open_grids(self, limit: int, exclude: Sequence[int]) -> list[int]:
        return self.store.next_open_grids(
            self.annotator,
            order=self.options.order,
            limit=limit,
            overlap=self.options.overlap,
            random_seed=self.options.random_seed,
            exclude=exclude,
            now=self.clock(),
        )

    def _next_new_grid(self) -> int | None:
        """The next open grid nobody else holds, claimed for this annotator.

        Grids fetched ahead may have been claimed by someone else since: those are
        dropped. When no open grid is left, skipped grids come back, oldest first.
        """
        while True:
            if not self.upcoming:
                self.upcoming.extend(self._open_grids(self.options.prefetch, self.visited))
            if not self.upcoming:
                break
            grid_id = self.upcoming.popleft()
            # Lease first, then look: checking first would let another annotator label
            # and release the grid between the check and the claim (found by bench/soak.py).
            if self._claim(grid_id):
                if self._still_open(grid_id):
                    return grid_id
                self.store.release(grid_id, self.annotator)
        skipped = self.store.grids_in_state(LabelState.SKIPPED, self.annotator)
        current = self.current_id
        for grid_id in skipped:
            if grid_id != current and self._claim(grid_id):
                return grid_id
        return None

    def _still_open(self, grid_id: int) -> bool:
        """Grids fetched ahead may have been labelled by others since (overlap reached)."""
        labels = self.store.current_labels(grid_id)
        if any(e.annotator == self.annotator for e in labels):
            return False
        done = {e.annotator for e in labels if e.state in (LabelState.LABELLED, LabelState.FLAGGED)}
        return len(done) < self.options.overlap

    def _claim(self, grid_id: int) -> bool:
        return self.store.claim(
            grid_id, self.annotator, self.options.lease_seconds, now=self.clock()
        )

    def _advance_to_new(self) -> GridView | None:
        grid_id = self._next_new_grid()
        if grid_id is None:
            self.position = len(self.visited)
            return None
        self.visited.append(grid_id)
        self.position = len(self.visited) - 1
        return self.view(grid_id)

    def _advance(self) -> GridView | None:
        """Forward one step through this session's history, then on to a new grid."""
        if self.position + 1 < len(self.visited):
            self.position += 1
            grid_id = self.visited[self.position]
            self._claim(grid_id)
            return self.view(grid_id)
        return self._advance_to_new()

    def renew_lease(self) -> bool:
        """Extend the lease on the grid on screen; False if someone else holds it now."""
        with self._lock:
            grid_id = self.current_id
            return True if grid_id is None else self._claim(grid_id)

    def release_all(self) -> None:
        """Hand back every grid this session holds (on a clean exit)."""
        with self._lock:
            for grid_id in {*self.visited, *self.upcoming}:
                self.store.release(grid_id, self.annotator)

    # ---- moving around -----------------------------------------------------------------

    def back(self) -> Outcome:
        with self._lock:
            if self.position <= 0:
                return Outcome(
                    self.current(), "Already at the first grid of this session.", self.progress()
                )
            self.position -= 1
            return Outcome(self.current(), "", self.progress())

    def forward(self) -> Outcome:
        with self._lock:
            if self.position + 1 >= len(self.visited):
                return Outcome(self.current(), "Already at the newest grid.", self.progress())
            self.position += 1
            self._claim(self.visited[self.position])
            return Outcome(self.current(), "", self.progress())

    def reopen(self, grid_id: int) -> Outcome:
        """Show an earlier grid again to correct it; the next label returns to where we were."""
        with self._lock:
            self.store.grid(grid_id)  # raises NotFoundError for an unknown id
            if self.current_id == grid_id:
                return Outcome(self.current(), "", self.progress())
            self.visited.insert(max(self.position, 0), grid_id)
            self.position = max(self.position, 0)
            self._claim(grid_id)
            return Outcome(self.current(), f"Reopened grid {grid_id}.", self.progress())

    # ---- label actions ---------------------------------------------------------------

    def label(self, category: Category, features: Sequence[Feature] | None = None) -> Outcome:
        """Set the primary category of the grid on screen, commit it, and move on."""
        with self._lock:
            view = self._require_current()
            draft = self.draft(view.grid_id)
            chosen = list(features) if features is not None else self._features_for(view)
            event = self.store.label(
                view.grid_id,
                self.annotator,
                category,
                features=chosen,
                note=draft.note or (view.mine.note if view.mine else ""),
                **self._proposal_details(view),
            )
            return self._done(view, event, f"Grid {view.grid_id}: {category.title}.")

    def accept_proposal(self) -> Outcome:
        """Take the proposal's category and features as this annotator's label."""
        with self._lock:
            view = self._require_current()
            proposal = view.visible_proposal
            if proposal is None:
                why = "hidden on this grid (blind share)" if view.proposal else "not computed"
                return Outcome(view, f"No proposal to accept: {why}.", self.progress())
            features = [*proposal.features, *self.draft(view.grid_id).features]
            return self.label(proposal.category, features)

    def skip(self) -> Outcome:
        with self._lock:
            view = self._require_current()
            event = self.store.skip(
                view.grid_id,
                self.annotator,
                note=self.draft(view.grid_id).note,
                **self._proposal_details(view),
            )
            return self._done(view, event, f"Grid {view.grid_id} skipped: it comes back later.")

    def flag(self) -> Outcome:
        """Mark the grid as unsure, keeping the category given so far, for review."""
        with self._lock:
            view = self._require_current()
            category = view.mine.category if view.mine else None
            event = self.store.flag(
                view.grid_id,
                self.annotator,
                category,
                features=self._features_for(view),
                note=self.draft(view.grid_id).note or (view.mine.note if view.mine else ""),
                **self._proposal_details(view),
            )
            return self._done(view, event, f"Grid {view.grid_id} flagged for review.")

    def set_note(self, text: str) -> Outcome:
        """Attach a note: at once to a labelled grid (a new event), else to its next label."""
        return self._amend(lambda draft: setattr(draft, "note", text.strip()), "Note")

    def add_feature(self, feature: Feature) -> Outcome:
        """Add a feature: at once to a labelled grid (a new event), else to its next label."""
        return self._amend(lambda draft: draft.features.append(feature), "Feature")

    def _amend(self, change: Callable[[Draft], None], what: str) -> Outcome:
        with self._lock:
            view = self._require_current()
            draft = self.draft(view.grid_id)
            mine = view.mine
            if mine is None or mine.state is LabelState.SKIPPED:
                change(draft)
                return Outcome(
                    self.current(),
                    f"{what} kept: it is saved with this grid's label.",
                    self.progress(),
                )
            if not draft.features:
                draft.features = list(mine.features)
            if not draft.note:
                draft.note = mine.note
            change(draft)
            event = self.store.append_label_event(
                view.grid_id,
                self.annotator,
                mine.action,
                state=mine.state,
                category=mine.category,
                features=draft.features,
                note=draft.note,
                webster=mine.webster,
                **self._proposal_details(view),
            )
            self.drafts.pop(view.grid_id, None)
            return Outcome(
                self.current(),
                f"{what} saved on grid {view.grid_id}.",
                self.progress(),
                event=event,
            )

    def undo(self) -> Outcome:
        """Undo this session's latest action that still counts, and show its grid again."""
        with self._lock:
            undone = self.store.undo_last(self.annotator, session=self.session_id)
            if undone is None:
                return Outcome(self.current(), "Nothing to undo in this session.", self.progress())
            grid_id = undone.grid_id
            if grid_id in self.visited:
                self.position = len(self.visited) - 1 - self.visited[::-1].index(grid_id)
            else:
                self.visited.insert(max(self.position, 0), grid_id)
                self.position = max(self.position, 0)
            self._claim(grid_id)
            what = (
                undone.action if undone.category is None else f"{undone.action} {undone.category}"
            )
            return Outcome(
                self.current(), f"Undid {what} on grid {grid_id}.", self.progress(), event=undone
            )

    def adjudicate(self, grid_id: int, category: Category) -> LabelEvent:
        """Set the final label of a grid the annotators disagree on."""
        with self._lock:
            return self.store.adjudicate(grid_id, self.annotator, category, session=self.session_id)

    def disagreements(self) -> dict[int, list[LabelEvent]]:
        with self._lock:
            return self.store.disagreements()

    def adjudications(self) -> dict[int, LabelEvent]:
        with self._lock:
            return self.store.adjudications()

    # ---- helpers -------------------------------------------------------------------------

    def _require_current(self) -> GridView:
        view = self.current()
        if view is None:
            raise NotFoundError("queue", "no grid on screen: the queue is empty")
        return view

    def _features_for(self, view: GridView) -> list[Feature]:
        draft = self.drafts.get(view.grid_id)
        if draft and draft.features:
            return list(draft.features)
        return list(view.mine.features) if view.mine else []

    def _proposal_details(self, view: GridView) -> dict[str, object]:
        """What the annotator saw: recorded on every event for the blind-share analysis."""
        return {
            "proposal_shown": view.proposal_shown,
            "proposal_category": view.proposal.category if view.proposal else None,
            "session": self.session_id,
        }

    def _done(self, view: GridView, event: LabelEvent, message: str) -> Outcome:
        self.drafts.pop(view.grid_id, None)
        self.store.release(view.grid_id, self.annotator)
        next_view = self._advance()
        if next_view is None:
            message += " No open grids left."
        return Outcome(next_view, message, self.progress(), event=event, advanced=True)


def heatmap_of(scores: Sequence[Score]) -> list[list[float]] | None:
    """The region consistency map: tiled-l2's when present, else any metric's."""
    with_map = [s for s in scores if s.heatmap and s.available]
    preferred = [s for s in with_map if s.metric == HEATMAP_METRIC]
    chosen = (preferred or with_map or [None])[0]
    return chosen.heatmap if chosen is not None else None
