"""Who may open a project how: the permission check at open, and sharing with a group.

docs/design.md, "Storage": a project several accounts label is shared through a Unix
group. `memgrid init --shared` sets it up (`share_with_group`): the folders group-writable
with the setgid bit (new files and folders take the folder's group), memgrid.db and its
-wal and -shm group-writable (SQLite gives the -wal and -shm the database's own mode), and
images and thumbnails group-writable whatever each writer's umask. A project whose folder
is setgid and group-writable is *shared*: memgrid keeps new files and folders in it so.

Opening checks, before SQLite does, that this account can use what it must write, and
names the first file whose permission is wrong, so a second annotator does not meet
"attempt to write a readonly database" half-way through a session.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from pathlib import Path

from memgrid.core.atomic_files import (
    SHARED_FILE_BITS,
    SHARED_FOLDER_BITS,
    make_folder,
    process_umask,
)
from memgrid.core.errors import ProjectError
from memgrid.db.store import DATABASE_NAME

DATABASE_FILES = (DATABASE_NAME, f"{DATABASE_NAME}-wal", f"{DATABASE_NAME}-shm")
PROJECT_FOLDERS = ("images", "thumbs")


def is_shared(root: Path) -> bool:
    """Whether the project folder is set up for a group: setgid and group-writable."""
    mode = root.stat().st_mode
    return bool(mode & stat.S_ISGID and mode & stat.S_IWGRP)


def project_group(root: Path) -> str:
    """The name of the project folder's group."""
    return group_name(root.stat().st_gid)


def folder_is_writable(root: Path) -> bool:
    return os.access(root, os.W_OK | os.X_OK)


def check_writable(root: Path) -> None:
    """ProjectError naming the first project file or folder this account cannot write.

    Nothing to check when the project folder itself is not writable: the project then
    opens read-only. Otherwise memgrid.db, its -wal and -shm, images/ and thumbs/ must be
    writable too.
    """
    if not folder_is_writable(root):
        return
    needs = [(root / name, os.R_OK | os.W_OK) for name in DATABASE_FILES]
    needs += [(root / name, os.R_OK | os.W_OK | os.X_OK) for name in PROJECT_FOLDERS]
    for path, access in needs:
        if path.exists() and not os.access(path, access):
            raise ProjectError(permission_problem(root, path))


def permission_problem(root: Path, path: Path) -> str:
    """One line: the file, what is wrong with its permission for this account, the fix."""
    info = path.stat()
    you = user_name(os.getuid())
    what = "write in" if path.is_dir() else "write"
    group = group_name(info.st_gid)
    line = (
        f"{path}: {you} cannot {what} it ({stat.filemode(info.st_mode)}, owner "
        f"{user_name(info.st_uid)}, group {group})"
    )
    if not is_shared(root):
        return f"{line}: to share the project, its owner runs `memgrid init --shared {root}`"
    folder_gid = root.stat().st_gid
    if info.st_gid != folder_gid or not info.st_mode & stat.S_IWGRP:
        return (
            f"{line}: not shared with the folder's group {group_name(folder_gid)}; its owner "
            f"runs `memgrid init --shared {root}`"
        )
    if info.st_gid not in (os.getgid(), *os.getgroups()):
        return f"{line}: {you} is not in group {group}; ask to be added (then log in again)"
    return line


def share_with_group(root: Path, group: str | None = None) -> None:
    """Make the project at `root` (folders and files that exist) shared with `group`.

    Default group: the folder's own. Idempotent; run by the project's owner (or root).
    """
    gid = root.stat().st_gid if group is None else _group_id(group)
    umask = process_umask()
    for path in [root, *[root / name for name in PROJECT_FOLDERS]]:
        if path.is_dir():
            _share(path, gid, (0o777 & ~umask) | SHARED_FOLDER_BITS)
            for entry in path.rglob("*"):
                bits = SHARED_FOLDER_BITS if entry.is_dir() else SHARED_FILE_BITS
                base = 0o777 if entry.is_dir() else 0o666
                if not entry.is_symlink():
                    _share(entry, gid, (base & ~umask) | bits)
    for name in DATABASE_FILES:
        if (root / name).exists():
            _share(root / name, gid, (0o666 & ~umask) | SHARED_FILE_BITS)
    # Every content-addressed subfolder made now, so no annotator's first image in one
    # meets a folder another has just made and not yet opened to the group.
    for name in PROJECT_FOLDERS:
        for prefix in range(256):
            make_folder(root / name / f"{prefix:02x}", shared=True)


def _share(path: Path, gid: int, mode: int) -> None:
    try:
        if path.stat().st_gid != gid:
            os.chown(path, -1, gid)
        os.chmod(path, mode)
    except PermissionError as error:
        raise ProjectError(
            f"{path}: cannot share it ({error.strerror}); run this as its owner"
        ) from None


def _group_id(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        if name.isdigit():
            return int(name)
        raise ProjectError(f"--group {name}: no such group on this machine") from None


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return f"gid {gid}"
