"""The Textual app: a thin shell that opens the annotate screen and applies the keymap.

Budget: this file stays under 80 lines; behaviour lives in the screens and the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from rich.console import COLOR_SYSTEMS
from textual.app import App

from memgrid.tui.app.colors import rich_color_environment
from memgrid.tui.app.context import AppContext
from memgrid.tui.app.exits import BoundedExecutor
from memgrid.tui.app.keys import keymap
from memgrid.tui.app.screens.annotate import AnnotateScreen
from memgrid.tui.app.screens.session_screen import SessionScreen
from memgrid.tui.app.session import AnnotationSession, release_within


class MemgridApp(App[None]):
    """memgrid annotate: browse seed grids, confirm or override with one key."""

    TITLE = "memgrid annotate"
    ENABLE_COMMAND_PALETTE = False

    def __init__(self, context: AppContext) -> None:
        # Textual's Console settles its colour system when the app is built: make it the
        # depth services/terminal.py chose (24-bit unless the terminal is plainly older).
        with rich_color_environment(context.color.system):
            super().__init__()
        self.context = context
        context.pictures.color_system = COLOR_SYSTEMS.get(self.console.color_system or "")

    @property
    def session(self) -> AnnotationSession:
        return self.context.session

    def on_mount(self) -> None:
        # Thread workers run on the loop's default executor, which asyncio.run joins at the
        # end: a store call waiting on a locked database would hold the exit for up to 30 s.
        # This one waits 2 s at most; the command then ends without it (commands/annotate.py).
        asyncio.get_running_loop().set_default_executor(BoundedExecutor())
        with contextlib.suppress(NotImplementedError, AttributeError):  # no SIGHUP: Windows
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._hung_up)
        self.context.terminal.attach(self)
        self.set_keymap(keymap(self.context.settings.keys))
        self.push_screen(AnnotateScreen(self.context))

    async def action_quit(self) -> None:
        """Quit, once every label given is stored (a session screen says it is saving)."""
        if not any(
            isinstance(screen, SessionScreen) and screen.saving_before_quit()
            for screen in self.screen_stack
        ):
            self.exit()

    def _hung_up(self) -> None:
        """The terminal or SSH session closed: hand back the grid on screen (else it stays
        leased from the others for 10 minutes), then end at once. Textual's own exit would
        wait on its input thread, which reads the dead terminal in a loop, forever."""
        release_within(self.session)
        os._exit(128 + signal.SIGHUP)

    def on_unmount(self) -> None:
        kitty = self.context.pictures.kitty_images
        if kitty is not None:
            kitty.forget_all()  # the terminal keeps images until told
