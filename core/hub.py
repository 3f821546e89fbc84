"""Hugging Face hub files for models and metric weights: from the local cache, else downloaded.

memgrid does not forbid downloads: online, a hub id resolves to its commit and downloads
into the ordinary cache (HF_HOME, HF_HUB_CACHE). Offline (HF_HUB_OFFLINE) or when the hub
cannot be reached, a cached copy is used, and a missing one is one line that says so and how
to fetch it beforehand, raised before anything is created (docs/design.md, "Generation and
import"). huggingface_hub is imported inside the functions: it comes with the `gen` extra.

The environment is read at each call rather than through huggingface_hub's constants, which
it reads once at import: a process that sets HF_HUB_OFFLINE or HF_HOME later (a test, a
notebook) is still honoured.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memgrid.core.errors import InputError, UnavailableError

TRUE_VALUES = {"1", "on", "yes", "true"}
# model_info is one small request; a hub that does not answer in this long is unreachable.
HUB_TIMEOUT_SECONDS = 10.0


class HubUnreachableError(UnavailableError):
    """The hub cannot be asked (offline or no connection) and the cache lacks what is needed."""

    title = "Hub unreachable"

    def __init__(
        self,
        what: str,
        why: str,
        download_command: str,
        alternative: str,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__(
            f"{what}: not in the local Hugging Face cache ({cache_dir or hub_cache_dir()}) and the hub is "
            f"unreachable ({why}); download it beforehand on a machine with network with "
            f"`{download_command}` (same HF_HOME), or {alternative}"
        )


@dataclass(frozen=True)
class HubSnapshot:
    """A hub repository resolved to one commit, laid out in the cache as a folder."""

    repo: str
    commit: str
    folder: Path
    requested_revision: str | None


@contextmanager
def quiet_hub_logs() -> Iterator[None]:
    """huggingface_hub's warnings off while it is asked: it logs each failed request (a
    raw "thrown while requesting HEAD ..." line), and memgrid says what went wrong in one
    line of its own."""
    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def hub_offline() -> bool:
    """HF_HUB_OFFLINE in the environment now (or as huggingface_hub read it at import)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in TRUE_VALUES:
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(constants.HF_HUB_OFFLINE)


def hub_cache_dir() -> str:
    """HF_HUB_CACHE, else HF_HOME/hub, else huggingface_hub's default cache."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    try:
        from huggingface_hub import constants
    except ImportError:
        return os.path.join(os.path.expanduser("~/.cache"), "huggingface", "hub")
    return str(constants.HF_HUB_CACHE)


def cached_file(
    repo: str, filename: str, revision: str | None = None, cache_dir: str | None = None
) -> Path | None:
    """A file of `repo` at `revision` (a branch, tag or commit) already in the cache."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(
        repo, filename, cache_dir=cache_dir or hub_cache_dir(), revision=revision
    )
    return Path(found) if isinstance(found, str) else None


def _hub_error_reason(error: BaseException) -> str | None:
    """What a hub error means for the user, or None when it is a connection failure."""
    from huggingface_hub import errors

    # Raised when the hub cannot be reached and the file is not cached; it subclasses
    # EntryNotFoundError, so it must be told apart before "no such file".
    if isinstance(error, errors.LocalEntryNotFoundError):
        return None
    if isinstance(error, errors.GatedRepoError):
        return "a gated repository: accept its terms on the hub and log in with `hf auth login`"
    if isinstance(error, errors.RepositoryNotFoundError):
        return "no such repository on the hub (or it is private: log in with `hf auth login`)"
    if isinstance(error, errors.RevisionNotFoundError):
        return "no such revision in the repository"
    if isinstance(error, errors.EntryNotFoundError | errors.RemoteEntryNotFoundError):
        return "no such file in the repository"
    return None


def _connection_problem(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"cannot connect: {text[:120]}"


def resolve_snapshot(
    repo: str,
    revision: str | None,
    download: Callable[[str, str, str], str],
    marker_file: str,
    download_command: str,
    alternative: str,
) -> HubSnapshot:
    """Resolve `repo@revision` to a commit and a complete cached folder.

    Online: the hub names the commit and `download(repo, commit, cache_dir)` fills the cache
    (a no-op when it is there) and returns the snapshot folder. Offline or unreachable: the
    cached snapshot holding `marker_file` is used, or HubUnreachableError is raised at once.
    """
    cache_dir = hub_cache_dir()
    why = "HF_HUB_OFFLINE is set"
    if not hub_offline():
        info, why = _ask_hub(repo, revision)
        if info is not None:
            commit = str(info.sha)
            folder = Path(download(repo, commit, cache_dir))
            return HubSnapshot(repo, commit, folder, revision)
    cached = cached_file(repo, marker_file, revision, cache_dir)
    if cached is None:
        raise HubUnreachableError(repo, why, download_command, alternative, cache_dir)
    return HubSnapshot(repo, cached.parent.name, cached.parent, revision)


def _ask_hub(repo: str, revision: str | None = None) -> tuple[Any, str]:
    """The repo's model info in one request without retries, or None and why the hub could
    not be reached; the hub's own answer that the repo or revision is wrong is InputError.

    Asked before any download: offline, huggingface_hub's downloads retry with backoff for
    23 s before giving up, this fails in under a second.
    """
    from huggingface_hub import HfApi

    try:
        with quiet_hub_logs():
            return HfApi().model_info(repo, revision=revision, timeout=HUB_TIMEOUT_SECONDS), ""
    except Exception as error:  # httpx, OSError and the hub's own errors all mean "no"
        reason = _hub_error_reason(error)
        if reason is not None:
            where = f"{repo}@{revision}" if revision else repo
            raise InputError(where, reason) from None
        return None, _connection_problem(error)


def hub_file(
    repo: str,
    filenames: Sequence[str],
    cache_dir: str | None = None,
    what: str | None = None,
    alternative: str = "pass a local file",
) -> Path:
    """The first of `filenames` that `repo` has, from the cache or downloaded into it."""
    cache_dir = cache_dir or hub_cache_dir()
    for name in filenames:
        found = cached_file(repo, name, cache_dir=cache_dir)
        if found is not None:
            return found
    command = f"hf download {repo} {filenames[0]}"
    if hub_offline():
        raise HubUnreachableError(
            what or repo, "HF_HUB_OFFLINE is set", command, alternative, cache_dir
        )
    info, why = _ask_hub(repo)
    if info is None:
        raise HubUnreachableError(what or repo, why, command, alternative, cache_dir)
    from huggingface_hub import hf_hub_download

    missing: BaseException | None = None
    for name in filenames:
        try:
            with quiet_hub_logs():
                return Path(hf_hub_download(repo, name, cache_dir=cache_dir))
        except Exception as error:  # see resolve_snapshot
            reason = _hub_error_reason(error)
            if reason is None:
                raise HubUnreachableError(
                    what or repo, _connection_problem(error), command, alternative, cache_dir
                ) from None
            missing = error
    raise InputError(repo, _hub_error_reason(missing) if missing else "nothing to download")
