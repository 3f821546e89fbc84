"""The annotation app (docs/design.md, "The annotation app"). `make_app` is the one way to build it.

Nothing is imported eagerly here, so `import memgrid.tui.app` stays light; the CLI and the tests
both call `make_app`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
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
    from memgrid.tui.app.drawing import KITTY, Painter
    from memgrid.tui.app.graphics import KittyImages, TerminalWriter
    from memgrid.tui.app.image_protocol import settle_protocol
    from memgrid.tui.app.pictures import Pictures
    from memgrid.tui.app.session import AnnotationSession
    from memgrid.tui.app.thumbnails import ThumbnailCache
    from memgrid.tui.services.terminal import colour_depth

    images = settle_protocol(settings.image_protocol)
    color = colour_depth(requested=settings.color)
    if images.protocol == KITTY and not color.truecolor:
        # Kitty's placeholders name their image by a 24-bit colour; kitty has it.
        color = replace(color, system="truecolor", because="Kitty images", monochrome=False)
    terminal = TerminalWriter(in_tmux=images.in_tmux)
    kitty = KittyImages(terminal) if images.protocol == KITTY else None
    session = AnnotationSession(
        project.store, settings.session_options(), clock=clock, session_id=session_id
    )
    pictures = Pictures(
        ThumbnailCache(project.thumbs_dir, project.image_path, shared=project.images.shared),
        Painter(images.protocol, images.cell_pixels, kitty),
        max_cells=settings.annotate.cell_budget,
        kitty_images=kitty,
    )
    context = AppContext(
        session=session,
        pictures=pictures,
        settings=settings,
        image_path=project.image_path,
        project=project,
        images=images,
        color=color,
        terminal=terminal,
    )
    return MemgridApp(context)


__all__ = ["make_app"]
