"""The export folder: which destinations are allowed, and the hidden folder renamed onto one.

An export is written into a hidden folder beside its destination and renamed onto it at
the end, so an interrupted export leaves nothing at the destination; a killed export's
leftovers are cleaned up (or rolled back) by the next one. The destination's folder must
exist already (a mistyped path is an error, not a new tree), and `--overwrite` replaces
only an earlier export: a folder holding memgrid's `export.json`, never a file, a link or
a folder of someone's own work.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from memgrid.core.errors import InputError
from memgrid.core.user_files import check_outside

# The manifest every export folder holds; its presence marks a folder as an export.
MANIFEST_NAME = "export.json"
# A manifest larger than this is not one memgrid wrote (a shard list of a million names
# stays below it), and is not read.
MANIFEST_READ_LIMIT = 64 << 20


def check_destination(
    destination: Path, project_root: Path, project_files: Sequence[Path], *, overwrite: bool
) -> None:
    """An existing destination needs `overwrite`; the project is never a destination.

    Neither the project folder (or a folder holding it) nor any of `project_files` (its
    database, images/, thumbs/) or anything inside them may be replaced by an export.
    """
    resolved = destination.resolve()
    if resolved == project_root.resolve() or resolved in project_root.resolve().parents:
        raise InputError(destination, "is the project folder or holds it; export elsewhere")
    check_outside(destination, project_files, "export elsewhere")
    _check_folder(destination)
    _check_replaceable(destination, overwrite=overwrite)


def _check_folder(destination: Path) -> None:
    """The destination's folder exists: an export never creates the folders above it."""
    parent = destination.parent
    if not parent.exists():
        raise InputError(destination, f"folder {parent} does not exist; create it first")
    if not parent.is_dir():
        raise InputError(destination, f"{parent} is not a folder")


def _check_replaceable(destination: Path, *, overwrite: bool) -> None:
    """Nothing at `destination`, or an earlier export there and `overwrite`."""
    if destination.is_symlink():
        found = "a symbolic link"
    elif not destination.exists():
        return
    elif not destination.is_dir():
        found = "a file"
    elif not holds_memgrid_export(destination):
        found = f"a folder without memgrid's {MANIFEST_NAME}"
    elif overwrite:
        return
    else:
        raise InputError(destination, "already exists; pass --overwrite to replace it")
    raise InputError(
        destination,
        f"is {found}, not a memgrid export; --overwrite replaces only an earlier export, "
        "so choose another --out",
    )


def holds_memgrid_export(folder: Path) -> bool:
    """Whether `folder` holds the manifest a memgrid export writes (see manifest.py)."""
    manifest = folder / MANIFEST_NAME
    try:
        if manifest.is_symlink() or not manifest.is_file():
            return False
        if manifest.stat().st_size > MANIFEST_READ_LIMIT:
            return False
        content = json.loads(manifest.read_bytes())
    except (OSError, ValueError, RecursionError):  # unreadable, not UTF-8, not JSON, too deep
        return False
    return (
        isinstance(content, dict)
        and isinstance(content.get("export_layout_version"), int)
        and isinstance(content.get("memgrid_version"), str)
    )


@contextmanager
def staged_destination(destination: Path, *, overwrite: bool) -> Iterator[Path]:
    """Yield an empty hidden folder beside `destination`; rename it onto `destination` at the end.

    If the block raises (or is interrupted), the folder is removed and `destination` is
    untouched. With `overwrite`, an earlier export at the destination is swapped out by
    two renames and then deleted; a failed swap puts it back. The destination is checked
    on the way in and again before the swap, since an export can take minutes.
    """
    parent = destination.parent
    _check_folder(destination)
    recover_stale_exports(destination)
    _check_replaceable(destination, overwrite=overwrite)
    # mkdir, not mkdtemp: the export gets the umask's permissions, not mkdtemp's 0700.
    staging = parent / f".{destination.name}.{_owner_tag()}.partial"
    staging.mkdir()
    try:
        yield staging
        _swap_in(staging, destination, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _owner_tag() -> str:
    """The writing process's id and a random part: a later run can tell a dead writer's leftovers."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _owner_alive(leftover: Path) -> bool:
    try:
        pid = int(leftover.name.rsplit(".", 2)[-2].split("-", 1)[0])
    except (ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def recover_stale_exports(destination: Path) -> None:
    """Clean up after an export that was killed: drop its half-written folder, and if it
    died in the middle of an --overwrite swap, put the previous export back."""
    parent = destination.parent
    for leftover in sorted(parent.glob(f".{destination.name}.*.old")):
        if _owner_alive(leftover):
            continue
        if not destination.exists() and not destination.is_symlink():
            os.replace(leftover, destination)
        else:
            shutil.rmtree(leftover, ignore_errors=True)
    for leftover in parent.glob(f".{destination.name}.*.partial"):
        if not _owner_alive(leftover):
            shutil.rmtree(leftover, ignore_errors=True)


def _swap_in(staging: Path, destination: Path, *, overwrite: bool) -> None:
    old: Path | None = None
    if destination.exists() or destination.is_symlink():
        _check_replaceable(destination, overwrite=overwrite)
        old = destination.parent / f".{destination.name}.{_owner_tag()}.old"
        os.replace(destination, old)
    try:
        os.replace(staging, destination)
    except BaseException:
        if old is not None:
            os.replace(old, destination)
        raise
    _fsync_folder(destination.parent)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
