"""Scoring's pool workers start from the scoring code alone, never from the CLI's script.

Each script below is run as a program, as pip's console script runs: a worker that runs it
again (as `__mp_main__`) appends its name to a mark file, which the tests then read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from memgrid.core.demo import scene
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
# pip's console script for `memgrid`, after the mark.
CONSOLE_SCRIPT = (
    RERUN_MARK
    + """
from memgrid.tui.cli import main

if __name__ == "__main__":
    sys.exit(main())
"""
)
# A program that starts scoring's pool itself, naming its script first or not.
POOL_SCRIPT = (
    RERUN_MARK
    + """
if __name__ == "__main__":
    from concurrent.futures import ProcessPoolExecutor

    from memgrid.tui.services.scoring_processes import (
        pool_context,
        start_worker,
        workers_skip_main_script,
    )

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
        env={**os.environ, "RERUN_MARK": str(mark)},
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
    assert not mark.exists()
