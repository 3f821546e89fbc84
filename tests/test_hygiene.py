"""The layering rules, checked at run time: light imports stay light."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from memgrid import core, db

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "diffusers", "open_clip", "transformers")
UI = ("textual", "typer", "rich", "textual_image")


def loaded_after_import(module: str, watched: tuple[str, ...]) -> list[str]:
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        f"print(' '.join(n for n in {watched!r} if n in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return result.stdout.split()


def modules_of(package) -> list[str]:
    return [m.name for m in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")]


@pytest.mark.parametrize("module", modules_of(core) + modules_of(db))
def test_core_and_db_never_load_ui_or_heavy_packages(module: str) -> None:
    assert loaded_after_import(module, UI + HEAVY) == []


def test_cli_does_not_import_torch() -> None:
    assert loaded_after_import("memgrid.tui.cli", HEAVY) == []


def test_scoring_workers_load_neither_the_store_nor_scipy() -> None:
    """What the pool's forkserver preloads: the worker side and the pixel metrics, without
    SQLite's layer (workers never touch the store) or scipy (a quarter second a start)."""
    from memgrid.tui.services.scoring_processes import PRELOADED

    code = (
        "import sys, importlib; [importlib.import_module(m) for m in "
        f"{list(PRELOADED)!r}]; "
        "print(' '.join(n for n in ('memgrid.db', 'sqlite_utils', 'scipy') if n in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.split() == []


def test_the_annotation_app_and_the_store_do_not_import_pandas() -> None:
    """pandas is installed with the dev extra (imagededup, img2dataset) and in many users'
    environments; sqlite-utils would import it at start-up (db/__init__.py says why not)."""
    for module in ("memgrid.db.store", "memgrid.tui.app.app", "memgrid.tui.cli"):
        assert loaded_after_import(module, ("pandas", "pyarrow")) == [], module
    code = "import memgrid.db.store, pandas; print(pandas.Timestamp(0).year)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip() == "1970"  # still importable for whoever needs it


def test_every_tui_module_is_free_of_heavy_imports() -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        "from memgrid import tui\n"
        "for m in pkgutil.walk_packages(tui.__path__, 'memgrid.tui.'):\n"
        "    if m.name != 'memgrid.tui.__main__': importlib.import_module(m.name)\n"
        f"print(' '.join(n for n in {HEAVY!r} if n in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.split() == []


def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports)], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


MAX_LINES = 500
MAX_METHODS = 30
# core/categorizer.py and core/attribution.py are still over the line limit (being reworked
# with the detector); add "core" here once they are split.
LINE_CHECKED = ("db", "tui")


def python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def test_no_file_is_over_500_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): count
        for path in python_files(*LINE_CHECKED)
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_no_class_has_over_30_methods() -> None:
    crowded = {}
    for path in python_files("core", "db", "tui"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                methods = [
                    item
                    for item in node.body
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                ]
                if len(methods) > MAX_METHODS:
                    crowded[f"{path.relative_to(ROOT)}:{node.name}"] = len(methods)
    assert crowded == {}
