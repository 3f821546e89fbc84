"""`memgrid annotate`: open the annotation app on a project.

Textual and textual-image are imported inside the command, so `import memgrid.tui.cli` stays
light; the image protocol is settled before textual-image is imported (it probes the
terminal at import time).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from memgrid.core.annotators import default_annotator
from memgrid.core.errors import ProjectError
from memgrid.core.records import QueueOrder
from memgrid.tui.display import say
from memgrid.tui.options import AnnotatorOption, ProjectOption
from memgrid.tui.services.project import open_project
from memgrid.tui.services.report import grids_from as grids_from_report
from memgrid.tui.services.terminal import requested_colour, require_terminal


def register(app: typer.Typer) -> None:
    app.command("annotate")(annotate)


def annotate(
    project: ProjectOption = None,
    annotator: AnnotatorOption = None,
    order: Annotated[
        str,
        typer.Option(
            "--order",
            help="Queue order: threshold (nearest the threshold first), score, prompt, random.",
        ),
    ] = "threshold",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random order.")] = 0,
    show_others: Annotated[
        bool,
        typer.Option(
            "--show-others",
            help="Show other annotators' labels before your own vote (off by default: "
            "seeing them first anchors yours).",
        ),
    ] = False,
    overlap: Annotated[
        int, typer.Option("--overlap", min=1, help="Annotators wanted per grid (N-way overlap).")
    ] = 1,
    image_protocol: Annotated[
        str | None,
        typer.Option(
            "--image-protocol",
            help="How seeds are drawn: auto, kitty, sixel, iterm2, halfcell "
            "(default: $MEMGRID_IMAGE_PROTOCOL, else detected).",
            show_default=False,
        ),
    ] = None,
    color: Annotated[
        str | None,
        typer.Option(
            "--color",
            help="Colours: auto (24-bit on xterm-like terminals), truecolor, 256, 16 "
            "(default: $MEMGRID_COLOR, else auto).",
            show_default=False,
        ),
    ] = None,
    grids_from: Annotated[
        Path | None,
        typer.Option(
            "--grids-from",
            metavar="REPORT.json",
            help="Only the grids a saved report lists (memgrid report --compare A B --json), "
            "in its order, labelled or not; o shows a grid's prompt under the other models.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Label seed grids: one key per category, Enter accepts the proposal, all saved at once.

    Keys are rebindable in memgrid.toml (project folder or ~/.config/memgrid/); ? lists
    them. Seeds are drawn in real pixels where the terminal has a graphics protocol (Kitty,
    Sixel, iTerm2), else as 24-bit half-cell text, over SSH too; `memgrid doctor` says what
    this terminal gets.
    """
    run_annotate(
        project,
        annotator=annotator,
        order=order,
        seed=seed,
        show_others=show_others,
        overlap=overlap,
        image_protocol=image_protocol,
        color=color,
        grids_from=grids_from,
    )


def run_annotate(
    project: Path | None,
    *,
    annotator: str | None = None,
    order: str = "threshold",
    seed: int = 0,
    show_others: bool = False,
    overlap: int = 1,
    image_protocol: str | None = None,
    color: str | None = None,
    grids_from: Path | None = None,
) -> None:
    """Open the project, read the config, settle the image protocol, run the app."""
    queue_order = QueueOrder.parse(order, "--order")
    from memgrid.tui.app import make_app
    from memgrid.tui.app.collector import tune_for_interaction
    from memgrid.tui.app.config import AppSettings, load_config
    from memgrid.tui.app.image_protocol import requested_protocol, settle_protocol
    from memgrid.tui.app.session import release_within

    depth = requested_colour(color)
    with open_project(project) as opened:
        if opened.read_only:
            raise ProjectError(
                f"{opened.root}: read-only for you (the folder is not writable): labels could "
                "not be saved; `memgrid status` and `memgrid export` still work"
            )
        annotator = (annotator or default_annotator(opened.store.annotators)).strip()
        opened.store.labels.authorize(annotator)  # refused now, not at the first label
        listed = () if grids_from is None else grids_from_report(opened, grids_from)
        config = load_config(opened.root)
        # Before textual-image is imported: it probes the terminal then, and never again.
        protocol = settle_protocol(requested_protocol(image_protocol)).protocol
        settings = AppSettings.from_config(
            config,
            annotator=annotator,
            order=queue_order,
            random_seed=seed,
            overlap=overlap,
            show_others=show_others,
            image_protocol=protocol,
            color=depth,
            grid_ids=listed,
        )
        require_terminal("memgrid annotate")
        app = make_app(opened, settings)
        tune_for_interaction()  # full garbage collections only while the annotator pauses
        try:
            app.run()
        finally:
            released = release_within(app.session)
        if not released:
            # A store call still waits on the database (up to its 30 s busy timeout) and
            # holds the session: end now rather than hang on a blank screen. What it was
            # writing is one transaction, so it is stored whole or not at all.
            say(
                "note: the database is busy (another process is writing): memgrid ended "
                "without waiting; an action still waiting was not stored, and the grid you "
                "had open frees itself when its lease runs out",
                err=True,
            )
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(app.return_code or 0)
        if app.return_code:  # the app failed (and Textual printed why): say so to the shell
            raise typer.Exit(app.return_code)
