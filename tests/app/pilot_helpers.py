"""Driving the app in tests: wait for workers instead of sleeping, read what is on screen."""

from __future__ import annotations

import contextlib

from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import WorkerCancelled, WorkerState

from memgrid.tui.app.screens.adjudicate import AdjudicationScreen
from memgrid.tui.app.screens.annotate import AnnotateScreen

SIZE = (160, 50)


async def settle(pilot: Pilot[None]) -> None:
    """Wait until no worker runs and the annotate screen has no queued action."""
    app = pilot.app
    for _ in range(200):
        # An exclusive worker (prefetch) may be replaced by a newer one: wait for that one.
        with contextlib.suppress(WorkerCancelled):
            await app.workers.wait_for_complete()
        await pilot.pause()
        running = [w for w in app.workers if w.state in (WorkerState.PENDING, WorkerState.RUNNING)]
        annotate = annotate_screen(pilot)
        if not running and (annotate is None or annotate.idle):
            return
    raise AssertionError("the app did not settle")


async def press(pilot: Pilot[None], *keys: str) -> None:
    """Press keys one by one, letting each one's work finish first."""
    for key in keys:
        await pilot.press(key)
        await settle(pilot)


def annotate_screen(pilot: Pilot[None]) -> AnnotateScreen | None:
    found = [s for s in pilot.app.screen_stack if isinstance(s, AnnotateScreen)]
    return found[0] if found else None


def status_text(pilot: Pilot[None]) -> str:
    screen = annotate_screen(pilot)
    assert screen is not None
    return str(screen.query_one("#status", Static).render())


def current_grid(pilot: Pilot[None]) -> int | None:
    screen = annotate_screen(pilot)
    assert screen is not None
    return None if screen.view is None else screen.view.grid_id


async def reopen(pilot: Pilot[None], grid_id: int) -> AnnotateScreen:
    """Show an earlier grid on the annotate screen, as `r` does, and wait until it is drawn."""
    screen = annotate_screen(pilot)
    assert screen is not None
    session = screen.session
    screen.submit("reopen", lambda: session.reopen(grid_id))
    await settle(pilot)
    return screen


async def open_review(pilot: Pilot[None]) -> AdjudicationScreen:
    """Open the review queue (`A`) once the app has settled, and wait until it is listed."""
    await settle(pilot)
    await press(pilot, "A")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, AdjudicationScreen)
    return screen


def view_title(screen: Screen) -> str:
    """The title line of a zoom or compare screen."""
    return str(screen.query_one("#view-title", Static).render())
