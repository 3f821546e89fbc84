"""Two real accounts on one project: `init --shared`, the permission check at open, and a
read-only project, each run as other uids through setpriv (numeric ids; no /etc/passwd
entries needed). Switching uids needs root: CI runs as root.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import write_image

SETPRIV = shutil.which("setpriv")
pytestmark = pytest.mark.skipif(
    os.getuid() != 0 or SETPRIV is None, reason="running as other uids needs root and setpriv"
)

GROUP = 4100  # the annotators' group
OWNER = 4101  # made the project
OTHER = 4102  # a second annotator, in GROUP
OUTSIDER = 4103  # in no group of the project
PYTHON = sys.executable  # the venv's own (its pyvenv.cfg finds the installed packages)
# Each program run as another account sets its umask first, then runs the CLI or a script.
SET_UMASK = "import os, sys\nos.umask(int(sys.argv.pop(1), 8))\n"
RUN_CLI = (
    "import runpy\nsys.argv[0] = 'memgrid'\n"
    "runpy.run_module('memgrid.tui', run_name='__main__', alter_sys=True)\n"
)
# Labels the way the app does, through the store, as whoever runs it.
LABEL_SCRIPT = """
import sys
from pathlib import Path
from memgrid.core.taxonomy import Category
from memgrid.tui.services.project import open_project
with open_project(Path(sys.argv[1])) as project:
    grid_id = project.store.grids.ids_all()[-1]
    event = project.store.labels.label(grid_id, sys.argv[2], Category.UNINTENDED)
    print(event.id, event.os_user)
    if len(sys.argv) > 3:  # hold the database open (its -wal and -shm) until told
        print("open", flush=True)
        sys.stdin.readline()
"""


@pytest.fixture
def base() -> Iterator[Path]:
    """A folder every uid can reach (pytest's tmp_path is private to root), and a checkout
    the other uids can run memgrid from: a clone in a private folder (`mktemp -d` makes
    them 0700) gets search permission for others on its folders until the test ends."""
    folder = Path(tempfile.mkdtemp(prefix="memgrid-uids-"))
    folder.chmod(0o755)
    private = [
        parent
        for parent in Path(__file__).resolve().parents
        if not parent.stat().st_mode & stat.S_IXOTH
    ]
    modes_before = {parent: parent.stat().st_mode for parent in private}
    for parent, mode in modes_before.items():
        parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
    try:
        yield folder
    finally:
        for parent, mode in modes_before.items():
            parent.chmod(stat.S_IMODE(mode))
        shutil.rmtree(folder, ignore_errors=True)


def as_user(
    uid: int,
    *args: str,
    gid: int | None = None,
    groups: tuple[int, ...] = (),
    umask: int = 0o022,
    home: Path,
    script: str | None = None,
    **popen: object,
) -> subprocess.Popen[str] | subprocess.CompletedProcess[str]:
    """Run `memgrid ARGS` (or a Python `script` with ARGS) as uid, with that umask."""
    groups_option = f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups"
    command = [
        SETPRIV,
        f"--reuid={uid}",
        f"--regid={gid if gid is not None else uid}",
        groups_option,
        "--",
        PYTHON,
        "-c",
        SET_UMASK + (script or RUN_CLI),
        f"{umask:03o}",
        *args,
    ]
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "LANG": "C.UTF-8",
    }
    if popen:
        return subprocess.Popen(command, env=environment, text=True, **popen)  # type: ignore[call-overload]
    return subprocess.run(command, env=environment, text=True, capture_output=True, timeout=120)


def make_source(folder: Path, prompt: str, shade: int = 0) -> Path:
    grid = folder / "grid"
    grid.mkdir(parents=True)
    (grid / "prompt.txt").write_text(prompt)
    for seed in range(3):
        write_image(grid / f"{seed:04d}.png", (seed * 60, 20 + shade, 90))
    for path in [folder, grid, *grid.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def home_of(base: Path, uid: int) -> Path:
    home = base / f"home-{uid}"
    home.mkdir(exist_ok=True)
    os.chown(home, uid, uid)
    return home


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def modes(root: Path, *names: str) -> dict[str, int]:
    return {name: stat.S_IMODE((root / name).stat().st_mode) for name in names}


def test_a_shared_project_serves_two_accounts_whatever_their_umask(base: Path) -> None:
    os.chown(base, OWNER, OWNER)
    root = base / "project"
    owner_home, other_home = home_of(base, OWNER), home_of(base, OTHER)
    owner = {"groups": (GROUP,), "home": owner_home}
    other = {"groups": (GROUP,), "home": other_home}
    first, second = make_source(base / "src1", "first prompt"), make_source(base / "src2", "b", 100)

    made = ok(as_user(OWNER, "init", str(root), "--shared", "--group", str(GROUP), **owner))
    assert "shared with group" in made
    ok(as_user(OWNER, "import", str(first), "-p", str(root), **owner))
    # The second annotator imports and labels with umask 022: the group still gets write.
    ok(as_user(OTHER, "import", str(second), "-p", str(root), **other))
    holder = as_user(
        OTHER,
        str(root),
        "bo",
        "hold",
        script=LABEL_SCRIPT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **other,
    )
    assert isinstance(holder, subprocess.Popen)
    labelled = holder.stdout.readline().split()  # type: ignore[union-attr]
    assert labelled, holder.communicate(timeout=60)[1]
    assert labelled[1] == str(OTHER)  # the OS account, whatever name it labels as
    assert holder.stdout.readline().strip() == "open"  # type: ignore[union-attr]
    try:
        # The other account holds the database open: its -wal and -shm exist meanwhile.
        assert all(
            m & 0o060 == 0o060 for m in modes(root, "memgrid.db-wal", "memgrid.db-shm").values()
        )
        ok(as_user(OWNER, "score", "-p", str(root), "--metric", "tiled-l2", **owner))
        ok(as_user(OWNER, "propose", "-p", str(root), **owner))
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0
    status = json.loads(ok(as_user(OWNER, "status", "-p", str(root), "--json", **owner)))
    assert status["grids"] == 2 and status["annotators"] == ["bo"]

    assert stat.S_IMODE(root.stat().st_mode) & 0o2070 == 0o2070
    assert modes(root, "memgrid.db")["memgrid.db"] & 0o060 == 0o060
    images = [path for path in (root / "images").rglob("*") if path.is_file()]
    assert len(images) == 6
    for path in images:
        assert stat.S_IMODE(path.stat().st_mode) == 0o664, path
        assert path.stat().st_gid == GROUP and path.parent.stat().st_gid == GROUP
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o2775
    owners = {path.stat().st_uid for path in images}
    assert owners == {OWNER, OTHER}


def test_umask_002_without_init_shared_gives_a_group_writable_database(base: Path) -> None:
    os.chown(base, OWNER, GROUP)
    root = base / "project"
    owner = {"gid": GROUP, "umask": 0o002, "home": home_of(base, OWNER)}
    ok(as_user(OWNER, "init", str(root), **owner))
    ok(as_user(OWNER, "import", str(make_source(base / "src", "p")), "-p", str(root), **owner))
    assert modes(root, "memgrid.db")["memgrid.db"] == 0o664
    label = as_user(
        OTHER, str(root), "bo", script=LABEL_SCRIPT, groups=(GROUP,), home=home_of(base, OTHER)
    )
    assert ok(label).split()[1] == str(OTHER)


def test_the_check_at_open_names_the_file_and_the_permission(base: Path) -> None:
    os.chown(base, OWNER, OWNER)
    root = base / "project"
    owner_home = home_of(base, OWNER)
    ok(as_user(OWNER, "init", str(root), home=owner_home))  # umask 022: memgrid.db 0644
    os.chown(root, OWNER, GROUP)
    root.chmod(0o2775)  # the folder opened to the group by hand, the database not
    result = as_user(OTHER, "status", "-p", str(root), groups=(GROUP,), home=home_of(base, OTHER))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"memgrid: error: {root / 'memgrid.db'}: uid {OTHER} cannot write it (-rw-r--r--, owner "
        f"uid {OWNER}, group gid {OWNER}): not shared with the folder's group gid {GROUP}; "
        f"its owner runs `memgrid init --shared {root}`"
    ]
    ok(
        as_user(
            OWNER,
            "init",
            str(root),
            "--shared",
            "--group",
            str(GROUP),
            groups=(GROUP,),
            home=owner_home,
        )
    )
    ok(as_user(OTHER, "status", "-p", str(root), groups=(GROUP,), home=home_of(base, OTHER)))


def test_a_project_in_a_read_only_folder_can_be_read(base: Path) -> None:
    os.chown(base, OWNER, OWNER)
    root = base / "project"
    owner = {"home": home_of(base, OWNER)}
    ok(as_user(OWNER, "init", str(root), **owner))
    ok(
        as_user(
            OWNER, "import", str(make_source(base / "src", "a prompt")), "-p", str(root), **owner
        )
    )
    outsider_home = home_of(base, OUTSIDER)
    reader = {"home": outsider_home}
    status = json.loads(ok(as_user(OUTSIDER, "status", "-p", str(root), "--json", **reader)))
    assert status["grids"] == 1
    assert "a prompt" in ok(as_user(OUTSIDER, "show", "1", "-p", str(root), **reader))
    out = outsider_home / "export"
    ok(as_user(OUTSIDER, "export", "-f", "jsonl", "-o", str(out), "-p", str(root), **reader))
    assert (out / "export.json").exists()
    refused = as_user(OUTSIDER, "annotate", "-p", str(root), **reader)
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        f"memgrid: error: {root}: read-only for you (the folder is not writable): labels "
        "could not be saved; `memgrid status` and `memgrid export` still work"
    ]
    # The owner's own read-only folder too (a finished project, kept for reference).
    root.chmod(0o555)
    assert (
        json.loads(ok(as_user(OWNER, "status", "-p", str(root), "--json", **owner)))["grids"] == 1
    )
    assert sorted(path.name for path in root.iterdir()) == ["images", "memgrid.db", "thumbs"]
