"""A user's files: followed links must stay inside the folder a file came from, and only a
regular file is read (a named pipe would block the reader forever, a device never ends); a
file the user names for output is replaced whole, never left half-written."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from memgrid.core.atomic_files import atomic_write
from memgrid.core.errors import InputError

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def resolved_path(path: Path) -> Path:
    """`path` made absolute with links followed; a link loop is an InputError naming it."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):  # Python before 3.13 raises RuntimeError on a loop
        raise InputError(path, "symbolic link loop (or a link that cannot be followed)") from None


def is_inside(path: Path, root: Path) -> bool:
    """Whether `path`, links followed, lies in `root` (links followed too)."""
    return resolved_path(path).is_relative_to(resolved_path(root))


def check_inside(path: Path, root: Path) -> None:
    if not is_inside(path, root):
        raise InputError(path, f"points outside the import folder {root}")


@contextmanager
def open_user_file(
    path: Path, *, inside: Path | None = None, max_bytes: int | None = None, what: str = "file"
) -> Iterator[BinaryIO]:
    """`path` opened for reading in binary, once it is known to be a regular file.

    With `inside`, the file (links followed) must lie in that folder: a link in an import
    source must not pull /etc/passwd into the project. With `max_bytes`, a larger file is
    refused from its size alone, before a byte is read. The checks are made on the opened
    file itself (fstat), so a file swapped for a pipe after the first look is caught too.
    """
    target = resolved_path(path)
    root = None
    if inside is not None:
        check_inside(path, inside)
        root = resolved_path(inside)
        if not target.is_relative_to(root):  # moved out between the two resolutions
            raise InputError(path, f"points outside the import folder {inside}")
    try:
        descriptor = _open_no_links(target, root)
    except _Replaced:
        raise InputError(
            path, "it or a folder on its path was replaced by a link as it was opened"
        ) from None
    except FileNotFoundError:
        missing = "is a link to a missing file" if path.is_symlink() else f"{what} not found"
        raise InputError(path, missing) from None
    except OSError as error:
        raise InputError(path, f"cannot read ({error.strerror or error})") from None
    try:
        status = os.fstat(descriptor)
        _check_regular(path, status.st_mode)
        if max_bytes is not None and status.st_size > max_bytes:
            raise InputError(
                path, f"{status.st_size:,} bytes is over the {max_bytes:,}-byte limit for this file"
            )
        os.set_blocking(descriptor, True)
    except BaseException:
        os.close(descriptor)
        raise
    with os.fdopen(descriptor, "rb") as handle:
        yield handle


class _Replaced(Exception):
    """A folder or the file, resolved a moment before, is a link now."""


# A folder is opened only to open what is below it: O_PATH (Linux) needs no read
# permission, only search, as a path lookup does; elsewhere, reading it is needed.
_FOLDER_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC


def _open_no_links(target: Path, root: Path | None) -> int:
    """A descriptor of `target` (already resolved), opened without following any link.

    Inside `root`, every folder from the root down is opened relative to the one above it,
    refusing links: a folder swapped for a link to elsewhere between the check and the open
    (a race another account on a shared server could run) is refused instead of followed
    out of the source. Non-blocking, so that opening a FIFO returns at once instead of
    waiting for a writer.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
    if root is None or target == root or os.open not in os.supports_dir_fd:
        return os.open(target, flags)
    *folders, name = target.relative_to(root).parts
    folder = os.open(root, _FOLDER_FLAGS)
    try:
        for part in folders:
            below = _open_below(part, _FOLDER_FLAGS | os.O_NOFOLLOW, folder)
            os.close(folder)
            folder = below
        return _open_below(name, flags, folder)
    finally:
        os.close(folder)


def _open_below(name: str, flags: int, folder: int) -> int:
    """`name` in the open `folder`; _Replaced when it failed because `name` is a link."""
    try:
        return os.open(name, flags, dir_fd=folder)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(name, folder):
            raise _Replaced from None
        raise


def _is_link(name: str, folder: int) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=folder).st_mode)
    except OSError:
        return False


def read_user_bytes(
    path: Path, *, inside: Path | None = None, max_bytes: int | None = None, what: str = "file"
) -> bytes:
    """The whole of a user's regular file (see `open_user_file`), errors naming the file."""
    with open_user_file(path, inside=inside, max_bytes=max_bytes, what=what) as handle:
        try:
            return handle.read()
        except OSError as error:
            raise InputError(path, f"cannot read ({error.strerror or error})") from None


def _check_regular(path: Path, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not a plain file")
    raise InputError(path, f"is {kind}, not a regular file")


# The standard streams, written through whatever they point to (`--html /dev/stdout`, also
# when the shell sent stdout to a file).
STANDARD_STREAMS = ("/dev/stdout", "/dev/stderr", "/dev/fd/", "/proc/self/fd/")


def write_user_file(
    path: Path, data: bytes, *, overwrite: bool = False, protected: Sequence[Path] = ()
) -> None:
    """Write a file the user named (a report, a label file), replaced whole: a run killed
    mid-write leaves the earlier file as it was. An existing file needs `overwrite`; a pipe,
    terminal, device or standard stream is written straight through. Refused, naming
    `path`: a folder, a link to a file (in a shared folder a planted link could send it
    elsewhere), a folder that does not exist, and anything in `protected` (a project's
    database and image folders, `Project.own_files`)."""
    replaceable = check_output_file(path, overwrite=overwrite, protected=protected)
    try:
        if replaceable:
            atomic_write(path, data)
        else:
            with open(path, "wb") as handle:
                handle.write(data)
    except OSError as error:
        raise InputError(path, f"cannot write ({error.strerror or error})") from None


def check_output_file(
    path: Path, *, overwrite: bool = False, protected: Sequence[Path] = ()
) -> bool:
    """`write_user_file`'s refusals, to run before the work whose result goes there; True
    for a file to replace whole, False for a stream, pipe or device to write through."""
    try:
        mode = path.stat().st_mode  # of what a link points to
    except FileNotFoundError:
        mode = None
    except OSError as error:
        raise InputError(path, f"cannot write ({error.strerror or error})") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise InputError(path, "is a folder; name a file")
    if str(path).startswith(STANDARD_STREAMS) or (mode is not None and not stat.S_ISREG(mode)):
        return False
    if path.is_symlink():
        raise InputError(path, "is a link; name the file itself")
    check_outside(path, protected, "name another file")
    if mode is not None and not overwrite:
        raise InputError(path, "already exists; pass --overwrite to replace it")
    if not path.parent.is_dir():
        raise InputError(path, f"folder {path.parent} does not exist; create it first")
    return True


def check_outside(path: Path, protected: Sequence[Path], instead: str) -> None:
    """Refuse `path` when it is, or lies inside, one of `protected` (links followed)."""
    target = resolved_path(path)
    for kept in protected:
        resolved = resolved_path(kept)
        if target == resolved or resolved in target.parents:
            raise InputError(path, f"is part of the project ({kept}); {instead}")
