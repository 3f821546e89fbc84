"""Fixtures for the annotation app: a demo project with signals, settings, a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from memgrid.core.records import Proposal, QueueOrder, Reason, Score
from memgrid.core.taxonomy import Category, Feature
from memgrid.db.store import Store
from memgrid.tui.app.config import AnnotateOptions, AppSettings
from memgrid.tui.services.project import Project, open_project

CATEGORY_CYCLE = (Category.UNINTENDED, Category.EXPLICIT, Category.NONE, Category.IMPLICIT)


class FakeClock:
    """A clock the test moves by hand: leases and rates without sleeping."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def heatmap_for(grid_id: int) -> list[list[float]]:
    """A made-up 8x8 map with a hot top-left corner, different per grid."""
    return [
        [
            round(1.0 if r < 3 and c < 3 else ((grid_id * 7 + r * 3 + c) % 10) / 20, 3)
            for c in range(8)
        ]
        for r in range(8)
    ]


HOT_CORNER = [0, 1, 2, 8, 9, 10, 16, 17, 18]  # the hot 3x3 tiles of heatmap_for
# Near-identical seed groups, by grid: one large group, two pairs, or none.
GROUP_CYCLE: tuple[list[list[int]], ...] = ([[0, 1, 2, 3, 4]], [[0, 1], [5, 6]], [], [])


def add_signals(store: Store) -> None:
    """Scores with heat maps, regions and near-identical groups, and proposals (with
    reasons and a feature) on every grid."""
    threshold_set = store.thresholds.add("test", {"tau_mem": 0.5}, activate=True)
    for index, grid_id in enumerate(store.grids.ids_all()):
        category = CATEGORY_CYCLE[index % len(CATEGORY_CYCLE)]
        score = round(0.3 + (index % 7) / 10, 3)
        groups = GROUP_CYCLE[index % len(GROUP_CYCLE)]
        store.scores.add(
            Score(
                grid_id,
                "tiled-l2",
                {"delta": 0.15},
                "1",
                {
                    "clique_share": score,
                    "clique_size": len(groups[0]) if groups else 1,
                    "median_distance": 0.2,
                    "extent": 0.4,
                    "region_tiles": HOT_CORNER,
                    "region_grid": 8,
                    "cliques": groups,
                },
                heatmap=heatmap_for(grid_id),
            )
        )
        store.scores.add(
            Score(grid_id, "clip", {}, "1", {}, available=False, note="no CLIP weights")
        )
        features = (Feature(category, "fixed corner", (0, 1, 8, 9)),) if category.memorized else ()
        store.proposals.add(
            Proposal(
                grid_id=grid_id,
                threshold_set_id=threshold_set.id,
                category=category,
                features=features,
                reasons=(
                    Reason("tiled-l2", f"clique share {score} >= 0.5", score, 0.5, score >= 0.5),
                    Reason("clip", "no CLIP weights: semantic rule not applied", fired=False),
                ),
                score=score,
                margin=round(score - 0.5, 3),
            )
        )


@pytest.fixture
def anyio_backend() -> str:
    """Pilot tests run on asyncio (anyio's pytest plugin drives them)."""
    return "asyncio"


@pytest.fixture
def demo_project(demo_project_dir: Path) -> Iterator[Project]:
    """The demo project (26 grids x 8 seeds) with scores and proposals added."""
    with open_project(demo_project_dir) as project:
        add_signals(project.store)
        yield project


@pytest.fixture
def bare_demo_project(demo_project_dir: Path) -> Iterator[Project]:
    """The demo project as built: no scores, no proposals."""
    with open_project(demo_project_dir) as project:
        yield project


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def settings_for(annotator: str = "alice", **changes: object) -> AppSettings:
    """Half-cell images (tests never probe the terminal), no blind share unless asked."""
    annotate = changes.pop("annotate", AnnotateOptions(blind_share=0.0))
    return AppSettings(
        annotator=annotator,
        order=QueueOrder(str(changes.pop("order", "prompt"))),
        image_protocol="halfcell",
        annotate=annotate,  # type: ignore[arg-type]
        **changes,  # type: ignore[arg-type]
    )
