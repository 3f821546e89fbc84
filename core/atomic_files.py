"""Whole-or-nothing file writes, and clearing the temporaries only of writers that are gone.

A temporary is named `.tmp-<pid>-<host>-<random>`: `<host>` tells this machine (and pid
namespace) from another one sharing the folder, so a reader may remove a temporary of its
own machine whose process has ended, and otherwise only one older than any write takes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import socket
import stat
import time
from pathlib import Path

TEMPORARY_PREFIX = ".tmp-"
# What a project shared with a group adds to the umask's modes (docs/design.md, "Storage").
SHARED_FILE_BITS = stat.S_IRGRP | stat.S_IWGRP
SHARED_FOLDER_BITS = stat.S_ISGID | stat.S_IRWXG
# No write of one file takes this long (the largest image is a few hundred MB); an older
# temporary whose writer cannot be checked (another machine, an older memgrid) is abandoned.
ABANDONED_AFTER_SECONDS = 3600.0
_TEMPORARY_NAME = re.compile(rf"^{re.escape(TEMPORARY_PREFIX)}(\d+)-([0-9a-f]{{8}})-")


def _host_tag() -> str:
    """8 hex digits naming this machine and pid namespace (pids mean nothing across them)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return hashlib.sha256(f"{socket.gethostname()}|{namespace}".encode()).hexdigest()[:8]


HOST_TAG = _host_tag()


def process_umask() -> int:
    """This process's umask, read without changing it where Linux allows (/proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    current = os.umask(0o022)  # elsewhere the only way to read it is to set it
    os.umask(current)
    return current


def temporary_path(directory: Path) -> Path:
    """A fresh temporary name in `directory` that tells which process writes it."""
    return directory / f"{TEMPORARY_PREFIX}{os.getpid()}-{HOST_TAG}-{secrets.token_hex(6)}"


def make_folder(folder: Path, *, shared: bool = False) -> None:
    """`folder` and any missing parents; in a shared project, group-writable and setgid."""
    missing = []
    path = folder
    while not path.is_dir() and path != path.parent:
        missing.append(path)
        path = path.parent
    if not missing:
        return
    folder.mkdir(parents=True, exist_ok=True)
    if shared:
        for created in missing:
            with contextlib.suppress(PermissionError):  # made by another account meanwhile
                os.chmod(created, stat.S_IMODE(created.stat().st_mode) | SHARED_FOLDER_BITS)


def atomic_write(path: Path, data: bytes, *, shared: bool = False) -> None:
    """Write to a temporary file beside `path`, fsync, then rename: never a partial file.

    The file gets 0666 less the umask, as any new file; in a `shared` project the group
    may read and write it too, whatever the writer's umask.
    """
    make_folder(path.parent, shared=shared)
    temporary = temporary_path(path.parent)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            if shared:
                mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
                os.fchmod(handle.fileno(), mode | SHARED_FILE_BITS)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def writer_is_gone(temporary: Path, now: float | None = None) -> bool:
    """Whether no process can still be writing `temporary`.

    True when it names a process of this machine that has ended, or when it is older than
    ABANDONED_AFTER_SECONDS; a temporary of a live process (or of another machine, while
    young) is another writer's work in progress.
    """
    match = _TEMPORARY_NAME.match(temporary.name)
    if (
        match is not None
        and match.group(2) == HOST_TAG
        and not _process_running(int(match.group(1)))
    ):
        return True
    try:
        modified = temporary.stat().st_mtime
    except FileNotFoundError:
        return False  # its writer finished (renamed it) meanwhile
    return (time.time() if now is None else now) - modified > ABANDONED_AFTER_SECONDS


def remove_abandoned(temporaries: list[Path]) -> int:
    """Delete the temporaries whose writer is gone; returns how many."""
    removed = 0
    for temporary in temporaries:
        if writer_is_gone(temporary):
            temporary.unlink(missing_ok=True)
            removed += 1
    return removed


def _process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    except OverflowError:
        return False
    return True
