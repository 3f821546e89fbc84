"""The `memgrid` program's entry point (tui/program.py): a Ctrl-C while the CLI loads gets
memgrid's one line, and scoring's pool workers start from the scoring code alone, never from
the program's script.

The worker tests run each script below as a program, as pip's console script runs: a worker
that runs it again (as `__mp_main__`) appends its name to a mark file, which they then read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from memgrid.core.demo import scene
from memgrid.tui import program
from memgrid.tui.errors import error_line
from memgrid.tui.services import scoring
from memgrid.tui.services.project import Project
from tests.cli.test_score_cli import add_grid

RERUN_MARK = """
import os
import sys

if __name__ != "__main__":  # a worker running this script again
    with open(os.environ["RERUN_MARK"], "a") as mark:
        mark.write(__name__ + "\\n")
"""
# pip's console script for `memgrid` (pyproject.toml's entry point), after the mark, and a
# second mark written when scoring starts its pool (so the test knows workers ran).
CONSOLE_SCRIPT = (
    RERUN_MARK
    + """
from memgrid.tui.program import main

if __name__ == "__main__":
    from concurrent.futures import ProcessPoolExecutor

    start_pool = ProcessPoolExecutor.__init__

    def marked_start(self, *args, **kwargs):
        with open(os.environ["POOL_MARK"], "a") as mark:
            mark.write("pool\\n")
        start_pool(self, *args, **kwargs)

    ProcessPoolExecutor.__init__ = marked_start
    sys.exit(main())
"""
)
# A program that starts scoring's pool itself, naming its script first or not.
POOL_SCRIPT = (
    RERUN_MARK
    + """
if __name__ == "__main__":
    from concurrent.futures import ProcessPoolExecutor

    from memgrid.tui.program import workers_skip_main_script
    from memgrid.tui.services.scoring_processes import pool_context, start_worker

    if sys.argv[1] == "skip":
        workers_skip_main_script()
    with ProcessPoolExecutor(1, mp_context=pool_context(), initializer=start_worker) as pool:
        assert pool.submit(os.getpid).result() != os.getpid()
"""
)


def run_script(folder: Path, text: str, *args: str) -> tuple[subprocess.CompletedProcess, Path]:
    script, mark = folder / "script.py", folder / "reruns"
    script.write_text(text)
    result = subprocess.run(
        [sys.executable, str(script), *args],
        env={**os.environ, "RERUN_MARK": str(mark), "POOL_MARK": str(folder / "pools")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result, mark


@pytest.mark.parametrize(("how", "reruns"), [("plain", ["__mp_main__"]), ("skip", [])])
def test_pool_workers_rerun_the_main_script_unless_told_not_to(
    tmp_path: Path, how: str, reruns: list[str]
) -> None:
    _, mark = run_script(tmp_path, POOL_SCRIPT, how)
    assert (mark.read_text().split() if mark.exists() else []) == reruns


def test_memgrid_score_workers_never_run_the_console_script(project: Project, tmp_path: Path):
    grids = scoring.IMAGES_PER_CHUNK // 4 + 1  # four seeds each: two chunks, so the pool starts
    for number in range(grids):
        add_grid(project, f"grid {number}", [scene((number, seed)) for seed in range(4)])
    arguments = ["score", "-p", str(project.root), "--metric", "phash", "-j", "2", "--json"]
    result, mark = run_script(tmp_path, CONSOLE_SCRIPT, *arguments)
    assert json.loads(result.stdout)["grids_scored"] == grids
    assert (tmp_path / "pools").read_text() == "pool\n"  # the workers did run
    assert not mark.exists()


class InterruptedImport:
    """A finder that raises KeyboardInterrupt when `name` is imported: Ctrl-C mid-import."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name == self.name:
            raise KeyboardInterrupt


def test_ctrl_c_while_the_cli_loads_gets_the_interrupted_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(program, "workers_skip_main_script", lambda: None)  # pytest's __main__
    monkeypatch.delitem(sys.modules, "memgrid.tui.cli")
    monkeypatch.setattr(sys, "meta_path", [InterruptedImport("memgrid.tui.cli"), *sys.meta_path])
    with pytest.raises(SystemExit) as exit_info:
        program.main()
    assert exit_info.value.code == 130
    assert capsys.readouterr().err == program.INTERRUPTED_LINE + "\n"


def test_the_interrupted_line_is_memgrids_error_line() -> None:
    assert error_line("memgrid: interrupted") == program.INTERRUPTED_LINE
