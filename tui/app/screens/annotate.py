"""The annotate screen: one grid at a time, one key per decision, committed at once.

Every key in the key table (config.KEY_ACTIONS) is a Binding whose Textual action is one of
the `action_*` methods here, or the app's own quit (keys.KEY_HANDLERS). Actions that change
labels are submitted to the session queue of SessionScreen, which commits them in order.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar

from textual import events
from textual.binding import BindingType
from textual.widgets import Static

from memgrid.core.taxonomy import Category, Feature, LabelState
from memgrid.tui.app.image_protocol import images_help
from memgrid.tui.app.keys import annotate_bindings
from memgrid.tui.app.screens.adjudicate import AdjudicationScreen
from memgrid.tui.app.screens.compare import CompareScreen
from memgrid.tui.app.screens.feature import FeatureScreen
from memgrid.tui.app.screens.grid_list import GridListScreen
from memgrid.tui.app.screens.help import HelpScreen
from memgrid.tui.app.screens.history import HistoryScreen
from memgrid.tui.app.screens.note import NoteScreen
from memgrid.tui.app.screens.session_screen import SessionScreen
from memgrid.tui.app.screens.zoom import ZoomScreen
from memgrid.tui.app.views import DETECTOR_HIDDEN
from memgrid.tui.app.widgets import ReferencePanel
from memgrid.tui.display import user_text


class AnnotateScreen(SessionScreen):
    """The keys of annotation: categories, accept, skip, flag, undo and the other screens."""

    BINDINGS: ClassVar[list[BindingType]] = annotate_bindings()
    CSS_PATH = "annotate.tcss"

    def on_key(self, _: events.Key) -> None:
        # Keys bubble here before the app runs their binding: a full garbage collection
        # waits until they stop coming.
        self.collector.note_activity()

    # ---- actions on the session, committed in order ----------------------------------------

    # A decision key carries the grid drawn when it was pressed (SessionScreen.submit_on_grid):
    # typed ahead, it is dropped rather than applied to a grid nobody has seen.

    def action_label(self, category: str) -> None:
        self.submit_on_grid(category, partial(self.session.label, Category(category)))

    def action_accept(self) -> None:
        self.submit_on_grid("accept", self.session.accept_proposal)

    def action_skip(self) -> None:
        self.submit_on_grid("skip", self.session.skip)

    def action_flag(self) -> None:
        """Ask why, then flag the grid that was on screen when `f` was pressed."""
        if self.view is None:
            self.submit_on_grid("flag", self.session.flag)  # says no grid is on screen
            return
        grid_id = self.view.grid_id

        def save(reason: str | None) -> None:
            if reason is not None:
                self.submit("flag", partial(self.session.flag, reason, on_grid=grid_id))

        title = f"Why flag grid {grid_id}? (Enter flags it for review, Escape cancels)"
        self.app.push_screen(NoteScreen("", title), save)

    def action_undo(self) -> None:
        self.submit("undo", self.session.undo)

    def action_other_model(self) -> None:
        self.submit("other model", self.session.other_model)

    def action_back(self) -> None:
        self.submit("back", self.session.back)

    def action_forward(self) -> None:
        self.submit("forward", self.session.forward)

    # ---- views and other screens -------------------------------------------------------------

    def action_heatmap(self) -> None:
        self.heat_on = not self.heat_on
        if self.view is not None:
            self.show_evidence(self.view)
            self.redraw(self.view)
            if self.heat_on:
                self.say_if_hidden()

    def action_panel(self) -> None:
        # The grid grows into the space: its Resized message redraws it for the new area.
        self.toggle_class("-folded")

    def action_reference(self) -> None:
        if self.say_if_hidden():  # the match waits for the vote too
            return
        if not self.query_one(ReferencePanel).toggle_picture() and self.view is not None:
            self.query_one("#status", Static).update(
                user_text("No training image matched this grid: nothing to show."), layout=False
            )

    def say_if_hidden(self) -> bool:
        """On a grid whose detector marks wait for the vote, say so in the status line (a key
        asked for one of them); True if it did."""
        if self.view is None or not self.view.detector_hidden:
            return False
        self.query_one("#status", Static).update(user_text(DETECTOR_HIDDEN), layout=False)
        return True

    def action_note(self) -> None:
        if self.view is None:
            return
        current = self.view.draft_note or (self.view.mine.note if self.view.mine else "")

        def save(text: str | None) -> None:
            if text is not None:
                self.submit("note", partial(self.session.set_note, text))

        self.app.push_screen(NoteScreen(current), save)

    def action_feature(self) -> None:
        if self.view is None:
            return

        def save(feature: Feature | None) -> None:
            if feature is not None:
                self.submit("feature", partial(self.session.add_feature, feature))

        if self.say_if_hidden():
            screen = FeatureScreen(None, absent=DETECTOR_HIDDEN)
        else:
            screen = FeatureScreen(self.view.marks.heatmap)
        self.app.push_screen(screen, save)

    def action_zoom(self) -> None:
        if self.view is not None:
            self.app.push_screen(ZoomScreen(self.view.grid, self.pictures))

    def action_compare(self) -> None:
        """Two seeds at full size: the first two of the largest near-identical group, if any
        is shown (a proposal-hidden grid opens on its first two seeds until the vote)."""
        if self.view is None:
            return
        groups = self.view.marks.evidence.groups
        first, second = groups[0][:2] if groups else (0, 1)
        self.app.push_screen(CompareScreen(self.view.grid, self.pictures, first, second))

    def action_history(self) -> None:
        self.app.push_screen(HistoryScreen(self.session), self._reopen)

    def action_skipped(self) -> None:
        self._open_list(LabelState.SKIPPED)

    def action_flagged(self) -> None:
        self._open_list(LabelState.FLAGGED)

    def _open_list(self, state: LabelState) -> None:
        self.app.push_screen(GridListScreen(self.session, state), self._reopen)

    def _reopen(self, grid_id: int | None) -> None:
        if grid_id is not None:
            self.submit("reopen", partial(self.session.reopen, grid_id))

    def action_adjudicate(self) -> None:
        self.app.push_screen(AdjudicationScreen(self.session, self.pictures))

    def action_calibration(self) -> None:
        from memgrid.tui.app.screens.calibration import CalibrationScreen

        def after(_: object = None) -> None:
            # An accepted run changes the proposals: read them again for the next grids.
            self.session.views.forget()

        self.app.push_screen(CalibrationScreen(self.context.project), after)

    def action_help(self) -> None:
        self.app.push_screen(
            HelpScreen(self.context.settings.keys, images_help(self.context.images))
        )
