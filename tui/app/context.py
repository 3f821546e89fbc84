"""What the screens are given: the session, the pictures, the settings, how images are drawn."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from memgrid.core.records import GridImage
from memgrid.tui.app.config import AppSettings
from memgrid.tui.app.graphics import TerminalWriter
from memgrid.tui.app.image_protocol import ProtocolChoice
from memgrid.tui.app.pictures import Pictures
from memgrid.tui.app.session import AnnotationSession
from memgrid.tui.services.project import Project
from memgrid.tui.services.terminal import ColourDepth


@dataclass(frozen=True)
class AppContext:
    """The collaborators `make_app` builds once and hands to every screen."""

    session: AnnotationSession
    pictures: Pictures
    settings: AppSettings
    image_path: Callable[[GridImage], Path]
    project: Project
    images: ProtocolChoice
    color: ColourDepth
    terminal: TerminalWriter

    @property
    def startup_notes(self) -> list[str]:
        """What the annotator should know about how the app draws, said once at start."""
        return [note for note in (self.images.note, self.color.note) if note]
