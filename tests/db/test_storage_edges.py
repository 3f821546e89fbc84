"""Storage edges: network filesystems, a full disk, a killed writer, a newer schema."""

from __future__ import annotations

import contextlib
import errno
import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import memgrid.core.atomic_files
import memgrid.db.store
from memgrid.core.errors import DatabaseError
from memgrid.core.records import QueueOrder
from memgrid.core.taxonomy import Category
from memgrid.db.queue import AnnotationQueue
from memgrid.db.store import Store, describe_database_error
from memgrid.tui.cli import app
from memgrid.tui.services.project import create_project, open_project
from tests.cli.test_import import make_folder_source


def test_network_filesystem_gets_a_rollback_journal(
    tmp_path: Path, monkeypatch, runner: CliRunner
) -> None:
    monkeypatch.setattr(memgrid.db.store, "filesystem_type", lambda path: "nfs4")
    with create_project(tmp_path / "p") as project:
        assert project.store.journal_mode == "delete"
    status = json.loads(runner.invoke(app, ["status", "-p", str(tmp_path / "p"), "--json"]).output)
    assert status["journal_mode"] == "delete"


def test_filesystem_type_reads_proc_mounts(tmp_path: Path) -> None:
    found = memgrid.db.store.filesystem_type(tmp_path)
    assert found is None or (isinstance(found, str) and found)


def test_full_database_keeps_every_acknowledged_label(tmp_path: Path) -> None:
    with create_project(tmp_path / "p") as project:
        store = project.store
        grid_id, _ = store.grids.add("p", [])
        page_count = store.db.execute("PRAGMA page_count").fetchone()[0]
        store.db.execute(f"PRAGMA max_page_count = {page_count + 2}")
        acknowledged = []
        with pytest.raises(DatabaseError, match=r"full.*rolled back.*intact"):
            for index in range(10_000):
                acknowledged.append(
                    store.labels.label(
                        grid_id, "ann", Category.NONE, note="x" * 500 + str(index)
                    ).id
                )
        assert len(acknowledged) > 0
    with open_project(tmp_path / "p") as reopened:
        assert reopened.store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = [e.id for e in reopened.store.labels.events_where(grid_id=grid_id)]
        assert stored == acknowledged


def test_full_disk_during_import_leaves_no_partial_file(
    tmp_path: Path, monkeypatch, runner: CliRunner
) -> None:
    source = make_folder_source(tmp_path / "src")
    target = tmp_path / "p"
    runner.invoke(app, ["init", str(target)])

    def no_space(_descriptor: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(memgrid.core.atomic_files.os, "fsync", no_space)
    result = runner.invoke(app, ["import", str(source), "-p", str(target)])
    assert result.exit_code == 1
    assert "No space left on device" in result.stderr
    assert [p for p in (target / "images").rglob("*") if p.is_file()] == []
    assert (
        json.loads(runner.invoke(app, ["status", "-p", str(target), "--json"]).output)["grids"] == 0
    )


def test_full_database_message_says_what_was_kept() -> None:
    message = describe_database_error(sqlite3.OperationalError("database or disk is full"))
    assert "rolled back" in message and "intact" in message


def test_a_locked_database_is_one_line_from_the_cli(
    tmp_path: Path, monkeypatch, runner: CliRunner
) -> None:
    root = tmp_path / "p"
    create_project(root).close()
    monkeypatch.setattr(memgrid.db.store, "BUSY_TIMEOUT_SECONDS", 0.05)
    holder = sqlite3.connect(root / "memgrid.db")
    holder.execute("BEGIN EXCLUSIVE")  # another process writing, and taking its time
    try:
        result = runner.invoke(
            app, ["prompts", "add", str(write_prompts(tmp_path)), "-p", str(root)]
        )
    finally:
        holder.rollback()
        holder.close()
    assert result.exit_code == 1
    assert result.stderr.startswith("memgrid: error: ")
    assert "locked" in result.stderr and "try again" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def write_prompts(folder: Path) -> Path:
    path = folder / "prompts.txt"
    path.write_text("a red barn\na blue door\n")
    return path


def test_threads_sharing_the_store_never_share_a_transaction(tmp_path: Path) -> None:
    """A worker's label is never rolled back with another thread's failed transaction."""
    store = Store.open(tmp_path / "memgrid.db", create=True)
    grid_ids = [store.grids.add(f"prompt {i}", [])[0] for i in range(30)]
    failures: list[BaseException] = []

    def rolled_back() -> None:
        for grid_id in grid_ids:
            with contextlib.suppress(RuntimeError), store.atomic():
                store.labels.label(grid_id, "undone", Category.NONE)
                time.sleep(0.001)  # another thread's write would land in here
                raise RuntimeError("abandon this transaction")

    def labelling(annotator: str) -> None:
        try:
            for grid_id in grid_ids:
                store.labels.label(grid_id, annotator, Category.EXPLICIT)
                AnnotationQueue(store, annotator, order=QueueOrder.RANDOM).next_open(limit=4)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=rolled_back)] + [
        threading.Thread(target=labelling, args=(name,)) for name in ("ann", "bo")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert store.labels.votes_where(annotator="undone") == []
    for annotator in ("ann", "bo"):
        assert len(store.labels.votes_where(annotator=annotator)) == len(grid_ids)
    store.close()
