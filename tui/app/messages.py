"""App-wide messages: what the workers report back to the screens that own the widgets."""

from __future__ import annotations

from textual.message import Message

from memgrid.tui.app.drawing import GridPicture
from memgrid.tui.app.session import Outcome


class SessionUpdated(Message):
    """An action is committed (or a move made): the grid to show now, drawn and ready."""

    def __init__(self, outcome: Outcome, picture: GridPicture | None, what: str = "") -> None:
        super().__init__()
        self.outcome = outcome
        self.picture = picture
        self.what = what  # the action's name


class WorkFailed(Message):
    """A worker's store or file operation failed; `what` names the action for the status line.

    `ends_action` is True when it was a queued action, so the next queued key may run.
    """

    def __init__(self, what: str, error: str, *, ends_action: bool = False) -> None:
        super().__init__()
        self.what = what
        self.error = error
        self.ends_action = ends_action


class PictureReady(Message):
    """A grid's picture, composed again (for a new size) off the UI thread."""

    def __init__(self, picture: GridPicture) -> None:
        super().__init__()
        self.picture = picture
