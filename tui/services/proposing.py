"""The propose pipeline shared by `memgrid propose`, calibration and the app.

One grid goes through `Proposer`: attribute its prompt (entities, cues and, where the grid
has a CLIP score whose weights load here, CLIP similarities of the recurring crop), then
categorize its scores under a threshold set. `propose_all` runs it over every scored grid
and stores the proposals; calibration runs it on the labelled grids under candidate
thresholds; the app highlights the prompt with its attribution. After calibration,
accepting a set is one call: `propose_then_activate`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from memgrid.core.attribution import (
    NO_CLIP,
    Attribution,
    ClipEvidence,
    TextImageEncoder,
    attribute,
    clip_evidence,
    read_lexicon,
)
from memgrid.core.categorizer import REGION_METRIC, SEMANTIC_METRIC, Categorization, categorize
from memgrid.core.errors import InputError, MemgridError, NotFoundError
from memgrid.core.images import decode_rgb
from memgrid.core.records import Entity, Grid, Proposal, Score, ThresholdSet
from memgrid.core.thresholds import (
    V0_NAME,
    Thresholds,
    load_threshold_file,
    v0_notes,
    v0_values,
)
from memgrid.tui.services.project import Project

DEFAULT_SET_NAME = "default"  # its version 0 holds the v0 values
THRESHOLD_FILE_SUFFIXES = (".toml", ".json")
# Crops of this many seeds are averaged for the CLIP attribution: the region is the same
# in each, and a few seeds smooth out what varies around it.
CLIP_CROP_SEEDS = 4
PROPOSALS_PER_TRANSACTION = 256

EncoderFactory = Callable[[Score], TextImageEncoder]


@dataclass
class ProposeReport:
    grids: int = 0
    proposed: int = 0
    unscored: int = 0  # grids with no score yet: nothing to propose from
    not_covered: int = 0  # grids of another model than the chosen set's
    categories: dict[str, int] = field(default_factory=dict)
    threshold_sets: list[str] = field(default_factory=list)  # labels of the sets used
    created: str | None = None  # label of a set this run created (v0 or from a file)
    clip_unavailable: str | None = None  # why CLIP attribution could not run, first seen

    def to_dict(self) -> dict[str, Any]:
        return {
            "grids": self.grids,
            "proposed": self.proposed,
            "unscored": self.unscored,
            "not_covered": self.not_covered,
            "categories": self.categories,
            "threshold_sets": self.threshold_sets,
            "created": self.created,
            "clip_attribution_unavailable": self.clip_unavailable,
        }


# ---------------------------------------------------------------- threshold sets


def ensure_threshold_set(project: Project, model: str | None = None) -> tuple[ThresholdSet, bool]:
    """The active set for `model`; on first use, store v0 and activate it. True if created."""
    store = project.store
    active = store.thresholds.find_active(model)
    if active is not None:
        return active, False
    created = store.thresholds.add(
        DEFAULT_SET_NAME, v0_values(), notes=v0_notes(), activate=True, origin=V0_NAME
    )
    return created, True


def choose_threshold_set(project: Project, choice: str) -> tuple[ThresholdSet, bool]:
    """A stored set by NAME (latest version), or a FILE validated and stored as a new version.

    Naming it is the user accepting it, but it is not made active here: the caller
    proposes under it first (`propose_then_activate`). True if created.
    """
    store = project.store
    path = Path(choice).expanduser()
    if path.suffix.lower() in THRESHOLD_FILE_SUFFIXES or path.is_file():
        loaded = load_threshold_file(path)
        created = store.thresholds.add(
            loaded.name,
            loaded.values,
            notes=loaded.notes,
            model=loaded.model,
            origin=f"file {path.resolve()}",
        )
        return created, True
    chosen = store.thresholds.find(choice)
    if chosen is None:
        known = sorted({t.name for t in store.thresholds.all()})
        hint = f" (stored: {', '.join(known)})" if known else " (none stored yet)"
        raise NotFoundError(
            f"--thresholds {choice!r}",
            f"no threshold set or file of this name{hint}; a file must end in .toml or .json",
        )
    Thresholds.from_values(chosen.values, source=chosen.label)  # refuse a corrupt stored set
    return chosen, False


# ---------------------------------------------------------------- one grid


class Proposer:
    """The propose pipeline for one grid: attribute its prompt, then categorize its scores.

    `memgrid propose`, calibration and the app all go through it, so the proposal stored,
    the one calibration scores and the highlights the annotator sees agree. Without a CLIP
    attributor (the app) the attribution has no CLIP evidence; its entities and cues,
    which are what the app highlights, do not depend on it.
    """

    def __init__(
        self,
        lexicon: Sequence[Entity],
        clip: ClipAttributor | None = None,
        *,
        remember_attributions: bool = False,
    ) -> None:
        self.lexicon = tuple(lexicon)
        self.clip = clip
        # Calibration asks about one grid under many thresholds; its attribution varies
        # only with the CLIP evidence, so it is kept per (grid, evidence) when asked to.
        self._attributions: dict[tuple[int, ClipEvidence], Attribution] | None = (
            {} if remember_attributions else None
        )

    @classmethod
    def for_project(
        cls,
        project: Project,
        encoder_factory: EncoderFactory | None = None,
        *,
        remember_attributions: bool = False,
    ) -> Proposer:
        """The project's lexicon, with CLIP evidence from `encoder_factory` (default: the clip metric's)."""
        lexicon = project.store.entities.all()
        clip = ClipAttributor(project, lexicon, encoder_factory or clip_encoder)
        return cls(lexicon, clip, remember_attributions=remember_attributions)

    @property
    def clip_failure(self) -> str | None:
        """Why CLIP evidence could not be had, first seen (None when it always could)."""
        return self.clip.first_failure if self.clip is not None else None

    def attribution(
        self, grid: Grid, scores: Sequence[Score] = (), thresholds: Thresholds | None = None
    ) -> Attribution:
        """What the grid's prompt names or implies; with CLIP evidence when it can be had."""
        evidence = NO_CLIP
        if self.clip is not None and thresholds is not None:
            evidence = self.clip.evidence(grid, scores, thresholds)
        if self._attributions is None:
            return attribute(grid.prompt, self.lexicon, evidence)
        key = (grid.id, evidence)
        found = self._attributions.get(key)
        if found is None:
            found = self._attributions[key] = attribute(grid.prompt, self.lexicon, evidence)
        return found

    def categorize(
        self, grid: Grid, scores: Sequence[Score], thresholds: Thresholds
    ) -> Categorization:
        """The proposal's category, features, reasons and Webster type under `thresholds`."""
        return categorize(scores, thresholds, self.attribution(grid, scores, thresholds))


# ---------------------------------------------------------------- proposing


def propose_all(
    project: Project,
    threshold_set: ThresholdSet | None = None,
    *,
    grid_ids: Sequence[int] | None = None,
    encoder_factory: EncoderFactory | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ProposeReport:
    """Write a proposal for every scored grid, under `threshold_set` or each grid's active set.

    `encoder_factory` builds the CLIP encoder for a grid's clip score (default: the clip
    metric's own loader); tests pass a fake one.
    """
    store = project.store
    ids = list(store.grids.ids_all() if grid_ids is None else grid_ids)
    report = ProposeReport(grids=len(ids))
    pending: list[Proposal] = []
    for proposal in _proposals(project, threshold_set, ids, report, encoder_factory, on_progress):
        pending.append(proposal)
        if len(pending) >= PROPOSALS_PER_TRANSACTION:
            report.proposed += store.proposals.add_many(pending)
            pending = []
    report.proposed += store.proposals.add_many(pending)
    return report


def _proposals(
    project: Project,
    threshold_set: ThresholdSet | None,
    ids: Sequence[int],
    report: ProposeReport,
    encoder_factory: EncoderFactory | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Iterator[Proposal]:
    """Each scored grid's proposal (counted in `report`); stores nothing itself, except the
    v0 set that a grid's model first needs when no set is chosen."""
    store = project.store
    proposer = Proposer.for_project(project, encoder_factory)
    thresholds_by_set: dict[int, Thresholds] = {}
    for done, grid_id in enumerate(ids, start=1):
        scores = store.scores.where(grid_ids=[grid_id])
        if not scores:
            report.unscored += 1
        else:
            grid = store.grids.get(grid_id)
            chosen = _set_for(project, grid, threshold_set, report)
            if chosen is None:
                report.not_covered += 1
            else:
                thresholds = thresholds_by_set.get(chosen.id)
                if thresholds is None:
                    thresholds = Thresholds.from_values(chosen.values, source=chosen.label)
                    thresholds_by_set[chosen.id] = thresholds
                result = proposer.categorize(grid, scores, thresholds)
                report.categories[result.category.value] = (
                    report.categories.get(result.category.value, 0) + 1
                )
                yield result.proposal(grid_id, chosen.id)
        if on_progress is not None:
            on_progress(done, len(ids))
    report.clip_unavailable = proposer.clip_failure


def propose_then_activate(
    project: Project, threshold_set_id: int, also: Callable[[], None] | None = None
) -> ProposeReport:
    """Accept a threshold set: every proposal under it first, then make it active.

    The activation (and `also`, the caller's own writes, such as marking a calibration
    run accepted) is one transaction after the last proposal: a kill before it leaves
    the previous set active with all its proposals, never an active set without them.
    """
    store = project.store
    chosen = store.thresholds.get(threshold_set_id)
    Thresholds.from_values(chosen.values, source=chosen.label)  # refuse a corrupt stored set
    report = propose_all(project, chosen)
    with store.atomic():
        store.thresholds.activate(threshold_set_id)
        if also is not None:
            also()
    return report


def _set_for(
    project: Project, grid: Grid, chosen: ThresholdSet | None, report: ProposeReport
) -> ThresholdSet | None:
    """The set a grid is proposed under; None when the chosen set is for another model."""
    if chosen is not None:
        if chosen.model is not None and chosen.model != grid.model:
            return None
        active = chosen
    else:
        active, created = ensure_threshold_set(project, grid.model)
        if created:
            report.created = active.label
    if active.label not in report.threshold_sets:
        report.threshold_sets.append(active.label)
    return active


# ---------------------------------------------------------------- CLIP attribution


class _CachedTexts:
    """An encoder whose text embeddings are remembered: lexicon phrases recur in every grid."""

    def __init__(self, encoder: TextImageEncoder) -> None:
        self.encoder = encoder
        self.texts: dict[str, Any] = {}

    def embed(self, images: Sequence[Any]) -> Any:
        return self.encoder.embed(images)

    def embed_texts(self, texts: Sequence[str]) -> Any:
        import numpy as np

        missing = [text for text in dict.fromkeys(texts) if text not in self.texts]
        if missing:
            self.texts.update(zip(missing, self.encoder.embed_texts(missing), strict=True))
        return np.stack([self.texts[text] for text in texts])


class ClipAttributor:
    """CLIP evidence for grids whose clip score is available, one loaded model per weights."""

    def __init__(self, project: Project, lexicon: list[Entity], factory: EncoderFactory) -> None:
        self.project = project
        self.lexicon = lexicon
        self.factory = factory
        self.encoders: dict[str, _CachedTexts | MemgridError] = {}
        self.first_failure: str | None = None

    def evidence(self, grid: Grid, scores: Sequence[Score], thresholds: Thresholds) -> ClipEvidence:
        clip_score = _latest_available(scores, SEMANTIC_METRIC)
        if clip_score is None:
            why = _unavailable_note(scores, SEMANTIC_METRIC) or "the grid has no CLIP score"
            return ClipEvidence.unavailable(why)
        encoder = self._encoder(clip_score)
        if isinstance(encoder, MemgridError):
            return ClipEvidence.unavailable(str(encoder))
        try:
            crops = _crops(self.project, grid, _latest_available(scores, REGION_METRIC), thresholds)
        except InputError as error:
            return ClipEvidence.unavailable(f"cannot read the grid's images ({error})")
        return clip_evidence(grid.prompt, crops, self.lexicon, encoder)

    def _encoder(self, clip_score: Score) -> _CachedTexts | MemgridError:
        key = repr(sorted(clip_score.params.items()))
        if key not in self.encoders:
            try:
                self.encoders[key] = _CachedTexts(self.factory(clip_score))
            except MemgridError as error:  # weights gone since scoring, or unreadable
                self.encoders[key] = error
                self.first_failure = self.first_failure or str(error)
        return self.encoders[key]


def clip_encoder(clip_score: Score) -> TextImageEncoder:
    """The clip metric's own loader, from the score's params: attribution uses the scoring model."""
    from memgrid.core.metrics.clip import Clip

    params = clip_score.params
    encoder = Clip(model=str(params.get("model")), pretrained=params.get("pretrained"))
    encoder.ensure_loaded()
    return encoder


def _latest_available(scores: Sequence[Score], metric: str) -> Score | None:
    available = [s for s in scores if s.metric == metric and s.available]
    return available[-1] if available else None


def _unavailable_note(scores: Sequence[Score], metric: str) -> str | None:
    notes = [s.note for s in scores if s.metric == metric and not s.available]
    return notes[-1] if notes else None


def _crops(
    project: Project, grid: Grid, region_score: Score | None, thresholds: Thresholds
) -> list[Image.Image]:
    """The recurring part of a few seeds: the template's box, else the whole image."""
    box = _region_box(region_score, thresholds)
    crops = []
    for image in grid.images[:CLIP_CROP_SEEDS]:
        decoded = decode_rgb(project.image_path(image))
        if box is None:
            crops.append(decoded)
            continue
        row0, column0, row1, column1, cells = box
        width, height = decoded.size
        crops.append(
            decoded.crop(
                (
                    column0 * width // cells,
                    row0 * height // cells,
                    (column1 + 1) * width // cells,
                    (row1 + 1) * height // cells,
                )
            )
        )
    return crops


def _region_box(
    score: Score | None, thresholds: Thresholds
) -> tuple[int, int, int, int, int] | None:
    """The template's tile box (row0, col0, row1, col1, grid), or None for the whole image."""
    if score is None:
        return None
    values = score.values
    bbox = values.get("region_bbox")
    cells = int(values.get("region_grid") or 8)
    tiles = values.get("region_tiles") or []
    is_template = (
        float(values.get("extent", 0.0)) < thresholds.tau_global
        and len(tiles) / (cells * cells) >= thresholds.tau_region
    )
    if not bbox or not is_template:
        return None
    row0, column0, row1, column1 = (int(v) for v in bbox)
    return row0, column0, row1, column1, cells


# ---------------------------------------------------------------- the lexicon


def add_entity_file(project: Project, path: Path) -> int:
    """Validate an entities.txt and store its entries (updated by name); returns how many."""
    entries = read_lexicon(path)
    if not entries:
        raise InputError(path, "no entries (one 'name | type | aliases' a line)")
    return project.store.entities.add_many(entries)
