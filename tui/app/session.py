"""One annotator's session: where they are, what each grid shows, and every label action.

Pure of Textual so it can be tested directly: the app's workers call these methods and
post the results. Every action is committed through the store before the method returns,
so whatever the screen shows as done is already in the database. What is shown comes from
AnnotatorViews (tui/app/views.py), which grid is next from AnnotationQueue (db/queue.py).
The store serialises its own statements; the session's lock keeps its own state (where the
annotator is, the drafts, the queue's read-ahead) consistent between the app's workers.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from memgrid.core.errors import NotFoundError
from memgrid.core.records import LabelEvent, QueueOrder
from memgrid.core.taxonomy import Category, Feature, LabelState
from memgrid.db.queue import AnnotationQueue
from memgrid.db.store import Store
from memgrid.tui.app.views import AnnotatorViews, GridView

RATE_WINDOW_SECONDS = 3600.0
RATE_MIN_SPAN_SECONDS = 300.0  # a rate over a few seconds would be noise


@dataclass(frozen=True)
class SessionOptions:
    """Who annotates, in which order, and how the queue is shared with others."""

    annotator: str
    order: QueueOrder = QueueOrder.THRESHOLD
    random_seed: int = 0
    overlap: int = 1
    hide_others: bool = False  # --blind: do not show other annotators' labels
    blind_share: float = 0.1  # share of grids shown without the proposal (docs/design.md, "Calibration and agreement")
    lease_seconds: float = 600.0
    prefetch: int = 4
    grid_ids: tuple[int, ...] = ()  # --grids-from: only these grids, in this order


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
    """One annotator's session: their queue (AnnotationQueue), the grids shown so far, and actions."""

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
        self.visited: list[int] = []  # grids shown in this session, oldest first
        self.position = -1  # index of the current grid in `visited`
        self.drafts: dict[int, Draft] = {}
        self._lock = threading.RLock()
        self.queue = AnnotationQueue(
            store,
            options.annotator,
            order=options.order,
            overlap=options.overlap,
            random_seed=options.random_seed,
            lease_seconds=options.lease_seconds,
            read_ahead=options.prefetch,
            clock=clock,
            only=options.grid_ids,
        )
        self.views = AnnotatorViews(
            store,
            options.annotator,
            blind_share=options.blind_share,
            hide_others=options.hide_others,
        )

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
        return self.views.view(grid_id)

    def progress(self) -> Progress:
        counts = self.store.labels.state_counts_where(annotator=self.annotator)
        now = self.clock()
        times = self.store.labels.times_where(
            annotator=self.annotator, since=now - RATE_WINDOW_SECONDS
        )
        total = self.store.grids.count
        rate = None
        if times:
            span = max(now - times[0], RATE_MIN_SPAN_SECONDS)
            rate = len(times) * 3600.0 / span
        return Progress(
            done=sum(counts[state.value] for state in LabelState if state.done),
            total=total,
            labels_per_hour=rate,
            skipped=counts["skipped"],
            flagged=counts["flagged"],
        )

    # ---- the queue -------------------------------------------------------------------

    def start(self) -> Outcome:
        """Open the session at the next open grid: after a crash, that is where work resumes."""
        with self._lock:
            view = self._advance_to_new()
            message = "" if view else "No open grids: every grid is done."
            return Outcome(view, message, self.progress(), advanced=view is not None)

    def prefetch(self) -> list[GridView]:
        """Read the next open grids ahead of time; returns their views (for thumbnails)."""
        with self._lock:
            return [self.views.read_ahead(g) for g in self.queue.ahead(self.visited)]

    def _advance_to_new(self) -> GridView | None:
        grid_id = self.queue.next_grid(self.visited, self.current_id)
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
            self.queue.claim(grid_id)
            return self.view(grid_id)
        return self._advance_to_new()

    def renew_lease(self) -> bool:
        """Extend the lease on the grid on screen; False if someone else holds it now."""
        with self._lock:
            grid_id = self.current_id
            return True if grid_id is None else self.queue.claim(grid_id)

    def release_all(self) -> None:
        """Hand back every grid this session holds (on a clean exit)."""
        with self._lock:
            self.queue.release_all(self.visited)

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
            self.queue.claim(self.visited[self.position])
            return Outcome(self.current(), "", self.progress())

    def reopen(self, grid_id: int) -> Outcome:
        """Show an earlier grid again to correct it; the next label returns to where we were."""
        with self._lock:
            self.store.grids.get(grid_id)  # raises NotFoundError for an unknown id
            if self.current_id == grid_id:
                return Outcome(self.current(), "", self.progress())
            self.visited.insert(max(self.position, 0), grid_id)
            self.position = max(self.position, 0)
            self.queue.claim(grid_id)
            return Outcome(self.current(), f"Reopened grid {grid_id}.", self.progress())

    def other_model(self) -> Outcome:
        """The prompt on screen under the next model that has a grid of it, in turn.

        Shown as a reopened grid: its label returns the annotator to where they were. This
        is how a copy is judged before and after a mitigation: by looking at both.
        """
        with self._lock:
            view = self._require_current()
            models = self.store.grids.ids_where(prompt_id=view.grid.prompt_id)
            if len(models) < 2:
                return Outcome(view, "No other model has a grid of this prompt.", self.progress())
            number = (models.index(view.grid_id) + 1) % len(models)
            outcome = self.reopen(models[number])
            message = (
                f"Grid {models[number]}: this prompt under model {number + 1} of {len(models)}."
            )
            return replace(outcome, message=message)

    # ---- label actions ---------------------------------------------------------------

    def label(self, category: Category, features: Sequence[Feature] | None = None) -> Outcome:
        """Set the primary category of the grid on screen, commit it, and move on."""
        with self._lock:
            view = self._require_current()
            draft = self.draft(view.grid_id)
            chosen = list(features) if features is not None else self._features_for(view)
            event = self.store.labels.label(
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
            event = self.store.labels.skip(
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
            event = self.store.labels.flag(
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
            event = self.store.labels.append(
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
            undone = self.store.labels.undo_last(self.annotator, session=self.session_id)
            if undone is None:
                return Outcome(self.current(), "Nothing to undo in this session.", self.progress())
            grid_id = undone.grid_id
            if grid_id in self.visited:
                self.position = len(self.visited) - 1 - self.visited[::-1].index(grid_id)
            else:
                self.visited.insert(max(self.position, 0), grid_id)
                self.position = max(self.position, 0)
            self.queue.claim(grid_id)
            what = (
                undone.action if undone.category is None else f"{undone.action} {undone.category}"
            )
            return Outcome(
                self.current(), f"Undid {what} on grid {grid_id}.", self.progress(), event=undone
            )

    def adjudicate(self, grid_id: int, category: Category) -> LabelEvent:
        """Set the final label of a grid the annotators disagree on."""
        with self._lock:
            return self.store.labels.adjudicate(
                grid_id, self.annotator, category, session=self.session_id
            )

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
        self.queue.release(view.grid_id)
        next_view = self._advance()
        if next_view is None:
            message += " No open grids left."
        return Outcome(next_view, message, self.progress(), event=event, advanced=True)
