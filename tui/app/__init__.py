"""The annotation app (design section 5). `make_app` is the one way to build it.

Nothing is imported eagerly here, so `import tui.app` stays light; the CLI and the tests
both call `make_app`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui.app.app import MemgridApp
    from tui.app.config import AppSettings
    from tui.project import Project


def make_app(
    project: Project,
    settings: AppSettings,
    *,
    clock: Callable[[], float] = time.time,
    session_id: str | None = None,
) -> MemgridApp:
    """Build the app on an open project; `clock` and `session_id` are for tests."""
    from tui.app.app import MemgridApp
    from tui.app.context import AppContext
    from tui.app.image_protocol import load_image_widget
    from tui.app.pictures import Pictures
    from tui.app.session import AnnotationSession
    from tui.app.thumbnails import ThumbnailCache

    protocol, image_widget = load_image_widget(settings.image_protocol)
    session = AnnotationSession(
        project.store, settings.session_options(), clock=clock, session_id=session_id
    )
    thumbnails = ThumbnailCache(project.thumbs_dir, project.image_path)
    context = AppContext(
        session=session,
        pictures=Pictures(thumbnails, settings.annotate.cell_budget),
        settings=settings,
        image_path=project.image_path,
        image_widget=image_widget,
        image_protocol=protocol,
        project=project,
    )
    return MemgridApp(context)


__all__ = ["make_app"]
