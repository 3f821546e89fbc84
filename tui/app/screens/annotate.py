"""The annotate screen: one grid at a time, one key per decision, committed at once.

Keys that change labels go through one queue: each runs in a worker thread that commits
it and draws the next grid, and only then does the screen show that grid and take the next
key. So a key typed ahead applies to the grid it was meant for, and whatever the screen
shows as done is already in the database.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable
from functools import partial

from memgrid.core.errors import MemgridError
from memgrid.core.taxonomy import Category, Feature, LabelState
from memgrid.tui.app.collector import IDLE_SECONDS, IdleCollector
from memgrid.tui.app.context import AppContext
from memgrid.tui.app.keys import annotate_bindings
from memgrid.tui.app.messages import PictureReady, SessionUpdated, WorkFailed
from memgrid.tui.app.screens.adjudicate import AdjudicationScreen
from memgrid.tui.app.screens.feature import FeatureScreen
from memgrid.tui.app.screens.grid_list import GridListScreen
from memgrid.tui.app.screens.help import HelpScreen
from memgrid.tui.app.screens.history import HistoryScreen
from memgrid.tui.app.screens.note import NoteScreen
from memgrid.tui.app.screens.zoom import ZoomScreen
from memgrid.tui.app.session import AnnotationSession, GridView, Outcome
from memgrid.tui.app.widgets import (
    HeatMap,
    LabelsPanel,
    ProgressBar,
    PromptView,
    ProposalPanel,
    SeedGrid,
)
from memgrid.tui.app.widgets.seed_grid import GridPicture
from memgrid.tui.display import shown, user_text
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

SessionCall = Callable[[], Outcome]

# Keys that act on the session; each is committed (or applied) by a worker, in order.
SESSION_ACTIONS: dict[str, Callable[[AnnotationSession], Outcome]] = {
    "explicit": lambda s: s.label(Category.EXPLICIT),
    "implicit": lambda s: s.label(Category.IMPLICIT),
    "unintended": lambda s: s.label(Category.UNINTENDED),
    "none": lambda s: s.label(Category.NONE),
    "accept": AnnotationSession.accept_proposal,
    "skip": AnnotationSession.skip,
    "flag": AnnotationSession.flag,
    "undo": AnnotationSession.undo,
    "back": AnnotationSession.back,
    "forward": AnnotationSession.forward,
}


class AnnotateScreen(Screen[None]):
    """Prompt, seed grid, proposal and labels; progress and keys along the bottom."""

    BINDINGS = annotate_bindings()

    DEFAULT_CSS = """
    AnnotateScreen { layout: vertical; }
    #body { height: 1fr; }
    #side { width: 54; border-left: solid $primary-darken-2; overflow-y: auto; }
    #heatmap-title { margin-top: 1; padding: 0 1; text-style: bold; display: none; }
    #heatmap { margin: 0 1; display: none; }
    AnnotateScreen.-heatmap #heatmap-title, AnnotateScreen.-heatmap #heatmap { display: block; }
    #status { height: 1; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self.context = context
        self.session = context.session
        self.pictures = context.pictures
        self.view: GridView | None = None
        self._pending: deque[tuple[str, SessionCall]] = deque()
        self._busy = False
        self.collector = IdleCollector()

    def compose(self) -> ComposeResult:
        yield PromptView("Loading…", id="prompt")
        with Horizontal(id="body"):
            yield SeedGrid(id="seeds")
            with Vertical(id="side"):
                yield ProposalPanel(id="proposal")
                yield LabelsPanel(id="labels")
                yield Static("Heat map: share of seed pairs alike per tile", id="heatmap-title")
                yield HeatMap(id="heatmap")
        yield Static(id="status")
        yield ProgressBar(id="progress")
        yield Footer()

    def on_mount(self) -> None:
        self.submit("start", self.session.start)
        renew_every = max(1.0, self.session.options.lease_seconds / 3)
        self.set_interval(renew_every, self.renew_lease)
        self.set_interval(IDLE_SECONDS / 2, self.collector.collect_if_idle)

    @property
    def idle(self) -> bool:
        """True when no action is running or waiting (tests and the bench wait for this)."""
        return not self._busy and not self._pending

    @property
    def seeds(self) -> SeedGrid:
        return self.query_one("#seeds", SeedGrid)

    # ---- the action queue -------------------------------------------------------------

    def submit(self, what: str, call: SessionCall) -> None:
        """Queue a session action; it runs after the ones before it have been shown."""
        self._pending.append((what, call))
        self._run_next()

    def _run_next(self) -> None:
        if self._busy or not self._pending:
            return
        self._busy = True
        what, call = self._pending.popleft()
        self._act(what, call)

    @work(thread=True, exclusive=False, exit_on_error=False, group="session")
    def _act(self, what: str, call: SessionCall) -> None:
        # Not exclusive: a commit is never cancelled; the queue above keeps them in order.
        try:
            outcome = call()
            picture = None
            if outcome.view is not None:
                picture = self.picture_of(outcome.view)
        except (MemgridError, sqlite3.Error, OSError) as error:
            self.post_message(WorkFailed(what, str(error), ends_action=True))
            return
        self.post_message(SessionUpdated(outcome, picture))

    @on(SessionUpdated)
    def _show_outcome(self, message: SessionUpdated) -> None:
        self.show(message.outcome, message.picture)
        self._busy = False
        self._run_next()
        if message.outcome.advanced:
            # After the frame is drawn: a prefetch thread would compete with it for the GIL.
            self.call_after_refresh(self.prefetch)

    @on(WorkFailed)
    def _show_failure(self, message: WorkFailed) -> None:
        line = Text.assemble((f"{message.what} failed: ", "bold red"), shown(message.error))
        self.query_one("#status", Static).update(line, layout=False)
        if message.ends_action:
            self._busy = False
            self._run_next()

    def picture_of(self, view: GridView) -> GridPicture:
        """The grid drawn for the seed area, with the heat map laid over only when it is on.

        Runs in workers; the overlay is drawn on demand since it doubles the work.
        """
        heatmap = view.heatmap if self.seeds.overlay else None
        return self.pictures.picture(view.grid, heatmap, self.seeds.area)

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
        self.query_one("#status", Static).update(user_text(outcome.message), layout=False)
        self.query_one(ProgressBar).show(outcome.progress, self.session.annotator)
        if view is None:
            self.query_one(PromptView).clear("No open grids left: every grid is done for you.")
            self.seeds.show(None, "Nothing to annotate. r reopens earlier labels; q quits.")
            return
        draft = self.session.drafts.get(view.grid_id)
        self.query_one(PromptView).show(view.grid, view.attribution)
        self.seeds.show(picture)
        self.query_one(ProposalPanel).show(view.proposal, view.proposal_shown, view.scores)
        self.query_one(LabelsPanel).show(
            view.mine,
            draft.note if draft else "",
            draft.features if draft else [],
            view.others,
            view.others_hidden,
            view.adjudication,
        )
        self.query_one(HeatMap).show(view.heatmap)

    # ---- background work ------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="prefetch")
    def prefetch(self) -> None:
        """Read the next grids and draw their pictures before they are asked for."""
        try:
            for view in self.session.prefetch():
                self.picture_of(view)
        except (MemgridError, sqlite3.Error, OSError) as error:
            self.post_message(WorkFailed("prefetch", str(error)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="lease")
    def renew_lease(self) -> None:
        try:
            held = self.session.renew_lease()
        except sqlite3.Error as error:
            self.post_message(WorkFailed("lease renewal", str(error)))
            return
        if not held:
            self.post_message(WorkFailed("lease renewal", "another annotator now holds this grid"))

    # ---- keys -------------------------------------------------------------------------------

    def action_key(self, action: str) -> None:
        self.collector.note_activity()
        if action in SESSION_ACTIONS:
            self.submit(action, partial(SESSION_ACTIONS[action], self.session))
            return
        getattr(self, f"open_{action}")()

    def open_heatmap(self) -> None:
        self.toggle_class("-heatmap")
        self.seeds.overlay = self.has_class("-heatmap")
        picture, view = self.seeds.picture, self.view
        missing_overlay = picture is not None and picture.overlaid is None
        if self.seeds.overlay and view is not None and view.heatmap and missing_overlay:
            self.redraw(view)

    def open_note(self) -> None:
        if self.view is None:
            return
        draft = self.session.drafts.get(self.view.grid_id)
        current = (draft.note if draft else "") or (self.view.mine.note if self.view.mine else "")

        def save(text: str | None) -> None:
            if text is not None:
                self.submit("note", partial(self.session.set_note, text))

        self.app.push_screen(NoteScreen(current), save)

    def open_feature(self) -> None:
        if self.view is None:
            return

        def save(feature: Feature | None) -> None:
            if feature is not None:
                self.submit("feature", partial(self.session.add_feature, feature))

        self.app.push_screen(FeatureScreen(self.view.heatmap), save)

    def open_zoom(self) -> None:
        if self.view is not None:
            context = self.context
            self.app.push_screen(
                ZoomScreen(
                    self.view.grid,
                    context.image_path,
                    context.image_widget,
                    context.image_protocol,
                )
            )

    def open_history(self) -> None:
        self.app.push_screen(HistoryScreen(self.session), self._reopen)

    def open_skipped(self) -> None:
        self._open_list(LabelState.SKIPPED)

    def open_flagged(self) -> None:
        self._open_list(LabelState.FLAGGED)

    def _open_list(self, state: LabelState) -> None:
        self.app.push_screen(GridListScreen(self.session, state), self._reopen)

    def _reopen(self, grid_id: int | None) -> None:
        if grid_id is not None:
            self.submit("reopen", partial(self.session.reopen, grid_id))

    def open_adjudicate(self) -> None:
        self.app.push_screen(AdjudicationScreen(self.session, self.pictures))

    def open_calibration(self) -> None:
        from memgrid.tui.app.screens.calibration import CalibrationScreen

        def after(_: object = None) -> None:
            # An accepted run changes the proposals: read them again for the next grids.
            self.session.forget_views()

        self.app.push_screen(CalibrationScreen(self.context.project), after)

    def open_help(self) -> None:
        self.app.push_screen(HelpScreen(self.context.settings.keys))

    def open_quit(self) -> None:
        self.app.exit()
