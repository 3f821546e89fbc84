"""The base install (`just demo`, `pipx install .`): commands that need an extra name it.

The commands run in subprocesses whose interpreter cannot import the extras' packages
(tests/base_install/sitecustomize.py says why that is the base install as far as memgrid can
tell). One runs through the real entry point; the rest share one interpreter through
CliRunner, so the test stays quick on two cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from memgrid.tui.errors import ERROR_LINE
from tests.readme import error_examples

BASE_INSTALL = Path(__file__).resolve().parents[1] / "base_install"
EXTRA_EXAMPLES = {example.argv[0]: example for example in error_examples() if example.base_install}

# Runs memgrid commands in one base-install interpreter; prints each result as JSON.
DRIVER = """
import json, sys
from typer.testing import CliRunner
from memgrid.tui.cli import app
results = []
for argv in json.loads(sys.argv[1]):
    result = CliRunner().invoke(app, argv, prog_name="memgrid")
    results.append({"argv": argv, "exit_code": result.exit_code, "stdout": result.stdout,
                    "stderr": result.stderr, "exception": repr(result.exception)})
heavy = [name for name in ("torch", "diffusers", "open_clip", "pyarrow") if name in sys.modules]
print(json.dumps({"results": results, "heavy_modules_loaded": heavy}))
"""


def base_install_environment(project: Path | None = None) -> dict[str, str]:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(BASE_INSTALL), environment.get("PYTHONPATH")])
    )
    environment.pop("MEMGRID_PROJECT", None)
    if project is not None:
        environment["MEMGRID_PROJECT"] = str(project)
    return environment


def run_in_base_install(argvs: list[list[str]], cwd: Path, project: Path) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(argvs)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=base_install_environment(project),
        check=True,
    )
    return json.loads(completed.stdout)


def test_the_interpreter_has_no_extras() -> None:
    code = (
        "import importlib.util, json\n"
        "from memgrid.core.extras import installed_extras\n"
        "try:\n    import torch\nexcept ModuleNotFoundError as error:\n    missing = error.name\n"
        "print(json.dumps([missing, installed_extras()]))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=base_install_environment(),
        check=True,
    )
    missing, extras = json.loads(completed.stdout)
    assert missing == "torch"
    assert extras["gen"] and extras["export"]


def test_generate_names_the_gen_extra_and_makes_nothing(tmp_path: Path) -> None:
    """Through the real entry point (`python -m memgrid.tui`), as an annotator would type it."""
    example = EXTRA_EXAMPLES["generate"]
    completed = subprocess.run(
        [sys.executable, "-m", "memgrid.tui", *example.argv, "-p", "fresh"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=base_install_environment(),
        check=False,
    )
    assert completed.returncode == 1
    assert completed.stderr.splitlines() == [example.expected]
    assert not (tmp_path / "fresh").exists()  # no project folder made for nothing


@pytest.fixture(scope="module")
def base_install_results(tmp_path_factory: pytest.TempPathFactory, _demo_template: Path) -> dict:
    import shutil

    workdir = tmp_path_factory.mktemp("base-install")
    project = workdir / "demo"
    shutil.copytree(_demo_template, project)
    weights = workdir / "sscd.torchscript.pt"
    weights.write_bytes(b"not really a model")
    argvs = [
        EXTRA_EXAMPLES["export"].argv,
        ["score", "--metric", "clip"],
        ["score", "--sscd", str(weights)],
        ["score", "--clip-pretrained", str(weights)],
        ["score", "--json"],
        ["doctor", "--json"],
        ["--version"],
    ]
    found = run_in_base_install(argvs, workdir, project)
    found["workdir"] = workdir
    return found


def result_of(found: dict, *argv: str) -> dict:
    (result,) = [result for result in found["results"] if result["argv"] == list(argv)]
    return result


def test_commands_that_need_an_extra_name_it_in_one_line(base_install_results: dict) -> None:
    export = EXTRA_EXAMPLES["export"]
    result = result_of(base_install_results, *export.argv)
    assert result["exit_code"] == 1 and result["stderr"].splitlines() == [export.expected]
    assert not (base_install_results["workdir"] / "labels-parquet").exists()
    for argv, where in (
        (["score", "--metric", "clip"], "--metric clip"),
        (
            ["score", "--sscd", str(base_install_results["workdir"] / "sscd.torchscript.pt")],
            "--sscd",
        ),
        (
            [
                "score",
                "--clip-pretrained",
                str(base_install_results["workdir"] / "sscd.torchscript.pt"),
            ],
            "--clip-model/--clip-pretrained",
        ),
    ):
        result = result_of(base_install_results, *argv)
        (line,) = result["stderr"].splitlines()
        assert result["exit_code"] == 1, result
        assert ERROR_LINE.match(line)["where"] == where
        assert line.endswith("install it with pip install 'memgrid[gen]'")


def test_what_the_base_install_can_do_it_does(base_install_results: dict) -> None:
    """Default scoring works, storing clip as unavailable for the missing extra; doctor reports
    the extras and no torch; nothing heavy was imported along the way."""
    score = result_of(base_install_results, "score", "--json")
    assert score["exit_code"] == 0, score
    report = json.loads(score["stdout"])
    assert "needs the `gen` extra" in report["unavailable"]["clip"]
    doctor = result_of(base_install_results, "doctor", "--json")
    assert doctor["exit_code"] == 0, doctor
    facts = json.loads(doctor["stdout"])
    assert facts["extras"]["gen"]["installed"] is False
    assert facts["extras"]["export"] == {"installed": False, "missing": ["pyarrow"]}
    assert facts["torch"] is None
    assert {advice["area"] for advice in facts["advice"]} >= {"extras"}
    version = result_of(base_install_results, "--version")
    assert version["exit_code"] == 0 and version["stdout"].startswith("memgrid ")
    assert base_install_results["heavy_modules_loaded"] == []
