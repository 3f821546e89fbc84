"""Putting grids into a project: from an import source, from the demo set, from prompt files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from memgrid.core.demo import DEMO_ENTITIES, DEMO_MODEL, DEMO_SET, demo_images
from memgrid.core.errors import InputError
from memgrid.core.importing import load_images, plan_import
from memgrid.core.prompt_files import read_prompt_file
from memgrid.core.records import GridImage
from memgrid.tui.services.project import Project


@dataclass
class ImportReport:
    grids_added: int = 0
    grids_already_present: int = 0
    images_added: int = 0
    errors: list[InputError] = field(default_factory=list)


@dataclass
class PromptsReport:
    added: int
    merged: int
    empty_skipped: int


def add_prompt_file(project: Project, path: Path) -> PromptsReport:
    prompt_file = read_prompt_file(path)
    added, merged = project.store.prompts.add_many(prompt_file.prompts)
    return PromptsReport(
        added=added,
        merged=merged + prompt_file.duplicates_in_file,
        empty_skipped=prompt_file.empty_skipped,
    )


def import_grids(
    project: Project, source: Path, on_grid: Callable[[int, int], None] | None = None
) -> ImportReport:
    """Import every grid under `source`; a grid goes in whole or not at all.

    Bad grids are reported (one error each) and left out; the good ones are stored, so
    fixing the bad ones and importing again adds just those.
    """
    plan = plan_import(source)
    report = ImportReport(errors=list(plan.errors))
    for index, planned in enumerate(plan.grids, start=1):
        try:
            loaded = load_images(planned)
        except InputError as error:
            report.errors.append(error)
            continue
        # Files first (atomic each), then one transaction for the rows: a kill between
        # the two leaves only unreferenced, complete files, which a re-import reuses.
        images = [project.images.put(checked, seed) for seed, checked in loaded]
        grid_id_before = project.store.grids.find(planned.prompt, planned.model, planned.settings)
        _, added = project.store.grids.add(
            planned.prompt,
            images,
            model=planned.model,
            settings=planned.settings,
            provenance={"imported_from": planned.origin},
            source="import",
            prompt_metadata=planned.metadata,
        )
        report.images_added += added
        if grid_id_before is None:
            report.grids_added += 1
        else:
            report.grids_already_present += 1
        if on_grid:
            on_grid(index, len(plan.grids))
    return report


def build_demo(project: Project) -> int:
    """Add the synthetic demo grids and lexicon (idempotent); returns grids added."""
    project.store.entities.add_many(DEMO_ENTITIES)
    added = 0
    for demo in DEMO_SET:
        if project.store.grids.find(demo.prompt, DEMO_MODEL, _demo_settings()) is not None:
            continue
        images: list[GridImage] = [
            project.images.put_image(image, seed) for seed, image in demo_images(demo)
        ]
        project.store.grids.add(
            demo.prompt,
            images,
            model=DEMO_MODEL,
            settings=_demo_settings(),
            provenance={"synthetic": True, "group": demo.group, "description": demo.description},
            source="demo",
            prompt_metadata={"demo_group": demo.group},
        )
        added += 1
    return added


def _demo_settings() -> dict[str, object]:
    return {"generator": "memgrid.core.demo", "seeds": 8}
