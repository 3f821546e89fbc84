"""Generating seed grids into a project, triaging prompts first (merging: services/merging.py).

The CLI and the app call these functions; torch loads only when a model is loaded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memgrid.core.errors import InputError, Interrupted, ProjectError
from memgrid.core.generation import loading
from memgrid.core.generation import pipeline as generation
from memgrid.core.generation.settings import (
    GenerationSettings,
    Shard,
    TriageCost,
    check_device_name,
    check_settings_numbers,
)
from memgrid.core.generation.signal import (
    WEN_METRIC,
    mean_first_steps,
    stored_norms,
    unavailable_wen_score,
    wen_score,
)
from memgrid.core.generation.weights import model_key
from memgrid.core.images import CheckedImage
from memgrid.core.prompt_files import read_prompt_file
from memgrid.core.records import Score, TriageRecord
from memgrid.tui.services.project import Project

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
    width: int | None = None
    height: int | None = None
    revision: str | None = None
    compile: bool = False


@dataclass(frozen=True)
class TriageResult:
    prompt: str
    value: float
    kept: bool


class GenerationInterrupted(Interrupted):
    """Ctrl-C during generation, with what the run had stored by then."""

    report: GenerateReport


@dataclass
class GenerateReport:
    model: str = ""
    model_key: str = ""
    device: str = ""
    settings: GenerationSettings | None = None
    prompts: int = 0
    already_complete: int = 0
    grids_pending: int = 0  # left to generate after triage
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
            "model_key": self.model_key,
            "device": self.device,
            "settings": self.settings.to_dict() if self.settings else None,
            "prompts": self.prompts,
            "already_complete": self.already_complete,
            "grids_pending": self.grids_pending,
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


def check_request(request: GenerateRequest) -> None:
    """Refuse a request that cannot run, before a model is loaded or a folder is made."""
    check_settings_numbers(
        request.steps,
        request.guidance,
        request.size,
        request.batch,
        request.width,
        request.height,
    )
    if (request.triage_steps is None) != (request.triage_threshold is None):
        raise InputError("--triage-steps", "give --triage-steps and --triage-threshold together")
    if request.triage_steps is not None and request.triage_steps < 1:
        raise InputError("--triage-steps", f"must be at least 1 (got {request.triage_steps})")
    check_device_name(request.device)
    loading.model_folder(request.model)  # a bad path fails before anything else
    if request.prompts_file is not None and not read_prompt_file(request.prompts_file).prompts:
        raise InputError(request.prompts_file, "holds no prompts")


def load_for(
    request: GenerateRequest, on_status: Callable[[str], None] | None = None
) -> generation.LoadedModel:
    """The request's model, found (hub or folder), loaded, and compiled if asked.

    Finding the model and the device comes first and says nothing: a hub that cannot be
    reached, or a GPU that is not there, is the one line.
    """
    source = loading.find_model(request.model, request.revision)
    device = loading.resolve_device(request.device)
    if on_status:
        on_status(f"loading {request.model}")
    return loading.load_model(
        source,
        device=device,
        dtype=request.dtype,
        scheduler=request.scheduler,
        compile_unet=request.compile,
    )


def generate(
    project: Project,
    request: GenerateRequest,
    on_grid: GridProgress | None = None,
    on_status: Callable[[str], None] | None = None,
    loaded: generation.LoadedModel | None = None,
) -> GenerateReport:
    """Generate every missing grid and seed of the request; resumable at any point.

    Grids are stored under the model's weights hash (model_key), so the same weights read
    from another folder resume and merge. Prompts that a triage skipped are triaged again
    on a rerun (their signal has no grid to be stored with); a begun grid is always finished.
    Ctrl-C raises GenerationInterrupted with the report so far (each grid is stored as done).
    """
    check_request(request)
    prompts = _prompts_for(project, request)
    status = on_status or (lambda _message: None)
    if loaded is None:
        loaded = load_for(request, status)
    settings = generation.resolve_settings(
        loaded,
        steps=request.steps,
        guidance=request.guidance,
        size=request.size,
        negative_prompt=request.negative_prompt,
        width=request.width,
        height=request.height,
    )
    settings_dict = settings.to_dict()
    model = model_key(loaded.identity)
    report = GenerateReport(
        model=loaded.name,
        model_key=model,
        device=loaded.device,
        settings=settings,
        prompts=len(prompts),
    )
    try:
        pending = []
        for prompt in prompts:
            missing = _missing_seeds(project, prompt, model, settings_dict, request.seeds)
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

        report.grids_pending = len(pending)
        provenance = generation.grid_provenance(loaded, settings, request.seeds, request.batch)
        for index, (prompt, missing) in enumerate(pending, start=1):
            sampled = generation.sample_grid(loaded, prompt, missing, settings, request.batch)
            added = _store_grid(project, prompt, model, settings_dict, provenance, sampled)
            report.grids_written += 1
            report.images_added += added
            report.seconds_sampling += sampled.seconds
            if on_grid:
                on_grid(index, len(pending), prompt, added, sampled.seconds)
    except KeyboardInterrupt:
        raise GenerationInterrupted(report) from None
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
        if project.store.grids.find(prompt, model_key(loaded.identity), settings.to_dict()):
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
            wen_for(
                store.scores.where(grid_ids=[grid_id], metric=WEN_METRIC),
                grid_id,
                settings,
                sampled.norms,
            )
        )
    return added


def wen_for(
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
