"""Putting grids into a project: from an import source, from the demo set, from prompt files."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from memgrid.core.demo import DEMO_ENTITIES, DEMO_MODEL, DEMO_SET, demo_images
from memgrid.core.display_text import has_control_characters
from memgrid.core.errors import InputError, Interrupted
from memgrid.core.images import CheckedImage
from memgrid.core.importing import PlannedGrid, load_images, plan_import
from memgrid.core.prompt_files import read_prompt_file
from memgrid.core.records import GridImage
from memgrid.tui.services.project import Project
from memgrid.tui.services.references import add_demo_references

# The source the demo's grids are stored with (imports: "import", generations: "generate").
DEMO_SOURCE = "demo"


@dataclass
class ImportReport:
    grids_found: int = 0
    grids_added: int = 0
    grids_already_present: int = 0
    images_added: int = 0
    errors: list[InputError] = field(default_factory=list)
    # Stored exactly (they are data) and shown escaped; the count tells the person.
    prompts_with_control_characters: int = 0
    # Grids stored without a prompt (no prompt.txt): the run says how many, so that a
    # missing file is not found out only when proposals say "prompt unknown".
    grids_without_prompt: int = 0


class ImportInterrupted(Interrupted):
    """Ctrl-C during an import, with what the run had stored by then."""

    report: ImportReport


@dataclass
class PromptsReport:
    added: int
    merged: int
    empty_skipped: int
    prompts_with_control_characters: int = 0


def add_prompt_file(project: Project, path: Path) -> PromptsReport:
    prompt_file = read_prompt_file(path)
    added, merged = project.store.prompts.add_many(prompt_file.prompts)
    return PromptsReport(
        added=added,
        merged=merged + prompt_file.duplicates_in_file,
        empty_skipped=prompt_file.empty_skipped,
        prompts_with_control_characters=sum(
            has_control_characters(prompt) for prompt, _ in prompt_file.prompts
        ),
    )


def import_grids(
    project: Project, source: Path, on_grid: Callable[[int, int], None] | None = None
) -> ImportReport:
    """Import every grid under `source`; a grid goes in whole or not at all.

    Bad grids are reported (one error each) and left out; the good ones are stored, so
    fixing the bad ones and importing again adds just those. Ctrl-C raises ImportInterrupted
    with the report so far (each grid is stored as it goes in).
    """
    plan = plan_import(source)
    report = ImportReport(grids_found=len(plan.grids), errors=list(plan.errors))
    try:
        _import_planned(project, plan.grids, report, on_grid)
    except KeyboardInterrupt:
        raise ImportInterrupted(report) from None
    return report


def _import_planned(
    project: Project,
    grids: Sequence[PlannedGrid],
    report: ImportReport,
    on_grid: Callable[[int, int], None] | None,
) -> None:
    with_controls: set[str] = set()
    for index, planned in enumerate(grids, start=1):
        try:
            loaded = load_images(planned)
        except InputError as error:
            report.errors.append(error)
            continue
        grid_id_before = project.store.grids.find(
            planned.prompt, planned.model, planned.settings, planned.key
        )
        try:
            _check_collisions(project, grid_id_before, planned, loaded)
        except InputError as error:
            report.errors.append(error)
            continue
        # Files first (atomic each), then one transaction for the rows: a kill between
        # the two leaves only unreferenced, complete files, which a re-import reuses.
        images = [project.images.put(checked, seed) for seed, checked in loaded]
        _, added = project.store.grids.add(
            planned.prompt,
            images,
            model=planned.model,
            settings=planned.settings,
            provenance={"imported_from": planned.origin},
            source="import",
            prompt_metadata=planned.metadata,
            origin=planned.key,
        )
        report.images_added += added
        if has_control_characters(planned.prompt):
            with_controls.add(planned.prompt)
        report.prompts_with_control_characters = len(with_controls)
        if grid_id_before is None:
            report.grids_added += 1
            report.grids_without_prompt += not planned.prompt
        else:
            report.grids_already_present += 1
        if on_grid:
            on_grid(index, len(grids))


def _check_collisions(
    project: Project,
    grid_id: int | None,
    planned: PlannedGrid,
    loaded: list[tuple[int, CheckedImage]],
) -> None:
    """A seed already stored for this grid with other bytes is an error naming both files."""
    if grid_id is None:
        return
    grid = project.store.grids.get(grid_id)
    stored = {image.seed: image for image in grid.images}
    paths = {image.seed: image.path for image in planned.images}
    for seed, checked in loaded:
        earlier = stored.get(seed)
        if earlier is not None and earlier.sha256 != hashlib.sha256(checked.data).hexdigest():
            imported_from = grid.provenance.get("imported_from", "an earlier import")
            raise InputError(
                paths[seed],
                f"seed {seed} is already stored for this grid with different bytes "
                f"({project.image_path(earlier)}, imported from {imported_from}); "
                "nothing of this grid was imported",
            )


def build_demo(project: Project) -> int:
    """Add the synthetic demo grids, lexicon and reference set (idempotent); returns grids added.

    A project with grids of its own is refused before anything is added: the synthetic
    grids, references and entities would mix into its reports, matches and proposals, and
    nothing takes them out again."""
    table = project.store.grids.table_all()  # every grid's source, and every prompt
    own_grids = sum(source != DEMO_SOURCE for source in table.sources)
    demo_prompts = {demo.prompt for demo in DEMO_SET}
    own_prompts = sum(text not in demo_prompts for text in table.prompts.values())
    if own_grids or own_prompts:
        held = f"{own_grids} grids" if own_grids else f"{own_prompts} prompts"
        raise InputError(
            project.root,
            f"holds {held} of its own; the demo goes in a folder of its own "
            "(choose another --project)",
        )
    project.store.entities.add_many(DEMO_ENTITIES)
    add_demo_references(project)
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
            source=DEMO_SOURCE,
            prompt_metadata={"demo_group": demo.group},
        )
        added += 1
    return added


def _demo_settings() -> dict[str, object]:
    return {"generator": "memgrid.core.demo", "seeds": 8}
