"""One annotator's session: where they are, what each grid shows, and every label action.

Pure of Textual so it can be tested directly: the app's workers call these methods and
post the results. Every action is committed through the store before the method returns,
so whatever the screen shows as done is already in the database. What is shown comes from
AnnotatorViews (tui/app/views.py), which grid is next from AnnotationQueue (db/queue.py).
The store serialises its own statements; the session's lock keeps its own state (where the
annotator is, the queue's read-ahead) consistent between the app's workers.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from memgrid.core.errors import NotFoundError, VoteRefused
from memgrid.core.records import LabelEvent, QueueOrder
from memgrid.core.taxonomy import Category, Feature, most_serious
from memgrid.db.overlap import OverlapRule
from memgrid.db.queue import AnnotationQueue
from memgrid.db.store import Store
from memgrid.tui.app.progress import Progress, describe_what_is_left, read_progress
from memgrid.tui.app.views import AnnotatorViews, GridView

HISTORY_GRIDS = 200  # earlier grids `back` reaches at the start of a session


@dataclass(frozen=True)
class SessionOptions:
    """Who annotates, in which order, and how the queue is shared with others."""

    annotator: str
    order: QueueOrder = QueueOrder.THRESHOLD
    random_seed: int = 0
    overlap: int = 1
    # --show-others: others' labels before this annotator's own vote (off: no anchoring)
    show_others: bool = False
    blind_share: float = 0.1  # share of grids shown without the proposal (docs/design.md, "Calibration and agreement")
    lease_seconds: float = 600.0
    prefetch: int = 4
    grid_ids: tuple[int, ...] = ()  # --grids-from: only these grids, in this order


@dataclass(frozen=True)
class Outcome:
    """What an action did: the grid to show now, a line for the status bar, the new progress."""

    view: GridView | None
    message: str
    progress: Progress
    event: LabelEvent | None = None
    advanced: bool = False
    left: str = ""  # with no grid to show: what is left, and for whom


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
        self._lock = threading.RLock()
        self.contradictions = ContradictionCheck()
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
            show_others=options.show_others,
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

    def view(self, grid_id: int) -> GridView:
        return self.views.view(grid_id)

    def progress(self) -> Progress:
        return read_progress(self.queue)

    # ---- the queue -------------------------------------------------------------------

    def start(self) -> Outcome:
        """Open the session at the next open grid: after a crash, that is where work resumes."""
        with self._lock:
            # Back and undo reach earlier runs: the history is the database's, not this
            # process's. A listed queue (--grids-from) shows its grids whatever was done.
            if not self.queue.only:
                earlier = self.store.labels.votes_where(
                    annotator=self.annotator, newest_first=True, limit=HISTORY_GRIDS
                )
                self.visited = [vote.grid_id for vote in reversed(earlier)]
            view = self._advance_to_new()
            left = "" if view else describe_what_is_left(self.queue, self.progress())
            return Outcome(view, left, self.progress(), advanced=view is not None, left=left)

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

    def label(
        self,
        category: Category,
        features: Sequence[Feature] | None = None,
        *,
        on_grid: int | None = None,
    ) -> Outcome:
        """Set the primary category of the grid on screen, commit it, and move on.

        `on_grid` is the grid drawn when the key was pressed: a key meant for another grid
        is dropped, never applied to the grid that replaced it.
        """
        with self._lock:
            view = self._require_current()
            if (stale := self._stale(on_grid)) is not None:
                return stale
            chosen = list(features) if features is not None else features_for(view)
            proposal = view.visible_proposal
            if features is None and not chosen and proposal and proposal.category is category:
                chosen = list(proposal.features)  # the proposal's own key is Enter
            kept = self.contradictions.features_kept(view.grid_id, category, chosen)
            if kept is None:
                worst = most_serious([f.category for f in chosen])
                # One status line, whole at 80 columns: the warning is the point.
                return Outcome(
                    view,
                    f"{category.title.capitalize()} drops your {worst.title} feature: "
                    "same key to confirm.",
                    self.progress(),
                )
            try:
                event = self.store.labels.label(
                    view.grid_id,
                    self.annotator,
                    category,
                    features=kept,
                    note=note_for(view),
                    **self._write_details(view),
                )
            except VoteRefused as refused:
                return self._move_on(view, refusal(view, category.value, refused))
            return self._move_on(
                view, event=event, message=f"Grid {view.grid_id}: {category.title}."
            )

    def accept_proposal(self, *, on_grid: int | None = None) -> Outcome:
        """Take the proposal's category and features as this annotator's label."""
        with self._lock:
            view = self._require_current()
            if (stale := self._stale(on_grid)) is not None:
                return stale
            proposal = view.visible_proposal
            if proposal is None:
                if view.proposal is None:
                    why = "not computed"
                elif view.detector_hidden:
                    why = "hidden until you vote (proposal-hidden share)"
                else:
                    why = "not taken on a proposal-hidden grid; type its category's key"
                return Outcome(view, f"No proposal to accept: {why}.", self.progress())
            features = [*proposal.features, *view.draft_features]
            return self.label(proposal.category, features)

    def skip(self, *, on_grid: int | None = None) -> Outcome:
        with self._lock:
            view = self._require_current()
            if (stale := self._stale(on_grid)) is not None:
                return stale
            event = self.store.labels.skip(
                view.grid_id,
                self.annotator,
                note=view.draft_note,
                **self._write_details(view),
            )
            return self._move_on(
                view, event=event, message=f"Grid {view.grid_id} skipped: it comes back later."
            )

    def flag(self, reason: str, *, on_grid: int | None = None) -> Outcome:
        """Mark the grid as unsure for review, saying why; the category given so far stays.

        The reason is the flag's note; the flag stays on the grid (status, export) until a
        verdict resolves it (core.agreement.grid_state).
        """
        with self._lock:
            view = self._require_current()
            if (stale := self._stale(on_grid)) is not None:
                return stale
            if not reason.strip():
                return Outcome(view, "A flag needs a reason: nothing stored.", self.progress())
            category = view.mine.category if view.mine else None
            try:
                event = self.store.labels.flag(
                    view.grid_id,
                    self.annotator,
                    category,
                    features=features_for(view),
                    note=reason.strip(),
                    **self._write_details(view),
                )
            except VoteRefused as refused:
                return self._move_on(view, refusal(view, "flag", refused))
            return self._move_on(
                view, event=event, message=f"Grid {view.grid_id} flagged for review."
            )

    def set_note(self, text: str) -> Outcome:
        """Attach a note: to a labelled grid as a new vote, else as a draft; committed at once."""
        return self._amend(text.strip(), (), "Note")

    def add_feature(self, feature: Feature) -> Outcome:
        """Add a feature: to a labelled grid as a new vote, else as a draft; committed at once."""
        return self._amend(None, (feature,), "Feature")

    def _amend(self, note: str | None, more: Sequence[Feature], what: str) -> Outcome:
        """One committed event with the note replaced (None: kept) and features added.

        A labelled or flagged grid gets a new vote saying the same with the change; any
        other grid a draft, which its next label or flag takes over. Undo covers both.
        """
        with self._lock:
            view = self._require_current()
            mine = view.mine
            features = [*features_for(view), *more]
            note = note_for(view) if note is None else note
            if mine is None or mine.state is None or not mine.state.done:
                event = self.store.labels.draft(
                    view.grid_id,
                    self.annotator,
                    note=note,
                    features=features,
                    session=self.session_id,
                )
                message = f"{what} saved as a draft: the label on grid {view.grid_id} takes it."
            else:
                try:
                    event = self.store.labels.append(
                        view.grid_id,
                        self.annotator,
                        mine.action,
                        state=mine.state,
                        category=mine.category,
                        features=features,
                        note=note,
                        webster=mine.webster,
                        **self._write_details(view),
                    )
                except VoteRefused as refused:
                    return Outcome(view, f"{what} not stored: {refused}.", self.progress())
                message = f"{what} saved on grid {view.grid_id}."
            return Outcome(self.current(), message, self.progress(), event=event)

    def undo(self) -> Outcome:
        """Undo the annotator's latest action that still counts (in this run or an earlier
        one: the history is the database's), and show its grid again."""
        with self._lock:
            try:
                undone = self.store.labels.undo_last(
                    self.annotator, rule=self._rule(), recorded_session=self.session_id
                )
            except VoteRefused as refused:
                return Outcome(self.current(), f"Undo refused: {refused}.", self.progress())
            if undone is None:
                return Outcome(self.current(), "Nothing to undo.", self.progress())
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

    def adjudicate(self, grid_id: int, category: Category, note: str = "") -> LabelEvent:
        """Set the final label of a grid under review (a disagreement, a flag, a skip); the
        note records what was reviewed. It resolves the grid's open flags."""
        with self._lock:
            return self.store.labels.adjudicate(
                grid_id, self.annotator, category, note=note, session=self.session_id
            )

    # ---- helpers -------------------------------------------------------------------------

    def _require_current(self) -> GridView:
        view = self.current()
        if view is None:
            raise NotFoundError("queue", "no grid on screen: the queue is empty")
        return view

    def _rule(self) -> OverlapRule:
        return OverlapRule(self.options.overlap, self.clock())

    def _write_details(self, view: GridView) -> dict[str, object]:
        """What every write carries: the overlap rule it is checked against, and what the
        annotator saw (recorded for the blind-share analysis)."""
        return {
            # A vote changed (or cast again after an undo) once the marks came back was
            # cast having seen them.
            "proposal_shown": view.marks_seen,
            "proposal_category": view.proposal.category if view.proposal else None,
            "session": self.session_id,
            "rule": self._rule(),
        }

    def _stale(self, on_grid: int | None) -> Outcome | None:
        """A refusal when the key was pressed on a grid that is no longer the one on screen."""
        if on_grid is None or on_grid == self.current_id:
            return None
        return Outcome(
            self.current(),
            f"Key pressed on grid {on_grid} dropped: grid {self.current_id} is on screen now.",
            self.progress(),
        )

    def _move_on(self, view: GridView, message: str, event: LabelEvent | None = None) -> Outcome:
        self.queue.release(view.grid_id)
        next_view = self._advance()
        left = ""
        if next_view is None:
            message += " No open grids left."
            left = describe_what_is_left(self.queue, self.progress())
        return Outcome(next_view, message, self.progress(), event=event, advanced=True, left=left)


def features_for(view: GridView) -> list[Feature]:
    """The features a new event on the grid carries: the draft's, else the vote's."""
    if view.draft is not None:
        return list(view.draft.features)
    return list(view.mine.features) if view.mine else []


def note_for(view: GridView) -> str:
    if view.draft is not None:
        return view.draft.note
    return view.mine.note if view.mine else ""


def refusal(view: GridView, what: str, refused: VoteRefused) -> str:
    """The store refused the vote (db/overlap.py): why, in one line; the session moves on."""
    return f"Grid {view.grid_id}: your {what} was not stored: {refused}; moved on."


class ContradictionCheck:
    """The primary category is the most serious feature's (core.taxonomy.most_serious): a
    label key less serious than a feature is asked about once; pressed again on the same
    grid, it drops the features more serious than it."""

    def __init__(self) -> None:
        self.asked: tuple[int, Category] | None = None  # the key asked about, and its grid

    def features_kept(
        self, grid_id: int, category: Category, features: list[Feature]
    ) -> list[Feature] | None:
        """The features a label of `category` keeps; None when it must ask first."""
        serious = [f for f in features if f.category.severity > category.severity]
        if not serious:
            self.asked = None
            return features
        if self.asked != (grid_id, category):
            self.asked = (grid_id, category)
            return None
        self.asked = None
        return [f for f in features if f not in serious]


def release_within(session: AnnotationSession, seconds: float = 2.0) -> bool:
    """`session.release_all()`, unless the database (or an action waiting on it) keeps it
    longer than `seconds`: False then, and the grids free themselves as their leases run out."""
    releasing = threading.Thread(target=session.release_all, daemon=True)
    releasing.start()
    releasing.join(seconds)
    return not releasing.is_alive()
