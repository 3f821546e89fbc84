"""Label history cannot be rewritten, every event says which OS account wrote it, and the
project's [annotators] table decides who may label or adjudicate as whom."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from memgrid.core.annotators import (
    OsIdentity,
    Role,
    parse_annotator_table,
    read_annotator_table,
)
from memgrid.core.errors import DatabaseError, InputError, NotAllowedError, ProjectError
from memgrid.core.records import GridImage, LabelEvent
from memgrid.core.taxonomy import Category, LabelAction, LabelState
from memgrid.db.store import Store

ALICE = OsIdentity(user="alice", uid=1001, ssh_client="10.0.0.5")
BOB = OsIdentity(user="bob", uid=1002)
TABLE = {
    "alice": {"users": ["alice"], "roles": ["annotator", "adjudicator"]},
    "bob": {"users": ["bob", 1003]},
}


def a_grid(store: Store) -> int:
    image = GridImage(0, "images/aa/a.png", "a" * 64, 8, 8)
    return store.grids.add("a prompt", [image])[0]


def test_insert_or_replace_cannot_rewrite_a_label_event(tmp_path: Path) -> None:
    path = tmp_path / "memgrid.db"
    store = Store.open(path, create=True)
    event = store.labels.label(a_grid(store), "alice", Category.EXPLICIT)
    store.close()
    connection = sqlite3.connect(path)  # anyone with the file and the sqlite3 shell
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        connection.execute(
            """INSERT OR REPLACE INTO label_events (id, grid_id, annotator, action, state,
            category, created_at) VALUES (?, ?, 'mallory', 'label', 'labelled', 'none', 0)""",
            (event.id, event.grid_id),
        )
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        connection.execute(
            "REPLACE INTO label_events (id, grid_id, annotator, action, created_at) "
            "VALUES (?, ?, 'mallory', 'label', 0)",
            (event.id, event.grid_id),
        )
    rows = connection.execute("SELECT id, annotator, category FROM label_events").fetchall()
    assert rows == [(event.id, "alice", "explicit")]


def test_every_event_records_the_os_account_and_ssh_client() -> None:
    store = Store.memory(identity=ALICE)
    grid_id = a_grid(store)
    labelled = store.labels.label(grid_id, "alice", Category.UNINTENDED)
    skipped = store.labels.skip(grid_id, "someone-else")
    undone = store.labels.undo_last("someone-else")
    history = store.labels.events_where(grid_id=grid_id)
    assert [(e.os_user, e.ssh_client) for e in history] == [("alice", "10.0.0.5")] * 3
    assert labelled.os_user == "alice" and skipped.os_user == "alice"
    assert undone is not None and undone.id == skipped.id
    vote = store.labels.votes_where(grid_ids=[grid_id], annotator="alice")
    assert vote[0].os_user == "alice"  # the views carry the new columns


def test_the_os_identity_comes_from_the_system(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSH_CONNECTION", "192.0.2.7 51234 198.51.100.1 22")
    identity = OsIdentity.of_this_process()
    assert identity.uid == os.getuid()
    assert identity.ssh_client == "192.0.2.7"
    monkeypatch.delenv("SSH_CONNECTION")
    monkeypatch.delenv("SSH_CLIENT", raising=False)
    assert OsIdentity.of_this_process().ssh_client == ""


def test_the_annotators_table_binds_names_to_accounts_and_roles() -> None:
    table = parse_annotator_table(TABLE, "memgrid.toml")
    store = Store.memory(identity=BOB)
    store.annotators = table
    grid_id = a_grid(store)
    assert store.labels.label(grid_id, "bob", Category.NONE).os_user == "bob"
    with pytest.raises(NotAllowedError, match="OS user bob may not label as alice"):
        store.labels.label(grid_id, "alice", Category.EXPLICIT)
    with pytest.raises(NotAllowedError, match="not in the \\[annotators\\] table"):
        store.labels.skip(grid_id, "mallory")
    with pytest.raises(NotAllowedError, match="has no adjudicator role"):
        store.labels.adjudicate(grid_id, "bob", Category.NONE)
    assert [e.annotator for e in store.labels.events_where(grid_id=grid_id)] == ["bob"]
    # A uid stands for an account without a login name.
    table.check("bob", OsIdentity(user="1003", uid=1003), Role.ANNOTATOR)


def test_undoing_an_adjudication_needs_the_adjudicator_role() -> None:
    store = Store.memory(identity=ALICE)
    grid_id = a_grid(store)
    verdict = store.labels.adjudicate(grid_id, "alice", Category.EXPLICIT)
    store.annotators = parse_annotator_table({"alice": {"users": ["alice"]}}, "memgrid.toml")
    with pytest.raises(NotAllowedError, match="no adjudicator role"):
        store.labels.undo_last("alice")
    store.annotators = parse_annotator_table(TABLE, "memgrid.toml")
    undone = store.labels.undo_last("alice")
    assert undone is not None and undone.id == verdict.id


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"a": "alice"}, "each annotator is a table"),
        ({"a": {"users": []}}, '"users" must be a non-empty list'),
        ({"a": {"users": [True]}}, "logins (text) or uids"),
        ({"a": {"users": ["a"], "roles": ["admin"]}}, '"roles" must list some of'),
        ({"a": {"users": ["a"], "colour": "red"}}, "each annotator is a table"),
    ],
)
def test_a_malformed_table_is_one_line_naming_the_file(table: dict, problem: str) -> None:
    with pytest.raises(InputError, match=re.escape(problem)) as raised:
        parse_annotator_table(table, "p/memgrid.toml")
    assert str(raised.value).startswith("p/memgrid.toml:annotators.a: ")


@pytest.mark.parametrize("name", ["bob ", "x\ny", " "])
def test_a_table_name_a_label_file_could_not_carry_back_is_refused(name: str) -> None:
    """Labels are stored under the table's names; an export must import them again."""
    with pytest.raises(InputError, match=r"annotator name .* (outer spaces|is empty)") as raised:
        parse_annotator_table({name: {"users": ["bob"]}}, "p/memgrid.toml")
    assert "\n" not in str(raised.value)


def test_the_table_is_trusted_only_from_an_owner_only_file(tmp_path: Path) -> None:
    path = tmp_path / "memgrid.toml"
    path.write_text('[annotators]\nalice = { users = ["alice"] }\n')
    path.chmod(0o644)
    owner = tmp_path.stat().st_uid
    assert read_annotator_table(path, owner).bindings["alice"].users == {"alice"}
    path.chmod(0o664)
    with pytest.raises(InputError, match=r"writable by others \(-rw-rw-r--\)"):
        read_annotator_table(path, owner)
    path.chmod(0o644)
    # Written by a third account (one that could have replaced the file in a shared folder).
    if os.getuid() == 0:
        os.chown(path, 4242, -1)
        folder_owner = 4243
    else:
        folder_owner = os.getuid() + 1
    with pytest.raises(InputError, match="not to the project folder's owner"):
        read_annotator_table(path, folder_owner)
    if os.getuid() == 0:
        os.chown(path, owner, -1)
    link = tmp_path / "other" / "memgrid.toml"
    link.parent.mkdir()
    link.symlink_to(path)
    with pytest.raises(InputError, match="is a link"):
        read_annotator_table(link, owner)
    (tmp_path / "plain.toml").write_text('[keys]\nskip = "k"\n')
    assert read_annotator_table(tmp_path / "plain.toml", owner) is None


@pytest.mark.parametrize("content", [b"", b"not sqlite at all, just text"])
def test_an_empty_or_foreign_file_is_not_made_a_project(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "memgrid.db"
    path.write_bytes(content)
    for create in (False, True):
        with pytest.raises(ProjectError) as raised:
            Store.open(path, create=create)
        assert str(path) in str(raised.value) and "\n" not in str(raised.value)
    assert path.read_bytes() == content


def test_a_foreign_sqlite_database_gets_no_tables_added(tmp_path: Path) -> None:
    path = tmp_path / "memgrid.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE users (name TEXT, password_hash TEXT)")
    connection.commit()
    connection.close()
    for create in (False, True):
        with pytest.raises(ProjectError, match="an SQLite database of something else") as raised:
            Store.open(path, create=create)
        assert "tables users" in str(raised.value)
    connection = sqlite3.connect(path)
    names = [row[0] for row in connection.execute("SELECT name FROM sqlite_master")]
    assert names == ["users"]


def test_writes_refused_by_sqlite_say_what_they_mean(tmp_path: Path) -> None:
    path = tmp_path / "memgrid.db"
    Store.open(path, create=True).close()
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    store = Store(Database(connection), path, identity=ALICE)
    with pytest.raises(DatabaseError, match="you may read this project but not change it"):
        store.prompts.add_many([("p", {})])


def test_events_of_a_schema_6_project_migrate_and_the_steps_may_run_again(tmp_path: Path) -> None:
    from memgrid.db.migrations import (
        SCHEMA_VERSION,
        m007_no_replacing_label_events,
        m008_label_event_accounts,
    )

    path = tmp_path / "memgrid.db"
    store = Store.open(path, create=True, identity=ALICE)
    grid_id = a_grid(store)
    store.labels.label(grid_id, "alice", Category.EXPLICIT)
    store.close()
    older = sqlite3.connect(path)  # undo what m007 and m008 add: a schema 6 project
    older.execute("DROP TRIGGER label_events_no_replace")
    older.execute("ALTER TABLE label_events DROP COLUMN os_user")
    older.execute("ALTER TABLE label_events DROP COLUMN ssh_client")
    older.execute("DELETE FROM _sqlite_migrations WHERE name LIKE 'm007%' OR name LIKE 'm008%'")
    older.execute("PRAGMA user_version = 6")
    older.commit()
    older.close()

    store = Store.open(path, identity=BOB)
    assert store.schema_version == SCHEMA_VERSION
    store.labels.label(grid_id, "bob", Category.NONE)
    m007_no_replacing_label_events(store.db)  # a second run changes nothing and fails nothing
    m008_label_event_accounts(store.db)
    events = store.labels.events_where(grid_id=grid_id)
    assert [(e.annotator, e.os_user) for e in events] == [("alice", ""), ("bob", "bob")]
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("REPLACE INTO label_events SELECT * FROM label_events")


def import_alices_none(store: Store, grid_id: int, after: float, external_id: str) -> None:
    """Alice's label `none` on `grid_id`, imported from a file, made after `after`."""
    imported = LabelEvent(
        id=0,
        grid_id=grid_id,
        annotator="alice",
        action=LabelAction.LABEL,
        state=LabelState.LABELLED,
        category=Category.NONE,
        created_at=after + 1,
        origin="/data/labels.jsonl",
        external_id=external_id,
    )
    assert store.labels.import_many([imported]) == 1


def test_undo_walks_past_an_imported_label_to_one_made_here() -> None:
    """An imported event records a label made elsewhere (its file is its history): the
    annotator's undo takes back their own latest action, never the import."""
    store = Store.memory(identity=ALICE)
    first, second = a_grid(store), store.grids.add("another prompt", [])[0]
    own = store.labels.label(first, "alice", Category.EXPLICIT)
    import_alices_none(store, second, own.created_at, "elsewhere:7")
    undone = store.labels.undo_last("alice")
    assert undone is not None and undone.id == own.id
    assert store.labels.undo_last("alice") is None  # only the import is left
    assert [e.category for e in store.labels.current_where(grid_ids=[first, second])] == [
        Category.NONE
    ]


def test_undo_walks_past_a_label_an_import_superseded() -> None:
    """Undoing it would change nothing shown: the imported label is the current one."""
    store = Store.memory(identity=ALICE)
    first, second = a_grid(store), store.grids.add("another prompt", [])[0]
    earlier = store.labels.label(first, "alice", Category.IMPLICIT)
    superseded = store.labels.label(second, "alice", Category.EXPLICIT)
    import_alices_none(store, second, superseded.created_at, "elsewhere:8")
    undone = store.labels.undo_last("alice")
    assert undone is not None and undone.id == earlier.id
    assert store.labels.undo_last("alice") is None
