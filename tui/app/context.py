"""What the screens are given: the session, the pictures, the settings, image access."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memgrid.core.records import GridImage
from memgrid.tui.app.config import AppSettings
from memgrid.tui.app.pictures import Pictures
from memgrid.tui.app.session import AnnotationSession
from memgrid.tui.services.project import Project


@dataclass(frozen=True)
class AppContext:
    """The collaborators `make_app` builds once and hands to every screen."""

    session: AnnotationSession
    pictures: Pictures
    settings: AppSettings
    image_path: Callable[[GridImage], Path]
    image_widget: type[Any]  # textual-image widget class for the chosen protocol
    image_protocol: str
    project: Project
