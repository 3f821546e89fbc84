"""The annotation app (docs/design.md, "The annotation app"). `make_app` is the one way to build it.

Nothing is imported eagerly here, so `import memgrid.tui.app` stays light; the CLI and the tests
both call `make_app`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memgrid.tui.app.app import MemgridApp
    from memgrid.tui.app.config import AppSettings
    from memgrid.tui.services.project import Project


def make_app(
    project: Project,
    settings: AppSettings,
    *,
    clock: Callable[[], float] = time.time,
    session_id: str | None = None,
) -> MemgridApp:
    """Build the app on an open project; `clock` and `session_id` are for tests."""
    from memgrid.tui.app.app import MemgridApp
    from memgrid.tui.app.context import AppContext
    from memgrid.tui.app.image_protocol import load_image_widget
    from memgrid.tui.app.pictures import Pictures
    from memgrid.tui.app.session import AnnotationSession
    from memgrid.tui.app.thumbnails import ThumbnailCache

    protocol, image_widget = load_image_widget(settings.image_protocol)
    session = AnnotationSession(
        project.store, settings.session_options(), clock=clock, session_id=session_id
    )
    thumbnails = ThumbnailCache(
        project.thumbs_dir, project.image_path, shared=project.images.shared
    )
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
