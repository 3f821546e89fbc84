"""A project's health for `memgrid doctor`: its database, its sharing, its disk.

A project several annotators label from their own accounts is shared through a Unix group
(docs/design.md, "Storage"): the folder and everything in it belong to that group, are
group-writable, the folders carry the setgid bit so new files inherit the group, and each
annotator's umask lets the group write what they create. The checks below look for the ways
that goes wrong, each with the command that fixes it.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from memgrid.core.atomic_files import process_umask
from memgrid.core.errors import ProjectError
from memgrid.db.health import DatabaseHealth, check_database
from memgrid.db.store import DATABASE_NAME
from memgrid.tui.services.access import group_name
from memgrid.tui.services.advice import Advice

LOW_DISK_BYTES = 1 << 30
EXAMPLES_SHOWN = 3
# Image subfolders whose first file is checked too (a project has at most 256 of them).
IMAGE_FOLDERS_SAMPLED = 256
MIB = 1 << 20


@dataclass(frozen=True)
class PathMode:
    path: str  # relative to the project folder
    mode: str  # as ls shows it: drwxrwsr-x
    group: str


@dataclass
class ProjectHealth:
    root: str
    database: DatabaseHealth | None
    database_problem: str | None
    shared_with_group: str | None  # the folder's group, when the folder is group-writable
    owner_only: bool  # nobody but the owner may write the folder
    umask: str
    free_bytes: int
    modes: list[PathMode] = field(default_factory=list)  # the project's top-level entries


def check_project(root: Path, advice: list[Advice], *, asked: bool = False) -> ProjectHealth | None:
    """The project at `root`, or None when there is none (advice too when one was `asked`)."""
    database = root / DATABASE_NAME
    if not database.is_file():
        if asked:
            advice.append(
                Advice("project", f"{root} is not a memgrid project", f"memgrid init {root}")
            )
        return None
    health, problem = None, None
    try:
        health = check_database(database)
    except ProjectError as error:
        problem = str(error)
        advice.append(Advice("project", problem, "restore memgrid.db from a backup"))
    if health is not None:
        _advise_on_database(root, health, advice)
    paths = _project_paths(root)
    root_stat = root.stat()
    shared = bool(root_stat.st_mode & stat.S_IWGRP)
    group = group_name(root_stat.st_gid)
    umask = process_umask()
    if shared:
        _advise_on_sharing(root, paths, root_stat.st_gid, group, umask, advice)
    else:
        advice.append(
            Advice(
                "sharing",
                f"{root} is writable by its owner only: other accounts cannot label in it",
                f"to share it with a group: {_share_commands(root, 'GROUP')}",
                serious=False,
            )
        )
    if not os.access(database, os.W_OK):
        advice.append(
            Advice(
                "sharing",
                f"you cannot write {database}: labels cannot be saved",
                f"ask its owner to run `{_share_commands(root, group)}` and to add you to "
                f"group {group} (then log in again)",
            )
        )
    free = shutil.disk_usage(root).free
    if free < LOW_DISK_BYTES:
        advice.append(
            Advice(
                "disk",
                f"only {free // MIB} MiB free under {root}: a full disk stops imports and "
                "labelling (what is saved stays saved)",
                "free space on that filesystem, or move the project",
            )
        )
    return ProjectHealth(
        root=str(root),
        database=health,
        database_problem=problem,
        shared_with_group=group if shared else None,
        owner_only=not shared,
        umask=f"{umask:04o}",
        free_bytes=free,
        modes=[_mode(root, path) for path in paths if path == root or path.parent == root],
    )


def _advise_on_database(root: Path, health: DatabaseHealth, advice: list[Advice]) -> None:
    if health.schema_version > health.current_schema_version:
        advice.append(
            Advice(
                "project",
                f"schema v{health.schema_version} is newer than this memgrid's "
                f"v{health.current_schema_version}",
                "upgrade memgrid (pip install -U memgrid, or git pull and just demo)",
            )
        )
    elif health.schema_version < health.current_schema_version:
        advice.append(
            Advice(
                "project",
                f"schema v{health.schema_version}: the next memgrid command migrates it to "
                f"v{health.current_schema_version}",
                "nothing to do; keep a copy of memgrid.db if an older memgrid still opens it",
                serious=False,
            )
        )
    if health.expected_journal_mode == "delete" and health.journal_mode == "wal":
        advice.append(
            Advice(
                "project",
                f"journal mode wal on a network filesystem ({health.filesystem}), where its "
                "shared memory is unreliable",
                f"run `memgrid status -p {root}` once: memgrid switches it to delete there",
            )
        )
    if not health.sound:
        advice.append(
            Advice(
                "project",
                f"integrity_check: {'; '.join(health.integrity)}",
                "stop labelling; restore memgrid.db from a backup, or rebuild it with "
                "`sqlite3 memgrid.db .recover | sqlite3 recovered.db`",
            )
        )


def _advise_on_sharing(
    root: Path, paths: dict[Path, int], gid: int, group: str, umask: int, advice: list[Advice]
) -> None:
    def names(found: list[Path]) -> str:
        shown = ", ".join(str(path.relative_to(root.parent)) for path in found[:EXAMPLES_SHOWN])
        more = len(found) - EXAMPLES_SHOWN
        return shown + (f" and {more} more" if more > 0 else "")

    foreign = [path for path in paths if path.stat().st_gid != gid]
    if foreign:
        advice.append(
            Advice(
                "sharing",
                f"{names(foreign)} not in group {group}: other annotators may not open them",
                f"chgrp -R {group} {root}",
            )
        )
    closed = [path for path, bits in paths.items() if path.stat().st_mode & bits != bits]
    if closed:
        advice.append(
            Advice(
                "sharing",
                f"{names(closed)} not group-writable (or readable): the group cannot label",
                f"chmod -R g+rwX {root}",
            )
        )
    no_setgid = [path for path in paths if path.is_dir() and not path.stat().st_mode & stat.S_ISGID]
    if no_setgid:
        advice.append(
            Advice(
                "sharing",
                f"{names(no_setgid)} without the setgid bit: new files get their "
                "creator's own group",
                f"find {root} -type d -exec chmod g+s {{}} +",
            )
        )
    if umask & stat.S_IWGRP:
        advice.append(
            Advice(
                "sharing",
                f"your umask {umask:04o} makes what you add unwritable by group {group}",
                "umask 002 before running memgrid (e.g. in ~/.profile)",
            )
        )


def _project_paths(root: Path) -> dict[Path, int]:
    """The folder, its database files, images/ and thumbs/, and a sample below images/, each
    with the group permission bits it needs."""
    read_write = stat.S_IRGRP | stat.S_IWGRP
    folder = read_write | stat.S_IXGRP
    needed = {root: folder, root / "images": folder, root / "thumbs": folder}
    for suffix in ("", "-wal", "-shm"):
        needed[root / f"{DATABASE_NAME}{suffix}"] = read_write
    paths = {path: bits for path, bits in needed.items() if path.exists()}
    images = root / "images"
    if images.is_dir():
        folders = sorted(entry for entry in images.iterdir() if entry.is_dir())
        for subfolder in folders[:IMAGE_FOLDERS_SAMPLED]:
            paths[subfolder] = folder
            first = next((entry for entry in subfolder.iterdir() if entry.is_file()), None)
            if first is not None:
                paths[first] = stat.S_IRGRP  # content-addressed: only ever read once written
    return paths


def _mode(root: Path, path: Path) -> PathMode:
    info = path.stat()
    return PathMode(
        path=str(path.relative_to(root)) if path != root else ".",
        mode=stat.filemode(info.st_mode),
        group=group_name(info.st_gid),
    )


def _share_commands(root: Path, group: str) -> str:
    return (
        f"chgrp -R {group} {root} && chmod -R g+rwX {root} && "
        f"find {root} -type d -exec chmod g+s {{}} +"
    )
