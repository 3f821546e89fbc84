"""The install: core/, db/ and tui/ install as memgrid.core, memgrid.db and memgrid.tui."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"core": "memgrid.core", "db": "memgrid.db", "tui": "memgrid.tui"}


def declared_packages() -> set[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(pyproject["tool"]["setuptools"]["packages"])


def test_every_package_folder_is_declared() -> None:
    found = set()
    for folder, package in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([package, *relative.parts]))
    assert found == declared_packages()


def test_the_wheel_installs_namespaced_into_a_fresh_venv(tmp_path: Path) -> None:
    # Build from a copy so setuptools' build/ folder never lands in the checkout.
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "__snapshots__")
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(wheels),
            str(source),
        ],
        check=True,
        capture_output=True,
        cwd=source,
    )
    (wheel,) = wheels.glob("memgrid-*.whl")
    # The screens' stylesheets (CSS_PATH) are package data: without them the app cannot start.
    stylesheets = {
        f"memgrid/tui/{path.relative_to(ROOT / 'tui').as_posix()}"
        for path in (ROOT / "tui").rglob("*.tcss")
    }
    assert "memgrid/tui/app/screens/annotate.tcss" in stylesheets
    with zipfile.ZipFile(wheel) as archive:
        assert stylesheets <= set(archive.namelist())
    fresh = tmp_path / "fresh"
    venv.create(fresh, with_pip=False)
    fresh_python = fresh / "bin" / "python"
    fresh_site = Path(
        subprocess.run(
            [fresh_python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # The dependencies come from this interpreter's site-packages (a plain path entry, so its
    # editable memgrid finder is not loaded); memgrid itself only from the wheel.
    (fresh_site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(fresh_site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    names = sorted(p.name for p in fresh_site.iterdir())
    assert "memgrid" in names
    assert not {"core", "db", "tui"} & set(names), names
    # Without PYTHONPATH: a development checkout on it would shadow the wheel.
    fresh_env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}

    def run_fresh(*arguments: str) -> str:
        return subprocess.run(
            [fresh_python, *arguments],
            check=True,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=fresh_env,
        ).stdout.strip()

    probe = (
        "import memgrid.tui.cli, memgrid.core.taxonomy, memgrid.db.store; "
        "print(memgrid.tui.cli.__file__)"
    )
    assert run_fresh("-c", probe).startswith(str(fresh_site))
    stylesheet_probe = (
        "import inspect, pathlib; from memgrid.tui.app.screens.annotate import AnnotateScreen; "
        "print(pathlib.Path(inspect.getfile(AnnotateScreen)).with_name(AnnotateScreen.CSS_PATH))"
    )
    installed_css = run_fresh("-c", stylesheet_probe)
    assert installed_css.startswith(str(fresh_site)) and Path(installed_css).is_file()
    help_text = run_fresh("-m", "memgrid.tui", "--help")
    assert "memgrid" in help_text
