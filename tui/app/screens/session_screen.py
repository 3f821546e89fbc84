"""The annotate screen's body: the session's grid drawn, and its actions run in order.

Actions that change labels go through one queue: each runs in a worker thread that commits
it and draws the next grid, and only then does the screen show that grid and take the next
action. So a key typed ahead applies to the grid it was meant for, and whatever the screen
shows as done is already in the database. The keys themselves are AnnotateScreen's
(screens/annotate.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from functools import partial

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from memgrid.core.errors import MemgridError
from memgrid.tui.app.collector import IDLE_SECONDS, IdleCollector
from memgrid.tui.app.context import AppContext
from memgrid.tui.app.drawing import GridPicture
from memgrid.tui.app.keys import footer_hints
from memgrid.tui.app.messages import PictureReady, SessionUpdated, WorkFailed
from memgrid.tui.app.progress import Progress
from memgrid.tui.app.session import GridView, Outcome
from memgrid.tui.app.widgets import (
    EvidenceBar,
    KeyHints,
    LabelsPanel,
    ProgressBar,
    PromptView,
    ProposalPanel,
    ReferencePanel,
    SeedGrid,
)
from memgrid.tui.app.widgets.seed_grid import RedrawsImagesOnScreenChange
from memgrid.tui.display import shown, user_text

# How often the progress line reads the project's counts again, for the votes of others.
PROGRESS_REFRESH_SECONDS = 10.0
# An action still running after this long is waiting on the database (another process
# holds it, for up to its 30 s busy timeout): the status line says so, or a key seems lost.
SLOW_ACTION_SECONDS = 1.0
# Actions that only move or look (they store no label, note or undo): quit need not wait.
LOOKING_AGAIN = "looking for a grid"  # the retry with no grid on screen (refresh_progress)
LOOKING_ACTIONS = frozenset({"start", LOOKING_AGAIN, "back", "forward", "other model"})

SessionCall = Callable[[], Outcome]


class SessionScreen(RedrawsImagesOnScreenChange, Screen[None]):
    """Prompt, the seed grid (the main element), a foldable side panel; progress and keys.

    `heat_on` adds the heat map as one more tile of every grid until it is switched off;
    the line above the grid says that it is on. Everything the detector derived is drawn
    from the view's `marks`, which hold it back on a proposal-hidden grid until the vote.
    """

    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self.context = context
        self.session = context.session
        self.pictures = context.pictures
        self.view: GridView | None = None
        self._pending: deque[tuple[str, SessionCall]] = deque()
        self._busy = False
        self._quitting = False  # quit asked while a label was being stored
        self._actions_started = 0  # names the running action for its slow notice
        self._calls_returned = 0  # the last action whose store call returned
        self._running = ""  # the action running while _busy
        self.collector = IdleCollector()
        self.heat_on = False  # read by workers: the heat map tile is drawn only when on
        self._notes = list(context.startup_notes)  # said once, with the first grid
        self._outcomes_shown = 0  # a progress read from before the last one is not shown

    def compose(self) -> ComposeResult:
        # Three lines, as a grid's header, prompt and legend: the grid below keeps its size.
        yield PromptView("Loading…\n\n", id="prompt")
        yield EvidenceBar(id="evidence")
        with Horizontal(id="body"):
            yield SeedGrid(id="seeds")
            with VerticalScroll(id="side"):
                yield ProposalPanel(id="proposal")
                yield ReferencePanel(self.pictures.thumbnails, id="reference")
                yield LabelsPanel(id="labels")
        yield Static(id="status")
        yield ProgressBar(id="progress")
        yield KeyHints(*footer_hints(self.context.settings.keys), id="hints")

    def on_mount(self) -> None:
        # Queued now, run after the first layout, so the first grid is drawn for the area it
        # gets (a picture for a guessed size would be drawn, and with Kitty sent, twice).
        self._pending.append(("start", self.session.start))
        self.call_after_refresh(self._run_next)
        renew_every = max(1.0, self.session.options.lease_seconds / 3)
        self.set_interval(renew_every, self.renew_lease)
        self.set_interval(IDLE_SECONDS / 2, self.collector.collect_if_idle)
        self.set_interval(PROGRESS_REFRESH_SECONDS, self.refresh_progress)

    @property
    def idle(self) -> bool:
        """True when no action is running or waiting (tests and the bench wait for this)."""
        return not self._busy and not self._pending

    def saving_before_quit(self) -> bool:
        """True, and says so, while a label is still being stored (a write waiting on a
        locked database would die with the process): the app quits once it is. Asked again,
        False: the person chose to quit without it."""
        actions = [what for what, _ in self._pending]
        if self._busy:
            actions.append(self._running)
        if self._quitting or all(what in LOOKING_ACTIONS for what in actions):
            return False
        self._quitting = True
        self.query_one("#status", Static).update(
            user_text(
                f"Saving ({', '.join(a for a in actions if a not in LOOKING_ACTIONS)}) before "
                "quitting: the database is busy; q again quits without it."
            ),
            layout=False,
        )
        return True

    @property
    def seeds(self) -> SeedGrid:
        return self.query_one("#seeds", SeedGrid)

    # ---- the action queue -------------------------------------------------------------

    def submit(self, what: str, call: SessionCall) -> None:
        """Queue a session action; it runs after the ones before it have been shown."""
        self._pending.append((what, call))
        self._run_next()

    def submit_on_grid(self, what: str, call: Callable[..., Outcome]) -> None:
        """Queue a decision for the grid drawn now; with none drawn, drop it with a notice."""
        if self.view is None:
            self.query_one("#status", Static).update(
                user_text(f"{what}: no grid on screen, key ignored."), layout=False
            )
            return
        self.submit(what, partial(call, on_grid=self.view.grid_id))

    def _run_next(self) -> None:
        if self._busy or not self._pending:
            return
        self._busy = True
        what, call = self._pending.popleft()
        self._running = what
        self._actions_started += 1
        self.set_timer(SLOW_ACTION_SECONDS, partial(self._say_slow, what, self._actions_started))
        self._act(what, call)

    def _say_slow(self, what: str, action: int) -> None:
        """The running action's store call has not returned (drawing after it may be slow
        on its own, and is not the database)."""
        waiting = self._busy and action == self._actions_started > self._calls_returned
        if waiting and not self._quitting:
            self.query_one("#status", Static).update(
                user_text(f"{what}: waiting for the database (another process is writing)…"),
                layout=False,
            )

    @work(thread=True, exclusive=False, exit_on_error=False, group="session")
    def _act(self, what: str, call: SessionCall) -> None:
        # Not exclusive: a commit is never cancelled; the queue above keeps them in order.
        try:
            outcome = call()
            self._calls_returned = self._actions_started  # one action runs at a time
            picture = None
            if outcome.view is not None:
                picture = self.picture_of(outcome.view)
        except (MemgridError, OSError) as error:
            self.post_message(WorkFailed(what, str(error), ends_action=True))
            return
        self.post_message(SessionUpdated(outcome, picture, what))

    @on(SessionUpdated)
    def _show_outcome(self, message: SessionUpdated) -> None:
        if message.what == LOOKING_AGAIN and message.outcome.view is None:
            # Still nothing: only the counts change; the status line keeps what it said.
            self.query_one(ProgressBar).show(message.outcome.progress, self.session.annotator)
        else:
            self.show(message.outcome, message.picture)
        self._busy = False
        self._run_next()
        if self._quitting and self.idle:
            self.app.exit()
        if message.outcome.advanced:
            # After the frame is drawn: a prefetch thread would compete with it for the GIL.
            self.call_after_refresh(self.prefetch)

    @on(WorkFailed)
    def _show_failure(self, message: WorkFailed) -> None:
        line = Text.assemble((f"{message.what} failed: ", "bold red"), shown(message.error))
        if self._quitting and message.ends_action:
            self._quitting = False  # stay: quitting now would hide that it was not stored
            line.append(" Not quit; q quits without it.")
        if message.what != LOOKING_AGAIN:  # a retry says nothing new: the first failure stays
            self.query_one("#status", Static).update(line, layout=False)
        if message.ends_action:
            self._busy = False
            self._run_next()

    def picture_of(self, view: GridView) -> GridPicture:
        """The grid drawn for the seed area, with its marks (runs in workers)."""
        marks = view.marks
        heatmap = marks.heatmap if self.heat_on else None
        return self.pictures.grid(view.grid, marks.evidence, self.seeds.area, heatmap)

    @on(SeedGrid.Resized)
    def _redraw_for_new_size(self) -> None:
        if self.view is not None:
            self.redraw(self.view)

    @work(thread=True, exclusive=True, exit_on_error=False, group="redraw")
    def redraw(self, view: GridView) -> None:
        """Compose the picture again for the grid's new area (after a terminal resize)."""
        try:
            picture = self.picture_of(view)
        except OSError as error:
            self.post_message(WorkFailed("drawing", str(error)))
            return
        self.post_message(PictureReady(picture))

    @on(PictureReady)
    def _show_picture(self, message: PictureReady) -> None:
        if self.view is not None and message.picture.grid_id == self.view.grid_id:
            self.seeds.show(message.picture)

    def show(self, outcome: Outcome, picture: GridPicture | None) -> None:
        self.view = view = outcome.view
        notes, self._notes = self._notes, []
        status = user_text(" · ".join(filter(None, [*notes, outcome.message])))
        self.query_one("#status", Static).update(status, layout=False)
        self.query_one(ProgressBar).show(outcome.progress, self.session.annotator)
        self._outcomes_shown += 1
        if view is None:
            # The end of the queue: nothing of the last grid stays on screen.
            left = outcome.left or "No grid on screen."
            self.query_one(PromptView).clear(left)
            self.seeds.show(None, "Nothing to annotate now. r reopens earlier labels; q quits.")
            self.query_one(ProposalPanel).show_text(Text(""))
            self.query_one(ReferencePanel).show(())
            self.query_one(LabelsPanel).show_text(Text(""))
            return
        marks = view.marks
        self.query_one(PromptView).show(view.grid, marks.attribution)
        self.seeds.show(picture)
        self.show_evidence(view)
        self.query_one(ProposalPanel).show(marks.proposal, marks.scores, hidden=marks.hidden)
        self.query_one(ReferencePanel).show(marks.scores)
        self.query_one(LabelsPanel).show(
            view.mine,
            view.draft_note,
            list(view.draft_features),
            view.others,
            view.others_hidden,
            view.adjudication,
        )

    def show_evidence(self, view: GridView) -> None:
        marks = view.marks
        self.query_one(EvidenceBar).show(
            marks.evidence,
            heat_on=self.heat_on,
            has_heatmap=bool(marks.heatmap),
            hidden=marks.hidden,
            protocol=self.context.images.protocol,
        )

    # ---- background work ------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="prefetch")
    def prefetch(self) -> None:
        """Read the next grids and draw their pictures before they are asked for."""
        try:
            for view in self.session.prefetch():
                self.picture_of(view)
        except (MemgridError, OSError) as error:
            self.post_message(WorkFailed("prefetch", str(error)))

    def refresh_progress(self) -> None:
        """Other annotators' votes and undos change the project's counts between this
        annotator's actions: read them again while no action is running (an action shows
        fresh counts itself). With no grid on screen, look for one again: grids other
        annotators held free up as their leases end, and a start the database refused
        (locked) is tried again, with no key to press."""
        if not self.idle:
            return
        if self.view is None:
            self.submit(LOOKING_AGAIN, self.session.start)
        else:
            self._read_progress(self._outcomes_shown)

    @work(thread=True, exclusive=True, exit_on_error=False, group="progress")
    def _read_progress(self, outcomes_shown: int) -> None:
        try:
            progress = self.session.progress()
        except MemgridError:
            return  # the next action, or the next refresh, says what is wrong
        self.app.call_from_thread(self._show_progress, progress, outcomes_shown)

    def _show_progress(self, progress: Progress, outcomes_shown: int) -> None:
        if outcomes_shown == self._outcomes_shown:  # else an action showed newer counts
            self.query_one(ProgressBar).show(progress, self.session.annotator)

    @work(thread=True, exclusive=True, exit_on_error=False, group="lease")
    def renew_lease(self) -> None:
        try:
            held = self.session.renew_lease()
        except MemgridError as error:
            self.post_message(WorkFailed("lease renewal", str(error)))
            return
        if not held:
            self.post_message(WorkFailed("lease renewal", "another annotator now holds this grid"))
