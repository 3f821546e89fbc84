"""A project where every user string is hostile: prompts, models, sources, annotators,
notes, feature names, reasons, score notes, threshold-set names, a calibration run.

Built through the store and the services, as imports and the app would write them; the
app tests and bench/hostile.py open it.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from memgrid.core.calibration import Objective
from memgrid.core.records import Proposal, Reason, Score
from memgrid.core.taxonomy import Category, Feature
from memgrid.tui.services.calibration import calibrate_project
from memgrid.tui.services.project import Project, create_project
from tests.app.conftest import heatmap_for
from tests.hostile.corpus import HOSTILE_STRINGS

HOSTILE_ANNOTATOR = "ann\x1b]0;owned\x07[/oops]\u202e"
OTHER_ANNOTATOR = "bob\x1b]52;c;Y2xpcA==\x07[/x]"
HOSTILE_MODEL = "model\x1b[2J[/x]\u202eevil"
HOSTILE_THRESHOLDS = "set\x1b]0;t\x07[/x]"
SEEDS = 4
CATEGORIES = (Category.UNINTENDED, Category.EXPLICIT, Category.NONE, Category.IMPLICIT)


def hostile_prompt(index: int) -> str:
    """A prompt for grid `index`: ordinary words around one hostile string, kept unique."""
    piece = HOSTILE_STRINGS[index % len(HOSTILE_STRINGS)].replace("\x00", "")
    return f"prompt {index}: a cat {piece} on a mat"


def build_hostile_project(root: Path, grids: int = len(HOSTILE_STRINGS)) -> Path:
    with create_project(root) as project:
        add_hostile_grids(project, grids)
        add_hostile_signals(project)
        add_hostile_labels(project)
        calibrate_project(project, Objective("f1"), by_model=True, bootstraps=0)
    return root


def add_hostile_grids(project: Project, grids: int) -> None:
    for index in range(grids):
        images = [
            project.images.put_image(
                Image.new("RGB", (32, 32), (index * 7 % 256, seed * 60, 90)), seed
            )
            for seed in range(SEEDS)
        ]
        project.store.grids.add(
            hostile_prompt(index),
            images,
            model=HOSTILE_MODEL if index % 2 else "a-plain-model",
            settings={"note": HOSTILE_STRINGS[index % len(HOSTILE_STRINGS)]},
            source=HOSTILE_STRINGS[(index + 3) % len(HOSTILE_STRINGS)],
        )


def add_hostile_signals(project: Project) -> None:
    store = project.store
    thresholds = store.thresholds.add(HOSTILE_THRESHOLDS, {"tau_mem": 0.5}, activate=True)
    for index, grid_id in enumerate(store.grids.ids_all()):
        hostile = HOSTILE_STRINGS[index % len(HOSTILE_STRINGS)]
        share = round(0.3 + (index % 7) / 10, 3)
        values = {"clique_share": share, "clique_size": 2, "n_seeds": SEEDS, hostile: hostile}
        store.scores.add(Score(grid_id, "tiled-l2", {}, "1", values, heatmap=heatmap_for(grid_id)))
        store.scores.add(Score(grid_id, "clip", {}, "1", {}, available=False, note=hostile))
        category = CATEGORIES[index % len(CATEGORIES)]
        store.proposals.add(
            Proposal(
                grid_id=grid_id,
                threshold_set_id=thresholds.id,
                category=category,
                features=(Feature(category, f"feature {hostile}", (0, 1)),),
                reasons=(Reason(f"sig{hostile}", f"reason {hostile}", share, 0.5, True),),
                score=share,
                margin=share - 0.5,
            )
        )


def add_hostile_labels(project: Project) -> None:
    """Labels, skips and flags with hostile notes; disagreements for the adjudication queue."""
    store = project.store
    for index, grid_id in enumerate(store.grids.ids_all()[:12]):
        hostile = HOSTILE_STRINGS[index % len(HOSTILE_STRINGS)]
        feature = Feature(Category.UNINTENDED, f"mark {hostile}", (index % 64,))
        if index % 4 == 0:
            store.labels.skip(grid_id, HOSTILE_ANNOTATOR, note=f"skip {hostile}")
        elif index % 4 == 1:
            store.labels.flag(grid_id, HOSTILE_ANNOTATOR, note=f"flag {hostile}")
        else:
            store.labels.label(
                grid_id,
                HOSTILE_ANNOTATOR,
                CATEGORIES[index % 4],
                note=f"note {hostile}",
                features=(feature,),
            )
        store.labels.label(grid_id, OTHER_ANNOTATOR, CATEGORIES[(index + 1) % 4], note=hostile)
