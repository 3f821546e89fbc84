"""Shared fixtures: projects in temporary folders, a CLI runner, the demo project."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from PIL import Image
from typer.testing import CliRunner

from memgrid.core.records import LabelEvent, QueueOrder
from memgrid.db.queue import AnnotationQueue
from memgrid.db.store import Store
from memgrid.tui.services.ingest import build_demo
from memgrid.tui.services.project import Project, create_project

# CI runs a bounded number of property examples; `just test-thorough` runs many more.
settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "thorough",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the developer's own project and config out of tests."""
    monkeypatch.delenv("MEMGRID_PROJECT", raising=False)
    monkeypatch.delenv("MEMGRID_IMAGE_PROTOCOL", raising=False)
    # `memgrid annotate` hands its colour depth to Textual through the environment.
    monkeypatch.delenv("TEXTUAL_COLOR_SYSTEM", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    # memgrid fetches hub weights when it can; tests never reach for the network.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # A suite run inside torchrun or a Slurm array must not shard the tests' own runs.
    for launcher_variable in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"):
        monkeypatch.delenv(launcher_variable, raising=False)
    for slurm_variable in ("ID", "COUNT", "MIN", "STEP"):
        monkeypatch.delenv(f"SLURM_ARRAY_TASK_{slurm_variable}", raising=False)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    with create_project(tmp_path / "project") as opened:
        yield opened


@pytest.fixture(scope="session")
def _demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo-template") / "demo"
    with create_project(root) as opened:
        build_demo(opened)
    return root


@pytest.fixture
def demo_project_dir(_demo_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the demo project (built once per session)."""
    return project_copy(_demo_template, tmp_path)


def project_copy(template: Path, folder: Path) -> Path:
    """A copy of a project built once (a fixture's template), for one test to change."""
    target = folder / "demo"
    shutil.copytree(template, target)
    return target


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def interrupt_at_call(
    monkeypatch: pytest.MonkeyPatch, owner: object, name: str, call: int = 1
) -> None:
    """Ctrl-C (KeyboardInterrupt) at the `call`-th call of `owner.name`; the calls before it
    run for real."""
    real = getattr(owner, name)
    calls = []

    def run_or_interrupt(*args: object, **kwargs: object) -> object:
        calls.append(None)
        if len(calls) == call:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, run_or_interrupt)


def write_image(path: Path, color: tuple[int, int, int], size: int = 32) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), color).save(path)
    return path


def vote_of(store: Store, grid_id: int, annotator: str) -> LabelEvent | None:
    """The annotator's vote on the grid (their latest label, skip or flag that counts)."""
    votes = store.labels.votes_where(grid_ids=[grid_id], annotator=annotator)
    return votes[0] if votes else None


def open_grids(store: Store, annotator: str, limit: int = 1) -> list[int]:
    """The next grids open to the annotator in prompt order (the order the tests' sessions use)."""
    return AnnotationQueue(store, annotator, order=QueueOrder.PROMPT).next_open(limit)
