"""The calibration loop shared by `memgrid calibrate`, `memgrid agreement` and the app.

Reads the agreed label of every labelled grid (core.agreement: adjudicated first, else the
majority) and every stored signal in bulk, fits the active threshold set on them
(the core.calibration package), and stores the run. Accepting a run stores its fitted values as a new
version of the set, makes it active, and recomputes the proposals under it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from memgrid.core.agreement import AgreedLabel, agreed_label
from memgrid.core.calibration import (
    CATEGORY_CODE,
    DEFAULT_BOOTSTRAPS,
    DEFAULT_SAMPLE_LIMIT,
    DEFAULT_SEED,
    NONE_CODE,
    PIXEL_CLIQUE_SIGNAL,
    SIGNAL_KEYS,
    Objective,
)
from memgrid.core.calibration.run import LabelledGrids, WeightFit, calibrate, stratified_sample
from memgrid.core.categorizer import PIXEL_METRICS, SEMANTIC_METRIC, latest_by_metric
from memgrid.core.combined import (
    FEATURES,
    FIT_MIN_PER_CLASS,
    FIT_MIN_SHOWING,
    evidence,
    feature_row,
    fit_weights,
    weight_keys,
)
from memgrid.core.errors import ProjectError
from memgrid.core.interrater import AgreementReport, agreement_report
from memgrid.core.records import Grid, Score, ThresholdSet
from memgrid.core.taxonomy import Category, Webster
from memgrid.core.thresholds import Thresholds, v0_values
from memgrid.tui.services.project import Project
from memgrid.tui.services.proposing import (
    Proposer,
    ProposeReport,
    ensure_threshold_set,
    propose_then_activate,
)

# SQLite refuses more than 32,766 bound variables in one statement.
IDS_PER_QUERY = 30000
DEFAULT_REGION_GRID = 8  # the region map's size when a score does not say


@dataclass(frozen=True)
class CalibrationRun:
    """One stored calibration run: the set it calibrated and what the fit found.

    `summary` is CalibrationResult.to_dict(), as stored with the run: the terminal, the
    HTML report and the app all render from it, so a run reads the same everywhere.
    """

    run_id: int
    threshold_set: ThresholdSet
    summary: dict[str, Any]
    accepted: ThresholdSet | None = None
    proposals: ProposeReport | None = None

    @property
    def changed(self) -> bool:
        return bool(self.summary.get("changes"))

    @property
    def refused(self) -> str | None:
        """Why the run may not be accepted (CalibrationResult.refusal), or None."""
        return self.summary.get("refused")

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "threshold_set": self.threshold_set.label,
            "accepted": self.accepted.label if self.accepted else None,
            "proposals": self.proposals.to_dict() if self.proposals else None,
            **self.summary,
        }


@dataclass(frozen=True)
class ProjectLabels:
    """Every labelled grid's agreed label and signals, read from the store in bulk."""

    data: LabelledGrids
    models: np.ndarray  # the generator model of each labelled grid
    ties: int  # grids whose annotators tie: left out until adjudicated
    # Labelled with a Webster type (MV, TV, RV) or tiles: memorization pixels can show.
    pixel_level: np.ndarray | None = None


# ---------------------------------------------------------------- reading


def agreed_labels(project: Project) -> tuple[dict[int, AgreedLabel], int]:
    """The agreed label of every grid that has one, and how many grids are tied.

    core.agreement resolves each distinct pattern of votes once (see
    Labels.vote_patterns_all): the same answer as per grid, at 100,000 grids in a blink.
    """
    patterns, grid_patterns = project.store.labels.vote_patterns_all()
    resolved = [agreed_label(events) for events in patterns]
    agreed, ties = {}, 0
    for grid_id, index in grid_patterns.items():
        label = resolved[index]
        if label.category is not None:
            agreed[grid_id] = label
        elif label.tied:
            ties += 1
    return agreed, ties


def signal_columns(project: Project, grid_ids: Sequence[int]) -> dict[str, np.ndarray]:
    """Each signal, "metric:key", as one value per grid of `grid_ids` (NaN where missing).

    Where a grid has several scores of one metric the latest available one counts, as in
    the categorizer. Derived: `tiled-l2:region_share` (the largest consistent region's
    share of the image, what tau_region compares) and `pixel:clique_share` (the largest
    clique share over the pixel metrics, what tau_mem compares).
    """
    store = project.store
    wanted = np.asarray(grid_ids, dtype=np.int64)
    columns: dict[str, np.ndarray] = {}
    for metric, types in sorted(store.scores.value_types_all().items()):
        keys = [key for key in SIGNAL_KEYS if types.get(key) in ("real", "integer")]
        has_region = types.get("region_tiles") == "array"
        if not keys and not has_region:
            continue
        extra = ["region_grid"] if has_region else []
        rows = store.scores.numbers_where(
            metric=metric,
            keys=[*keys, *extra],
            length_keys=["region_tiles"] if has_region else [],
        )
        if not rows:
            continue
        numbers = np.array(rows, dtype=float)  # None becomes NaN
        # Oldest first: keep each grid's last (latest) score, and only the grids asked for.
        reversed_ids = numbers[::-1, 0].astype(np.int64)
        scored, last = np.unique(reversed_ids, return_index=True)
        latest = numbers[::-1][last]
        found = np.searchsorted(scored, wanted)
        found = np.minimum(found, len(scored) - 1)
        present = scored[found] == wanted
        values = np.full((len(wanted), numbers.shape[1] - 1), np.nan)
        values[present] = latest[found[present], 1:]
        for index, key in enumerate(keys):
            columns[f"{metric}:{key}"] = values[:, index]
        if has_region:
            cells = np.where(np.isnan(values[:, -2]), DEFAULT_REGION_GRID, values[:, -2])
            columns[f"{metric}:region_share"] = values[:, -1] / (cells * cells)
    pixel = [columns[f"{m}:clique_share"] for m in PIXEL_METRICS if f"{m}:clique_share" in columns]
    if pixel:
        with np.errstate(invalid="ignore"):
            columns[PIXEL_CLIQUE_SIGNAL] = np.fmax.reduce(pixel)
    return columns


def read_labels(project: Project) -> ProjectLabels:
    """The labelled grids of the project as calibration's columns."""
    agreed, ties = agreed_labels(project)
    grid_ids = sorted(agreed)
    models = project.store.grids.models_all()
    labels = np.array([CATEGORY_CODE[agreed[g].category] for g in grid_ids], dtype=int)  # type: ignore[index]
    data = LabelledGrids(
        grid_ids=np.array(grid_ids, dtype=np.int64),
        labels=labels,
        signals=signal_columns(project, grid_ids),
        template_only=np.array([_template_only(agreed[g]) for g in grid_ids], dtype=bool),
    )
    pixel_level = np.array([_pixel_level(agreed[g]) for g in grid_ids], dtype=bool)
    return ProjectLabels(
        data, np.array([models.get(g, "") for g in grid_ids], dtype=object), ties, pixel_level
    )


def _pixel_level(label: AgreedLabel) -> bool:
    """True when the label says pixels recur (a Webster copy or template type, or tiles)."""
    copies = (Webster.MATCHING_VERBATIM, Webster.TEMPLATE_VERBATIM, Webster.RETRIEVAL_VERBATIM)
    return label.webster in copies or _template_only(label)


def _template_only(label: AgreedLabel) -> bool:
    """True when the annotators placed the memorized content on tiles only (a template)."""
    if label.webster is Webster.TEMPLATE_VERBATIM:
        return True
    memorized = [feature for feature in label.features if feature.category.memorized]
    return bool(memorized) and all(feature.tiles for feature in memorized)


# ---------------------------------------------------------------- the categorizer


class LabelledCategorizer:
    """Runs the propose pipeline (`Proposer`, as `memgrid propose` does) on labelled grids.

    Grids and scores are read in bulk for the grids asked about; thresholds are parsed once
    per set of values, and attributions kept per grid and CLIP evidence, which is all that
    varies with the thresholds there.
    """

    def __init__(self, project: Project, grid_ids: np.ndarray) -> None:
        self.project = project
        self.grid_ids = grid_ids
        self.proposer = Proposer.for_project(project, remember_attributions=True)
        self._grids: dict[int, Grid] = {}
        self._scores: dict[int, list[Score]] = {}
        self._thresholds: dict[tuple[tuple[str, float], ...], Thresholds] = {}

    def preload(self, indices: Sequence[int]) -> None:
        """Read the grids and scores of these labelled grids (indices into `grid_ids`)."""
        wanted = [
            int(self.grid_ids[i]) for i in indices if int(self.grid_ids[i]) not in self._grids
        ]
        store = self.project.store
        for start in range(0, len(wanted), IDS_PER_QUERY):
            chunk = wanted[start : start + IDS_PER_QUERY]
            for grid in store.grids.where(ids=chunk):
                self._grids[grid.id] = grid
                self._scores[grid.id] = []
            for score in store.scores.where(grid_ids=chunk):
                self._scores[score.grid_id].append(score)

    def scores_of(self, index: int) -> list[Score]:
        """The stored scores of one labelled grid (index into `grid_ids`)."""
        grid_id = int(self.grid_ids[index])
        if grid_id not in self._grids:
            self.preload([index])
        return self._scores[grid_id]

    def __call__(self, index: int, values: Mapping[str, float]) -> Category:
        grid_id = int(self.grid_ids[index])
        if grid_id not in self._grids:
            self.preload([index])
        key = tuple(sorted(values.items()))
        thresholds = self._thresholds.get(key)
        if thresholds is None:
            thresholds = self._thresholds[key] = Thresholds.from_values(values)
        grid, scores = self._grids[grid_id], self._scores[grid_id]
        return self.proposer.categorize(grid, scores, thresholds).category


# ---------------------------------------------------------------- running


def calibrate_project(
    project: Project,
    objective: Objective,
    *,
    by_model: bool = False,
    accept: bool = False,
    seed: int = DEFAULT_SEED,
    bootstraps: int = DEFAULT_BOOTSTRAPS,
    sample_limit: int = DEFAULT_SAMPLE_LIMIT,
) -> list[CalibrationRun]:
    """Fit the active threshold set (one per model with `by_model`) and store each run.

    No agreed label at all is a ProjectError, and nothing is stored. With `accept`, each run
    that changed a threshold and was not refused is accepted at once (see `accept_run`).
    """
    labels = read_labels(project)
    if not len(labels.data):  # nothing to fit: an error, and no run stored
        tied = f" ({labels.ties} tied between annotators: adjudicate them)" if labels.ties else ""
        raise ProjectError(
            f"{project.root}: no grid has an agreed label to calibrate on{tied}; label some "
            "first (memgrid annotate, memgrid label or memgrid labels import)"
        )
    groups: list[tuple[str | None, np.ndarray]]
    if by_model:
        groups = [(str(model), labels.models == model) for model in sorted(set(labels.models))]
    else:
        groups = [(None, np.ones(len(labels.data), dtype=bool))]
    runs = []
    for model, mask in groups:
        active, _ = ensure_threshold_set(project, model)
        data = labels.data.subset(mask)
        categorizer = LabelledCategorizer(project, data.grid_ids)
        # Read the grids the categorizer will be asked about in one go.
        sample = stratified_sample(data.labels, sample_limit, seed)
        categorizer.preload(sample.tolist())
        pixel_level = labels.pixel_level[mask] if labels.pixel_level is not None else None
        result = calibrate(
            data,
            {**v0_values(), **active.values},  # the values the categorizer applies now
            objective,
            categorizer,
            seed=seed,
            bootstraps=bootstraps,
            sample_limit=sample_limit,
            model=model,
            fit_weights=partial(fit_combined, categorizer, data.labels, pixel_level, sample),
        )
        if labels.ties:
            result.warnings.append(
                f"{labels.ties} grid(s) tied between annotators were left out: adjudicate them"
            )
        summary = result.to_dict()
        run_id = project.store.runs.add(
            threshold_set_id=active.id,
            label_count=result.label_count,
            objective=result.objective,
            thresholds=result.fitted,
            metrics=summary,
        )
        run = CalibrationRun(run_id, active, summary)
        if accept and run.changed and not run.refused:
            run = accept_run(project, run_id)
        runs.append(run)
    return runs


def fit_combined(
    categorizer: LabelledCategorizer,
    labels: np.ndarray,
    pixel_level: np.ndarray | None,
    sample: np.ndarray,
    fitted: Mapping[str, float],
) -> WeightFit:
    """The combined score's weights fitted on the sampled labelled grids (core.combined).

    The evidence is read under the run's other fitted thresholds, those the weights will
    apply with. Without any clip score, memorization that only CLIP can see (positives
    labelled with no Webster type and no tiles) is left out: no available signal can
    explain it, and keeping it would only raise the bias, and with it the false alarms
    (docs/design.md, "The combined score"). The category-threshold search of the same run
    uses the weights the set had.
    """
    thresholds = Thresholds.from_values({**v0_values(), **fitted})
    rows, memorized, scored_by_clip, left_out = [], [], False, 0
    for index in sample.tolist():
        scores = latest_by_metric(categorizer.scores_of(index))
        clip = scores.get(SEMANTIC_METRIC)
        scored_by_clip = scored_by_clip or bool(clip and clip.available)
        rows.append((index, feature_row(evidence(scores, thresholds))))
        memorized.append(labels[index] != NONE_CODE)
    keep = [
        scored_by_clip or not is_memorized or pixel_level is None or bool(pixel_level[index])
        for (index, _), is_memorized in zip(rows, memorized, strict=True)
    ]
    left_out = sum(not k for k in keep)
    fit = fit_weights(
        np.array([row for (_, row), k in zip(rows, keep, strict=True) if k]).reshape(
            -1, len(FEATURES)
        ),
        np.array([m for m, k in zip(memorized, keep, strict=True) if k], dtype=bool),
    )
    warnings = []
    if left_out:
        warnings.append(
            f"{left_out} memorized grid(s) without a Webster type were left out of the "
            "combined score's fit: no clip score can show semantic memorization (mark MV or "
            "TV on copies and templates)"
        )
    held = set(fit.held)
    if not fit.converged:
        warnings.append("the combined score's fit did not converge: every weight kept its default")
    elif held == set(weight_keys()):
        warnings.append(
            f"the combined score's weights kept their defaults: moving them needs at least "
            f"{FIT_MIN_PER_CLASS} memorized and {FIT_MIN_PER_CLASS} not-memorized labelled "
            f"grids (has {fit.positives} and {fit.negatives})"
        )
    elif held:
        warnings.append(
            f"{', '.join(sorted(held))} kept at default: fewer than {FIT_MIN_SHOWING} labelled "
            "grids show that evidence"
        )
    why_default = "default: too few labels" if fit.converged else "default: fit did not converge"
    fitted_on = {
        key: why_default if key in held else f"combined fit ({fit.examples} grids)"
        for key in weight_keys()
    }
    return WeightFit(fit.values(), fitted_on, warnings)


def accept_run(project: Project, run_id: int) -> CalibrationRun:
    """Store a run's fitted values as a new version of its set, activate it, re-propose."""
    store = project.store
    stored = store.runs.get(run_id)
    if stored.accepted:
        raise ProjectError(f"calibration run {run_id} was already accepted")
    if stored.metrics.get("refused"):
        raise ProjectError(f"calibration run {run_id} not accepted: {stored.metrics['refused']}")
    if stored.threshold_set_id is None:
        raise ProjectError(f"calibration run {run_id} names no threshold set to update")
    base = store.thresholds.get(stored.threshold_set_id)
    metrics = stored.metrics
    model = metrics.get("model") or base.model
    values = _set_values(stored.thresholds)
    notes = (
        f"calibrated from {base.label} by run {run_id}: objective {stored.objective}, "
        f"{stored.label_count} labelled grids"
    )
    # An accept killed before its activation left the set stored: take it up again.
    fitted = next(
        (
            stored_set
            for stored_set in store.thresholds.all()
            if stored_set.name == base.name and stored_set.notes == notes
        ),
        None,
    ) or store.thresholds.add(
        base.name, values, notes=notes, model=model, origin=f"calibration run {run_id}"
    )
    report = propose_then_activate(
        project, fitted.id, also=lambda: store.runs.mark_accepted(run_id, fitted.id)
    )
    accepted = store.thresholds.get(fitted.id)
    return CalibrationRun(run_id, base, metrics, accepted, report)


def _set_values(thresholds: Mapping[str, Any]) -> dict[str, float]:
    """Only numbers belong in a threshold set (None marks a rule left unset)."""
    return {key: float(value) for key, value in thresholds.items() if value is not None}


def latest_run(project: Project) -> CalibrationRun | None:
    """The newest stored calibration run, or None before the first."""
    store = project.store
    runs = store.runs.all()
    if not runs:
        return None
    stored = runs[-1]
    if stored.threshold_set_id is None:
        raise ProjectError(f"calibration run {stored.id} names no threshold set")
    base = store.thresholds.get(stored.threshold_set_id)
    fitted_id = stored.fitted_threshold_set_id
    accepted = store.thresholds.get(fitted_id) if fitted_id is not None else None
    return CalibrationRun(stored.id, base, stored.metrics, accepted)


def project_agreement(project: Project) -> AgreementReport:
    """Agreement among annotators and with the proposals; adjudications are not votes."""
    return agreement_report(project.store.labels.votes_where())
