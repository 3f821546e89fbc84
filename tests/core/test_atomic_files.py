"""Whole-or-nothing writes, and opening a project removes only temporaries whose writer is gone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from memgrid.core.atomic_files import (
    ABANDONED_AFTER_SECONDS,
    HOST_TAG,
    TEMPORARY_PREFIX,
    atomic_write,
    temporary_path,
)
from memgrid.tui.services.project import create_project, open_project
from tests.cli.test_import import make_folder_source


def ended_pid() -> int:
    """The pid of a process that has run and ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_opening_a_project_keeps_other_writers_temporaries(tmp_path: Path) -> None:
    root = tmp_path / "project"
    create_project(root).close()
    folder = root / "images" / "ab"
    folder.mkdir(parents=True)
    live = temporary_path(folder)  # this process: an import running beside `status`
    live.write_bytes(b"half an image")
    other_host = folder / f"{TEMPORARY_PREFIX}{ended_pid()}-0000beef-abc"
    other_host.write_bytes(b"half")
    abandoned = folder / f"{TEMPORARY_PREFIX}{ended_pid()}-{HOST_TAG}-abc"
    abandoned.write_bytes(b"half")
    unnamed_young = folder / f"{TEMPORARY_PREFIX}k2j4h5"
    unnamed_young.write_bytes(b"half")
    unnamed_old = folder / f"{TEMPORARY_PREFIX}x8a7sd"
    unnamed_old.write_bytes(b"half")
    long_ago = time.time() - ABANDONED_AFTER_SECONDS - 60
    os.utime(unnamed_old, (long_ago, long_ago))

    open_project(root).close()

    assert live.exists() and other_host.exists() and unnamed_young.exists()
    assert not abandoned.exists() and not unnamed_old.exists()


def test_an_import_beside_repeated_opens_completes(tmp_path: Path) -> None:
    root = tmp_path / "project"
    create_project(root).close()
    source = make_folder_source(tmp_path / "src", grids=30, seeds=6)
    importing = subprocess.Popen(
        [sys.executable, "-m", "memgrid.tui", "import", str(source), "-p", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    opens = 0
    while importing.poll() is None:  # `status` and `show` open the project meanwhile
        open_project(root).close()
        opens += 1
    _, errors = importing.communicate()
    assert importing.returncode == 0, errors
    assert opens > 0
    with open_project(root) as project:
        assert (project.store.grids.count, project.store.images.count) == (30, 180)


def test_atomic_write_honours_the_umask_and_adds_what_is_asked(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        atomic_write(tmp_path / "a", b"x")
        atomic_write(tmp_path / "b" / "c", b"x", shared=True)
    finally:
        os.umask(previous)
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "b" / "c").stat().st_mode & 0o777 == 0o660
    assert (tmp_path / "b").stat().st_mode & 0o7777 == 0o2770
    assert not list(tmp_path.glob(f"{TEMPORARY_PREFIX}*"))
