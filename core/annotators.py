"""Who labels: the OS account behind every label event, and the project's `[annotators]` table.

docs/design.md, "Who labelled": `--annotator` is a name the person types; the OS user
(and the SSH client's address, when there is one) is what the system says, and is stored
with every event. When the project's memgrid.toml has an `[annotators]` table, a name may
only be used by the OS users it lists, and only in the roles it grants:

    [annotators]
    alice = { users = ["alice"], roles = ["annotator", "adjudicator"] }
    bob = { users = ["bob", 1003] }      # roles default to ["annotator"]; a uid is allowed

The table is trusted only when nobody but the project folder's owner (or root) could have
written it: memgrid.toml must be owned by them and writable by its owner alone.
"""

from __future__ import annotations

import getpass
import os
import pwd
import stat
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from memgrid.core.errors import InputError, NotAllowedError
from memgrid.core.taxonomy import LabelAction
from memgrid.core.text_files import decode_text, parse_toml
from memgrid.core.user_files import open_user_file

ANNOTATORS_SECTION = "annotators"
PROJECT_CONFIG_NAME = "memgrid.toml"  # in the project folder: [keys], [annotate], [annotators]


class Role(StrEnum):
    ANNOTATOR = "annotator"  # labels, skips, flags (and undoes them)
    ADJUDICATOR = "adjudicator"  # sets a contested grid's final label


def role_for(action: LabelAction) -> Role:
    """The role an event of `action` needs (an undo needs the role of what it undoes)."""
    return Role.ADJUDICATOR if action is LabelAction.ADJUDICATE else Role.ANNOTATOR


@dataclass(frozen=True)
class OsIdentity:
    """The account a process runs as, as the operating system tells it."""

    user: str  # the login name, or the uid as digits when the uid has no name
    uid: int
    ssh_client: str = ""  # the SSH client's address, when this runs in an SSH session

    @classmethod
    def of_this_process(cls) -> OsIdentity:
        uid = os.getuid()
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)
        # SSH_CONNECTION is "client-address client-port server-address server-port".
        connection = os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_CLIENT") or ""
        return cls(user=user, uid=uid, ssh_client=connection.split(" ", 1)[0])


@dataclass(frozen=True)
class AnnotatorBinding:
    name: str
    users: frozenset[str]  # login names, and uids as digits
    roles: frozenset[Role]

    def allows(self, identity: OsIdentity) -> bool:
        return identity.user in self.users or str(identity.uid) in self.users


@dataclass(frozen=True)
class AnnotatorTable:
    """The project's `[annotators]` table: each name's OS users and roles."""

    bindings: dict[str, AnnotatorBinding]
    source: str

    def check(self, annotator: str, identity: OsIdentity, role: Role) -> None:
        """Refuse (NotAllowedError) unless `identity` may act as `annotator` in `role`."""
        binding = self.bindings.get(annotator)
        if binding is None:
            raise NotAllowedError(
                f"--annotator {annotator}",
                f"not in the [annotators] table of {self.source} "
                f"(names there: {', '.join(sorted(self.bindings)) or 'none'})",
            )
        if not binding.allows(identity):
            raise NotAllowedError(
                f"--annotator {annotator}",
                f"OS user {identity.user} may not label as {annotator} "
                f"(allowed: {', '.join(sorted(binding.users))}; {self.source})",
            )
        if role not in binding.roles:
            raise NotAllowedError(
                f"--annotator {annotator}",
                f"has no {role} role in {self.source} (roles: {', '.join(sorted(binding.roles))})",
            )

    def names_for(self, identity: OsIdentity) -> list[str]:
        """The names `identity` may label as."""
        return sorted(name for name, b in self.bindings.items() if b.allows(identity))


def read_annotator_table(path: Path, folder_owner: int) -> AnnotatorTable | None:
    """The `[annotators]` table of the project's memgrid.toml at `path`, if it has one.

    Refused (InputError naming the file) when the file could have been written by someone
    other than `folder_owner` or root, or when the table is malformed.
    """
    if not os.path.lexists(path):
        return None
    with open_user_file(path) as handle:
        info = os.fstat(handle.fileno())  # the file read, not whatever the name holds later
        data = _toml(handle.read(), path)
    if ANNOTATORS_SECTION not in data:
        return None
    _check_trusted(path, info, folder_owner)
    return parse_annotator_table(data[ANNOTATORS_SECTION], str(path))


MAX_NAME = 200  # annotator names, and label files' event ids


def name_problem(name: str) -> str | None:
    """Why `name` cannot name an annotator or an event, or None if it can: a label file
    carries it out and back as typed, so no control characters, no spaces around it, not
    empty, at most MAX_NAME characters. `--annotator` is held to the same rule."""
    if not name.strip():
        return "is empty"
    if name != name.strip() or not name.isprintable():
        return "has control characters or outer spaces"
    if len(name) > MAX_NAME:
        return f"is longer than {MAX_NAME} characters"
    return None


def parse_annotator_table(table: Any, source: str) -> AnnotatorTable:
    if not isinstance(table, dict):
        raise InputError(source, f"[{ANNOTATORS_SECTION}] must be a table")
    bindings = {}
    for name, entry in table.items():
        where = f"{ANNOTATORS_SECTION}.{name}"
        if problem := name_problem(name):  # the name every label of theirs is stored under
            raise InputError(source, f"annotator name {name!r} {problem}", where)
        if not isinstance(entry, dict) or set(entry) - {"users", "roles"}:
            raise InputError(source, 'each annotator is a table of "users" and "roles"', where)
        users = entry.get("users")
        if not isinstance(users, list) or not users:
            raise InputError(source, '"users" must be a non-empty list of logins or uids', where)
        if not all(
            (isinstance(user, str) and user.strip()) or (type(user) is int and user >= 0)
            for user in users
        ):
            raise InputError(source, '"users" holds logins (text) or uids (whole numbers)', where)
        roles = entry.get("roles", [Role.ANNOTATOR.value])
        known = {role.value for role in Role}
        if not isinstance(roles, list) or not roles or not set(map(str, roles)) <= known:
            raise InputError(
                source, f'"roles" must list some of: {", ".join(sorted(known))}', where
            )
        bindings[name] = AnnotatorBinding(
            name=name,
            users=frozenset(str(user).strip() for user in users),
            roles=frozenset(Role(role) for role in roles),
        )
    return AnnotatorTable(bindings=bindings, source=source)


def _toml(data: bytes, path: Path) -> dict[str, Any]:
    return parse_toml(decode_text(data, path), path)


def _check_trusted(path: Path, info: os.stat_result, folder_owner: int) -> None:
    if path.is_symlink():
        raise InputError(
            path, f"holds [{ANNOTATORS_SECTION}] but is a link: its bindings cannot be trusted"
        )
    if info.st_uid not in (folder_owner, 0):
        raise InputError(
            path,
            f"holds [{ANNOTATORS_SECTION}] but belongs to uid {info.st_uid}, not to the "
            f"project folder's owner (uid {folder_owner}): its bindings cannot be trusted",
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise InputError(
            path,
            f"holds [{ANNOTATORS_SECTION}] but is writable by others "
            f"({stat.filemode(info.st_mode)}); make it owner-only: chmod go-w {path}",
        )


def default_annotator(table: AnnotatorTable | None = None) -> str:
    """Who labels when `--annotator` is not given: with an [annotators] table, the one name
    it binds to this OS user; else the login name."""
    if table is not None:
        names = table.names_for(OsIdentity.of_this_process())
        if len(names) == 1:
            return names[0]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "annotator"
