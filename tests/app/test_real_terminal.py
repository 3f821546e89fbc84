"""The app in a real pseudo-terminal: labels survive SIGKILL, work resumes, torch stays out."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from memgrid.core.taxonomy import Category
from memgrid.tui.services.project import open_project
from tests.app.pty_terminal import PtyTerminal, visible_text
from tests.conftest import open_grids, vote_of

ROOT = Path(__file__).resolve().parents[2]
GRID_HEADER = re.compile(rb"grid (\d+)  ")
TITLES = {c.title: c for c in Category}
ACKNOWLEDGED = re.compile(
    rb"Grid (\d+): (" + b"|".join(re.escape(t.encode()) for t in TITLES) + rb")\."
)


def start_app(project: Path, annotator: str) -> PtyTerminal:
    env = {
        **os.environ,
        "TERM": "xterm-256color",
        "MEMGRID_IMAGE_PROTOCOL": "halfcell",
    }
    memgrid = Path(sys.executable).with_name("memgrid")
    argv = [str(memgrid), "annotate", "-p", str(project), "-a", annotator, "--order", "prompt"]
    return PtyTerminal(argv, env, columns=160, rows=50)


def test_every_acknowledged_label_survives_a_sigkill(demo_project_dir: Path) -> None:
    terminal = start_app(demo_project_dir, "kim")
    try:
        terminal.frame_with(GRID_HEADER, timeout=60)
        # Paced keys: each one's acknowledgement appears on screen before the next key.
        for key in b"1234":
            offset, _ = terminal.send(bytes([key]))
            terminal.wait_for(ACKNOWLEDGED, start=offset, timeout=20)
        # A burst typed ahead, and the process killed as soon as the first one shows.
        burst_start, _ = terminal.send(b"3142")
        terminal.wait_for(ACKNOWLEDGED, start=burst_start, timeout=20)
        terminal.kill()
    finally:
        terminal.close()
    acknowledged = {
        int(match.group(1)): TITLES[match.group(2).decode()]
        for match in ACKNOWLEDGED.finditer(visible_text(bytes(terminal.output)))
    }
    assert len(acknowledged) >= 5
    with open_project(demo_project_dir) as project:
        for grid_id, category in acknowledged.items():
            label = vote_of(project.store, grid_id, "kim")
            assert label is not None and label.category is category, grid_id
        labelled = project.store.labels.state_counts_where(annotator="kim")["labelled"]
        assert len(acknowledged) <= labelled <= 8
        expected_next = open_grids(project.store, "kim")[0]

    # Start again: it resumes at the next open grid, the one the killed app held.
    terminal = start_app(demo_project_dir, "kim")
    try:
        _, found = terminal.frame_with(GRID_HEADER, timeout=60)
        assert int(found.group(1)) == expected_next
        assert int(found.group(1)) not in acknowledged
        terminal.wait_for(re.compile(rf"{labelled}/26 done".encode()), timeout=20)
        terminal.send(b"q")
        assert terminal.process.wait(timeout=20) == 0
    finally:
        terminal.close()


def test_the_app_never_imports_torch(demo_project_dir: Path) -> None:
    code = f"""
import asyncio, sys
from pathlib import Path
from tests.app.conftest import settings_for
from tests.app.pilot_helpers import press, settle
from memgrid.tui.app import make_app
from memgrid.tui.services.project import open_project

async def main():
    with open_project(Path({str(demo_project_dir)!r})) as project:
        app = make_app(project, settings_for())
        async with app.run_test(size=(160, 50)) as pilot:
            await settle(pilot)
            await press(pilot, "1", "h", "z", "escape", "m", "escape", "A", "escape", "r", "escape")

asyncio.run(main())
print(" ".join(n for n in ("torch", "diffusers", "open_clip", "transformers") if n in sys.modules))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.split() == []


def test_a_closed_terminal_releases_the_grid_on_screen(demo_project_dir: Path) -> None:
    # SIGHUP (the window closed, the SSH session dropped) killed the process outright: its
    # grid stayed leased, out of the other annotators' reach for ten minutes. The terminal
    # really goes: an orderly Textual exit then waited forever on its input thread, which
    # read the dead terminal in a loop at half a core.
    terminal = start_app(demo_project_dir, "hal")
    try:
        terminal.frame_with(GRID_HEADER, timeout=60)
        with open_project(demo_project_dir) as project:
            held = project.store.rows("SELECT grid_id FROM leases WHERE annotator = 'hal'")
        assert len(held) == 1
        terminal.hang_up()
        assert terminal.process.wait(timeout=20) == 128 + signal.SIGHUP
    finally:
        terminal.close()
    with open_project(demo_project_dir) as project:
        assert project.store.rows("SELECT grid_id FROM leases WHERE annotator = 'hal'") == []


def test_quitting_twice_ends_the_app_while_the_database_is_held(demo_project_dir: Path) -> None:
    # Another process holds the write lock: q says what it is saving, q again quits. The
    # process used to stay, blank, until the lock was released (asyncio.run joined the
    # worker waiting on it); now it ends at once, says so, and the label is not stored.
    terminal = start_app(demo_project_dir, "ivy")
    holder = sqlite3.connect(demo_project_dir / "memgrid.db", isolation_level=None)
    try:
        _, found = terminal.frame_with(GRID_HEADER, timeout=60)
        grid_id = int(found.group(1))
        holder.execute("BEGIN EXCLUSIVE")
        offset, _ = terminal.send(b"2")
        terminal.wait_for(b"waiting for the database", start=offset, timeout=20)
        offset, _ = terminal.send(b"q")
        terminal.wait_for(b"Saving (implicit) before quitting", start=offset, timeout=20)
        ended = time.monotonic()
        terminal.send(b"q")
        terminal.wait_for(b"memgrid ended without waiting", timeout=20)
        assert terminal.process.wait(timeout=20) == 0
        assert time.monotonic() - ended < 10  # the busy timeout is 30 s
    finally:
        holder.close()  # its open transaction is rolled back
        terminal.close()
    with open_project(demo_project_dir) as project:
        assert vote_of(project.store, grid_id, "ivy") is None
