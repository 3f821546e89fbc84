"""Generating seed grids into a project, triaging prompts first, and merging shard projects.

The CLI and the app call these functions; torch loads only when a model is loaded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from memgrid.core.errors import InputError, ProjectError
from memgrid.core.generation import pipeline as generation
from memgrid.core.generation.settings import (
    GenerationSettings,
    Shard,
    TriageCost,
    check_settings_numbers,
)
from memgrid.core.generation.signal import (
    WEN_METRIC,
    mean_first_steps,
    stored_norms,
    unavailable_wen_score,
    wen_score,
)
from memgrid.core.images import CheckedImage, read_image_file
from memgrid.core.prompt_files import read_prompt_file
from memgrid.core.records import Grid, Score, TriageRecord
from memgrid.db.rows import canonical_json, content_key
from memgrid.tui.services.project import Project, create_project, open_project

GENERATED_SOURCE = "generate"


@dataclass(frozen=True)
class GenerateRequest:
    """What `memgrid generate` was asked to do, before the model is loaded."""

    model: str
    seeds: list[int]
    steps: int = 50
    guidance: float = 7.5
    size: int | None = None
    scheduler: str | None = None
    dtype: str = "auto"
    device: str = "auto"
    batch: int = 4
    prompts_file: Path | None = None
    shard: Shard | None = None
    triage_steps: int | None = None
    triage_threshold: float | None = None
    negative_prompt: str = ""


@dataclass(frozen=True)
class TriageResult:
    prompt: str
    value: float
    kept: bool


@dataclass
class GenerateReport:
    model: str = ""
    device: str = ""
    settings: GenerationSettings | None = None
    prompts: int = 0
    already_complete: int = 0
    grids_written: int = 0
    images_added: int = 0
    seconds_sampling: float = 0.0
    triage: list[TriageResult] = field(default_factory=list)
    triage_seconds: float = 0.0
    cost: TriageCost | None = None

    @property
    def images_per_second(self) -> float:
        return self.images_added / self.seconds_sampling if self.seconds_sampling else 0.0

    @property
    def skipped_by_triage(self) -> list[TriageResult]:
        return [result for result in self.triage if not result.kept]

    def to_dict(self) -> dict[str, Any]:
        cost = self.cost
        return {
            "model": self.model,
            "device": self.device,
            "settings": self.settings.to_dict() if self.settings else None,
            "prompts": self.prompts,
            "already_complete": self.already_complete,
            "grids_written": self.grids_written,
            "images_added": self.images_added,
            "seconds_sampling": round(self.seconds_sampling, 3),
            "images_per_second": round(self.images_per_second, 3),
            "triage": [{"prompt": r.prompt, "wen": r.value, "kept": r.kept} for r in self.triage],
            "triage_seconds": round(self.triage_seconds, 3),
            "unet_evaluations": None
            if cost is None
            else {
                "without_triage": cost.without_triage,
                "with_triage": cost.with_triage,
                "saved": cost.saved,
                "saved_share": round(cost.saved_share, 4),
            },
        }


GridProgress = Callable[[int, int, str, int, float], None]


def _prompts_for(project: Project, request: GenerateRequest) -> list[str]:
    """The run's prompts in a stable order, sharded before anything is skipped.

    Sharding the full list (not the still-missing part) keeps shard membership fixed
    across resumed runs.
    """
    if request.prompts_file is not None:
        read = read_prompt_file(request.prompts_file)
        if not read.prompts:
            raise InputError(request.prompts_file, "holds no prompts")
        selected = request.shard.select(read.prompts) if request.shard else read.prompts
        project.store.prompts.add_many(selected)
        return [text for text, _ in selected]
    texts = [prompt.text for prompt in project.store.prompts.all()]
    if not texts:
        raise ProjectError(
            f"{project.root}: no prompts; add some with `memgrid prompts add FILE` or --prompts"
        )
    return request.shard.select(texts) if request.shard else texts


def _missing_seeds(
    project: Project, prompt: str, model: str, settings: dict[str, Any], seeds: Sequence[int]
) -> list[int]:
    grid_id = project.store.grids.find(prompt, model, settings)
    done = project.store.images.seeds_where(grid_id=grid_id) if grid_id is not None else set()
    return [seed for seed in seeds if seed not in done]


def generate(
    project: Project,
    request: GenerateRequest,
    on_grid: GridProgress | None = None,
    on_status: Callable[[str], None] | None = None,
) -> GenerateReport:
    """Generate every missing grid and seed of the request; resumable at any point.

    Prompts that a triage skipped are triaged again on a rerun (their signal has no grid
    to be stored with); a prompt whose grid was begun is always finished.
    """
    check_settings_numbers(request.steps, request.guidance, request.size, request.batch)
    if (request.triage_steps is None) != (request.triage_threshold is None):
        raise InputError("--triage-steps", "give --triage-steps and --triage-threshold together")
    if request.triage_steps is not None and request.triage_steps < 1:
        raise InputError("--triage-steps", f"must be at least 1 (got {request.triage_steps})")
    generation.model_folder(request.model)  # a bad path fails before prompts are read
    prompts = _prompts_for(project, request)
    status = on_status or (lambda _message: None)
    status(f"loading {request.model}")
    loaded = generation.load_model(
        request.model, device=request.device, dtype=request.dtype, scheduler=request.scheduler
    )
    settings = generation.resolve_settings(
        loaded,
        steps=request.steps,
        guidance=request.guidance,
        size=request.size,
        negative_prompt=request.negative_prompt,
    )
    settings_dict = settings.to_dict()
    report = GenerateReport(
        model=loaded.name, device=loaded.device, settings=settings, prompts=len(prompts)
    )
    pending = []
    for prompt in prompts:
        missing = _missing_seeds(project, prompt, loaded.name, settings_dict, request.seeds)
        if missing:
            pending.append((prompt, missing))
        else:
            report.already_complete += 1

    if request.triage_steps is not None and request.triage_threshold is not None:
        status(f"triage: {request.triage_steps} step(s) for {len(pending)} prompts")
        pending = _triage(
            project,
            loaded,
            settings,
            request.seeds,
            request.triage_steps,
            request.triage_threshold,
            pending,
            report,
        )

    provenance = generation.grid_provenance(loaded, settings, request.seeds, request.batch)
    for index, (prompt, missing) in enumerate(pending, start=1):
        sampled = generation.sample_grid(loaded, prompt, missing, settings, request.batch)
        added = _store_grid(project, prompt, loaded.name, settings_dict, provenance, sampled)
        report.grids_written += 1
        report.images_added += added
        report.seconds_sampling += sampled.seconds
        if on_grid:
            on_grid(index, len(pending), prompt, added, sampled.seconds)
    return report


def _triage(
    project: Project,
    loaded: generation.LoadedModel,
    settings: GenerationSettings,
    seeds: list[int],
    triage_steps: int,
    threshold: float,
    pending: list[tuple[str, list[int]]],
    report: GenerateReport,
) -> list[tuple[str, list[int]]]:
    """Keep prompts whose first-steps signal reaches the threshold; grids begun stay kept."""
    kept: list[tuple[str, list[int]]] = []
    started = time.perf_counter()
    triaged = 0
    for prompt, missing in pending:
        if project.store.grids.find(prompt, loaded.name, settings.to_dict()) is not None:
            kept.append((prompt, missing))  # a begun grid was kept by an earlier triage
            continue
        norms = generation.triage_norms(loaded, prompt, seeds, settings, triage_steps)
        value = mean_first_steps(norms, triage_steps)
        keep = value >= threshold
        report.triage.append(TriageResult(prompt, value, keep))
        # Kept or skipped, the value is stored: an ROC over every prompt reads the project.
        project.store.triage.add(
            TriageRecord(
                prompt=prompt,
                model=loaded.name,
                settings=settings.to_dict(),
                triage_steps=triage_steps,
                seeds=tuple(seeds),
                value=value,
                threshold=threshold,
                kept=keep,
            )
        )
        triaged += 1
        if keep:
            kept.append((prompt, missing))
    report.triage_seconds = time.perf_counter() - started
    report.cost = TriageCost(
        prompts=triaged,
        kept=sum(result.kept for result in report.triage),
        seeds=len(seeds),
        steps=settings.steps,
        triage_steps=triage_steps,
    )
    return kept


def _store_grid(
    project: Project,
    prompt: str,
    model: str,
    settings: dict[str, Any],
    provenance: dict[str, Any],
    sampled: generation.SampledGrid,
) -> int:
    """Files first (each atomic), then the grid, its images and its wen score in one transaction.

    A kill between the two leaves only complete, unreferenced files that the resumed run
    writes again with the same content and name.
    """
    images = [
        project.images.put(CheckedImage(item.png, ".png", item.width, item.height), item.seed)
        for item in sampled.images
    ]
    store = project.store
    with store.atomic():
        grid_id, added = store.grids.add(
            prompt,
            images,
            model=model,
            settings=settings,
            provenance=provenance,
            source=GENERATED_SOURCE,
        )
        store.scores.add(
            _wen_for(
                store.scores.where(grid_ids=[grid_id], metric=WEN_METRIC),
                grid_id,
                settings,
                sampled.norms,
            )
        )
    return added


def _wen_for(
    earlier: Sequence[Score], grid_id: int, settings: dict[str, Any], norms: dict[int, list[float]]
) -> Score:
    """The grid's wen score over all its seeds: earlier runs' norms plus this run's."""
    combined: dict[int, list[float]] = {}
    for score in earlier:
        combined.update(stored_norms(score))
    combined.update(norms)
    if not combined:
        return unavailable_wen_score(
            grid_id, settings, "no classifier-free guidance (guidance <= 1): no signal"
        )
    return wen_score(grid_id, combined, settings)


# ---- merging shard projects ----------------------------------------------------------------


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
    triage_results: int = 0


GridKey = tuple[str, str, str]


def _grid_key(grid: Grid) -> GridKey:
    return grid.prompt, grid.model, content_key(grid.settings)


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
                f"mismatched generation settings: {project.root} ({_describe(configs)}) vs "
                f"{first_project.root} ({_describe(first_configs)}); merge shards of one run"
            )


def _describe(configs: dict[str, dict[str, Any]]) -> str:
    parts = []
    for config in configs.values():
        settings = {k: v for k, v in config.items() if k != "model"}
        try:
            described = GenerationSettings.from_dict(settings).describe()
        except (KeyError, ValueError):
            described = str(settings)
        parts.append(f"{Path(config['model']).name}: {described}")
    return "; ".join(sorted(parts))


def merge_projects(
    sources: Sequence[Path], into: Path, on_source: Callable[[Path], None] | None = None
) -> MergeReport:
    """Fold shard projects into one: same prompt + model + settings + seed = one image.

    Refuses sources generated with different settings. A score is carried over when the
    merged grid has exactly the seeds it was computed on (the wen signal is merged per
    seed); labels are not merged: label after merging.
    """
    target_root = into.resolve()
    resolved = [source.resolve() for source in sources]
    if target_root in resolved:
        raise InputError(into, "--into must not be one of the projects being merged")
    if len(set(resolved)) != len(resolved):
        raise InputError(sources[0], "a project is named twice")
    opened = [open_project(source) for source in sources]
    try:
        _check_same_settings(opened)
        report = MergeReport(sources=len(opened))
        with create_project(into) as target:
            merged_seeds: dict[GridKey, set[int]] = {}
            for project in [target, *opened]:
                for grid in project.store.grids.all():
                    merged_seeds.setdefault(_grid_key(grid), set()).update(grid.seeds)
            report.stale_target_scores = _stale_scores(target, merged_seeds)
            for source in opened:
                _merge_one(source, target, merged_seeds, report)
                if on_source:
                    on_source(source.root)
        return report
    finally:
        for project in opened:
            project.close()


def _stale_scores(target: Project, merged_seeds: dict[GridKey, set[int]]) -> int:
    """Scores already in the target on grids that the merge extends (they need rescoring)."""
    stale = 0
    for grid in target.store.grids.all():
        if merged_seeds[_grid_key(grid)] != set(grid.seeds):
            scores = target.store.scores.where(grid_ids=[grid.id])
            stale += sum(score.metric != WEN_METRIC for score in scores)
    return stale


def _merge_one(
    source: Project, target: Project, merged_seeds: dict[GridKey, set[int]], report: MergeReport
) -> None:
    store = source.store
    added, _ = target.store.prompts.add_many((p.text, p.metadata) for p in store.prompts.all())
    report.prompts_added += added
    report.labels_not_merged += len(store.labels.votes_where())
    for result in store.triage.all():  # a shard's skipped prompts have no grid to carry it
        target.store.triage.add(result)
        report.triage_results += 1
    for grid in store.grids.all():
        complete = merged_seeds[_grid_key(grid)] == set(grid.seeds)
        _merge_grid(source, grid, target, complete, report)


def _merge_grid(
    source: Project, grid: Grid, target: Project, complete: bool, report: MergeReport
) -> None:
    """Copy one grid's missing seeds and its scores in one transaction."""
    existing_id = target.store.grids.find(grid.prompt, grid.model, grid.settings)
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
            report.conflicting_images += present.sha256 != image.sha256
            continue
        checked = read_image_file(source.image_path(image))
        new_images.append(target.images.put(checked, image.seed))
    with target.store.atomic():
        grid_id, added = target.store.grids.add(
            grid.prompt,
            new_images,
            model=grid.model,
            settings=grid.settings,
            provenance=grid.provenance,
            source=grid.source,
        )
        report.images_added += added
        if existing_id is None:
            report.grids_added += 1
        elif added:
            report.grids_extended += 1
        for score in source.store.scores.where(grid_ids=[grid.id]):
            if score.metric == WEN_METRIC and score.available:
                earlier = target.store.scores.where(grid_ids=[grid_id], metric=WEN_METRIC)
                target.store.scores.add(_wen_for([*earlier, score], grid_id, grid.settings, {}))
            elif complete:
                target.store.scores.add(replace(score, grid_id=grid_id))
            else:
                report.scores_dropped += 1
                continue
            report.scores_copied += 1
