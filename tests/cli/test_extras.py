"""One map from missing module to extra: in step with pyproject.toml, and used by the CLI."""

from __future__ import annotations

import re
import tomllib

import pytest
from typer.testing import CliRunner

from memgrid.core import extras
from memgrid.core.extras import (
    EXTRAS,
    MissingExtraError,
    extra_for_module,
    missing_extra_error,
    require_extra,
)
from memgrid.tui.cli import app
from tests.readme import ROOT

# Distributions whose import name differs from their name on PyPI.
IMPORT_NAMES = {"open_clip_torch": "open_clip"}


def requirement_name(requirement: str) -> str:
    name = re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower().replace("-", "_")
    return IMPORT_NAMES.get(name, name)


def test_extras_match_pyproject() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for extra, modules in EXTRAS.items():
        assert {requirement_name(r) for r in declared[extra]} == set(modules), extra


def test_every_extra_says_what_needs_it() -> None:
    assert set(extras.NEEDED_BY) == set(EXTRAS)


def test_a_module_maps_to_its_extra_by_its_top_level_name() -> None:
    assert extra_for_module("torch.nn.functional") == "gen"
    assert extra_for_module("pyarrow.parquet") == "export"
    assert extra_for_module("huggingface_hub") == "gen"  # pulled in by gen's packages
    assert extra_for_module("numpy") is None and extra_for_module(None) is None


def test_require_extra_names_the_extra_and_the_pip_command(monkeypatch) -> None:
    monkeypatch.setitem(EXTRAS, "gen", ("memgrid_no_such_module", "json"))
    with pytest.raises(MissingExtraError) as raised:
        require_extra("gen", "memgrid generate")
    assert str(raised.value) == (
        "memgrid generate: needs the `gen` extra (memgrid_no_such_module not installed); "
        "install it with pip install 'memgrid[gen]'"
    )
    assert extras.missing_modules("gen") == ("memgrid_no_such_module",)


def test_an_import_that_escapes_is_named_by_the_cli_too(monkeypatch, project) -> None:
    def lazy_import(*_: object, **__: object) -> None:
        raise ModuleNotFoundError("No module named 'diffusers'", name="diffusers")

    monkeypatch.setattr("memgrid.tui.commands.scoring.score_project", lazy_import)
    result = CliRunner().invoke(
        app, ["score", "--metric", "phash", "-p", str(project.root), "--json"], prog_name="memgrid"
    )
    assert (result.exit_code, result.stderr) == (
        1,
        "memgrid: error: memgrid score: needs the `gen` extra (diffusers not installed); "
        "install it with pip install 'memgrid[gen]'\n",
    )
    assert missing_extra_error(ModuleNotFoundError(name="numpy"), "x") is None
