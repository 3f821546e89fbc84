"""Merging projects made by shards of one run: each image and reference image once, settings
checked, scores kept only where they still hold (docs/design.md, "Generation and import")."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from memgrid.core.errors import InputError, ProjectError
from memgrid.core.generation.settings import settings_differences
from memgrid.core.generation.signal import WEN_METRIC
from memgrid.core.images import read_image_file
from memgrid.core.records import Grid, Reference
from memgrid.core.references.matching import REFERENCE_METRIC, rebased_match
from memgrid.core.user_files import resolved_path
from memgrid.db.references import Identity, identity_of
from memgrid.db.rows import canonical_json, content_key
from memgrid.tui.services.generation import GENERATED_SOURCE, wen_for
from memgrid.tui.services.project import (
    DATABASE_NAME,
    Project,
    create_project,
    open_project,
)
from memgrid.tui.services.references import BATCH, stored_reference


@dataclass
class MergeReport:
    sources: int = 0
    prompts_added: int = 0
    grids_added: int = 0
    grids_extended: int = 0
    images_added: int = 0
    duplicate_images: int = 0
    conflicting_images: int = 0
    scores_copied: int = 0
    scores_dropped: int = 0
    stale_target_scores: int = 0
    labels_not_merged: int = 0
    entities_added: int = 0  # lexicon entries the target lacked (its own are kept)
    threshold_sets_not_merged: int = 0  # with their proposals: propose again in the target
    triage_results: int = 0
    references_added: int = 0
    references_present: int = 0  # already in the target, or added from an earlier source
    # Reference matches not carried, or outdated in the target: made against another pool
    # than the merged one, or on fewer seeds (`memgrid match` again)
    reference_matches_stale: int = 0
    # Grids a shard could not give (an image file missing or unreadable): one line each;
    # every other grid is merged, and a rerun after the fix adds only what is missing.
    errors: list[str] = field(default_factory=list)


GridKey = tuple[str, str, str, str]
# A source's reference ids mapped to the target's references; None when the source's pool
# is not the merged pool, so its matches do not hold there.
ReferenceMap = dict[int, Reference] | None


def _grid_key(grid: Grid) -> GridKey:
    """A grid's identity across projects, as the store keys it: an imported grid's origin
    (its source folder) keeps two folders' grids of one prompt apart."""
    return grid.prompt, grid.model, content_key(grid.settings), grid.origin


def _generation_configs(project: Project) -> dict[str, dict[str, Any]]:
    """model + settings of each generated configuration in a project, keyed for comparison."""
    configs = {}
    for grid in project.store.grids.all():
        if grid.source == GENERATED_SOURCE:
            config = {"model": grid.model, **grid.settings}
            configs[canonical_json(config)] = config
    return configs


def _check_same_settings(projects: Sequence[Project]) -> None:
    reference: tuple[Project, dict[str, dict[str, Any]]] | None = None
    for project in projects:
        configs = _generation_configs(project)
        if not configs:
            continue  # a shard whose prompts were all triaged out has no grids
        if reference is None:
            reference = (project, configs)
            continue
        first_project, first_configs = reference
        if set(configs) != set(first_configs):
            raise ProjectError(
                f"mismatched generation settings: {project.root} vs {first_project.root} "
                f"({settings_differences(configs.values(), first_configs.values())}); merge shards of one run"
            )


def merge_projects(
    sources: Sequence[Path], into: Path, on_source: Callable[[Path], None] | None = None
) -> MergeReport:
    """Fold shard projects into one: same prompt + model + settings + seed = one image.

    Refuses sources generated with different settings. A score is carried over when the
    merged grid has exactly the seeds it was computed on (the wen signal is merged per
    seed); triage results come along; labels are not merged: label after merging.
    """
    target_root = resolved_path(into)
    resolved = [resolved_path(source) for source in sources]
    if target_root in resolved:
        raise InputError(into, "--into must not be one of the projects being merged")
    if len(set(resolved)) != len(resolved):
        raise InputError(sources[0], "a project is named twice")
    for source in sources:  # before any is opened: `memgrid init` (open's advice) is no help
        if not (source / DATABASE_NAME).exists():
            raise InputError(
                source, f"not a memgrid project (no {DATABASE_NAME}): nothing to merge"
            )
    opened = [open_project(source) for source in sources]
    try:
        _check_same_settings(opened)
        report = MergeReport(sources=len(opened))
        with create_project(into) as target:
            merged_seeds: dict[GridKey, set[int]] = {}
            for project in [target, *opened]:
                for grid in project.store.grids.all():
                    merged_seeds.setdefault(_grid_key(grid), set()).update(grid.seeds)
            pool_before = set(target.store.references.hashes_all()[0])
            maps = [_merge_references(source, target, report) for source in opened]
            pool = set(target.store.references.hashes_all()[0])
            _count_stale_scores(target, merged_seeds, pool != pool_before, report)
            for source, references in zip(opened, maps, strict=True):
                held = {r.id for r in references.values()} == pool
                _merge_one(source, target, merged_seeds, references if held else None, report)
                if on_source:
                    on_source(source.root)
        return report
    finally:
        for project in opened:
            project.close()


def _count_stale_scores(
    target: Project, merged_seeds: dict[GridKey, set[int]], pool_grew: bool, report: MergeReport
) -> None:
    """Scores already in the target that the merge outdates: those on grids it extends (but
    wen, merged per seed), and every reference match when the reference pool grows."""
    for grid in target.store.grids.all():
        extended = merged_seeds[_grid_key(grid)] != set(grid.seeds)
        if not (extended or pool_grew):
            continue
        for score in target.store.scores.where(grid_ids=[grid.id]):
            if score.metric == REFERENCE_METRIC:
                report.reference_matches_stale += 1
            elif extended and score.metric != WEN_METRIC:
                report.stale_target_scores += 1


def _merge_references(
    source: Project, target: Project, report: MergeReport
) -> dict[int, Reference]:
    """The source's reference images into the target, each once (content-addressed: same
    image, key, url and caption, same row); returns the source's ids mapped to them."""
    theirs = source.store.references.all()
    present = target.store.references.ids_where(identity_of(r) for r in theirs)
    identities: dict[int, Identity] = {}
    batch: list[Reference] = []
    added = 0

    def flush() -> None:
        nonlocal added
        added += target.store.references.add(batch)
        batch.clear()

    for reference in theirs:
        if identity_of(reference) in present:
            identities[reference.id] = identity_of(reference)
            continue
        # The shard's database names the file: it must not lead out of the shard's folder,
        # and the image's hash and pHash are computed here, not taken from that database.
        checked = read_image_file(source.root / reference.path, inside=source.root)
        new = stored_reference(
            target, checked, reference.key, reference.url, reference.caption, reference.origin
        )
        identities[reference.id] = identity_of(new)
        batch.append(new)
        if len(batch) >= BATCH:
            flush()
    flush()
    ids = target.store.references.ids_where(identities.values())
    stored = target.store.references.get_many(ids.values())
    report.references_added += added
    report.references_present += len(theirs) - added
    return {old: stored[ids[identity]] for old, identity in identities.items()}


def _merge_one(
    source: Project,
    target: Project,
    merged_seeds: dict[GridKey, set[int]],
    references: ReferenceMap,
    report: MergeReport,
) -> None:
    store = source.store
    added, _ = target.store.prompts.add_many((p.text, p.metadata) for p in store.prompts.all())
    report.prompts_added += added
    report.labels_not_merged += len(store.labels.votes_where())
    known = {entity.name for entity in target.store.entities.all()}
    report.entities_added += target.store.entities.add_many(
        entity for entity in store.entities.all() if entity.name not in known
    )
    report.threshold_sets_not_merged += len(store.thresholds.all())
    for result in store.triage.all():  # a shard's skipped prompts have no grid to carry it
        target.store.triage.add(result)
        report.triage_results += 1
    for grid in store.grids.all():
        complete = merged_seeds[_grid_key(grid)] == set(grid.seeds)
        try:
            _merge_grid(source, grid, target, complete, references, report)
        except InputError as error:
            report.errors.append(f"{error} (grid {grid.id} of {source.root} not merged)")


def _merge_grid(
    source: Project,
    grid: Grid,
    target: Project,
    complete: bool,
    references: ReferenceMap,
    report: MergeReport,
) -> None:
    """Copy one grid's missing seeds and its scores in one transaction."""
    existing_id = target.store.grids.find(grid.prompt, grid.model, grid.settings, grid.origin)
    existing = (
        {image.seed: image for image in target.store.grids.get(existing_id).images}
        if existing_id is not None
        else {}
    )
    new_images = []
    for image in grid.images:
        present = existing.get(image.seed)
        if present is not None:
            report.duplicate_images += 1
            if present.sha256 != image.sha256:
                report.conflicting_images += 1
                complete = False  # its scores were made on pixels the target does not keep
            continue
        # The shard's database names the file: it must not lead out of the shard's folder.
        checked = read_image_file(source.image_path(image), inside=source.root)
        new_images.append(target.images.put(checked, image.seed))
    with target.store.atomic():
        grid_id, added = target.store.grids.add(
            grid.prompt,
            new_images,
            model=grid.model,
            settings=grid.settings,
            provenance=grid.provenance,
            source=grid.source,
            origin=grid.origin,
        )
        report.images_added += added
        if existing_id is None:
            report.grids_added += 1
        elif added:
            report.grids_extended += 1
        for score in source.store.scores.where(grid_ids=[grid.id]):
            if score.metric == WEN_METRIC and score.available:
                earlier = target.store.scores.where(grid_ids=[grid_id], metric=WEN_METRIC)
                target.store.scores.add(wen_for([*earlier, score], grid_id, grid.settings, {}))
            elif score.metric == REFERENCE_METRIC:
                rebased = None
                if complete and references is not None:
                    rebased = rebased_match(score, grid_id, references)
                if rebased is None:
                    report.reference_matches_stale += 1
                    continue
                target.store.scores.add(rebased)
            elif complete:
                target.store.scores.add(replace(score, grid_id=grid_id))
            else:
                report.scores_dropped += 1
                continue
            report.scores_copied += 1
