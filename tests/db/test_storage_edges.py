"""Storage edges: network filesystems, a full disk, a killed writer, a newer schema."""

from __future__ import annotations

import errno
import json
import sqlite3
from pathlib import Path

import memgrid.core.atomic_files
import memgrid.db.store
import pytest
from memgrid.core.taxonomy import Category
from memgrid.tui.cli import app
from memgrid.tui.services.project import create_project, open_project
from typer.testing import CliRunner

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
        grid_id, _ = store.add_grid("p", [])
        page_count = store.db.execute("PRAGMA page_count").fetchone()[0]
        store.db.execute(f"PRAGMA max_page_count = {page_count + 2}")
        acknowledged = []
        with pytest.raises(sqlite3.OperationalError, match="full"):
            for index in range(10_000):
                acknowledged.append(
                    store.label(grid_id, "ann", Category.NONE, note="x" * 500 + str(index)).id
                )
        assert len(acknowledged) > 0
    with open_project(tmp_path / "p") as reopened:
        assert reopened.store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = [e.id for e in reopened.store.label_history(grid_id)]
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
    from memgrid.tui.cli import describe_database_error

    message = describe_database_error(sqlite3.OperationalError("database or disk is full"))
    assert "rolled back" in message and "intact" in message
