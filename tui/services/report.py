"""The memorization report: rates per model (and group), and two models compared prompt by prompt.

A grid counts with its agreed human label where it has one (core.agreement: adjudicated
first, else the majority) and with its active proposal elsewhere, ties included; every
figure says how many of its grids a human labelled. The statistics are core.report's.

A "model" here is a model name with one set of generation settings: the same weights run
at another guidance scale is another arm of the comparison, named by the settings that
differ (`sd-1.5 (guidance=3)`), so every model has at most one grid per prompt.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memgrid.core.agreement import AgreedLabel
from memgrid.core.calibration import CATEGORIES, CATEGORY_CODE, DEFAULT_BOOTSTRAPS, DEFAULT_SEED
from memgrid.core.errors import InputError
from memgrid.core.records import GridTable, ProposedLabels
from memgrid.core.report import (
    FIGURES,
    LEVEL,
    UNKNOWN,
    WEBSTER_CODE,
    Outcomes,
    PairedChange,
    Rate,
    moved,
    paired_changes,
    rates,
    read_grid_list,
    stable_seed,
)
from memgrid.core.taxonomy import Webster
from memgrid.tui.services.calibration import agreed_labels
from memgrid.tui.services.project import Project

REPORT_KIND = "memgrid-report"
GRID_SOURCE = "source"  # --by source: how the grid entered the project (import, generate, demo)
PROMPT_FIELD_PREFIX = "prompt:"  # --by prompt:KEY: a field of the prompt's metadata
NO_VALUE = "(none)"
_VERBATIM = {Webster.MATCHING_VERBATIM, Webster.TEMPLATE_VERBATIM, Webster.RETRIEVAL_VERBATIM}


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class StoredFacts:
    """What the report reads from the store: every grid, its proposal, its agreed label."""

    grids: GridTable
    proposals: ProposedLabels
    agreed: dict[int, AgreedLabel]
    ties: int


def read_facts(project: Project) -> StoredFacts:
    """Every read the report makes of the store, in one place, under one read transaction."""
    store = project.store
    with store.snapshot():
        agreed, ties = agreed_labels(project)
        return StoredFacts(
            store.grids.table_all(), store.proposals.active_labels_all(), agreed, ties
        )


@dataclass(frozen=True)
class ReportRows:
    """One entry per grid, in grid id order: its model, group and outcomes."""

    grid_ids: np.ndarray
    prompt_ids: np.ndarray
    models: np.ndarray  # index into model_names
    model_names: tuple[str, ...]
    groups: np.ndarray  # the --by value of each grid ("" without --by)
    outcomes: Outcomes
    prompts: dict[int, str]
    ties: int

    def model_index(self, name: str) -> int:
        """The model called `name`, or the only settings variant of a model of that name."""
        if name in self.model_names:
            return self.model_names.index(name)
        variants = [i for i, known in enumerate(self.model_names) if known.startswith(f"{name} (")]
        if len(variants) == 1:
            return variants[0]
        known = ", ".join(self.model_names) or "none"
        what = "is run with several settings; name one" if variants else "has no grids"
        raise InputError("--compare", f"model {name!r} {what} (models: {known})")


def report_rows(facts: StoredFacts, by: str | None = None) -> ReportRows:
    """The grids as the report's arrays, with each grid's outcome resolved."""
    table = facts.grids
    grid_ids = np.array(table.ids, dtype=np.int64)
    names, model_of = model_names(table)
    return ReportRows(
        grid_ids=grid_ids,
        prompt_ids=np.array(table.prompt_ids, dtype=np.int64),
        models=np.array(
            [model_of[key] for key in zip(table.models, table.settings_keys, strict=True)],
            dtype=np.int32,
        ),
        model_names=names,
        groups=groups_of(table, by),
        outcomes=resolve_outcomes(grid_ids, facts.proposals, facts.agreed),
        prompts=table.prompts,
        ties=facts.ties,
    )


def resolve_outcomes(
    grid_ids: np.ndarray, proposals: ProposedLabels, agreed: Mapping[int, AgreedLabel]
) -> Outcomes:
    """Each grid's category and Webster type: the agreed human label's, else the proposal's.

    Annotators rarely give a Webster type. A grid they found not memorized is N; one they
    found memorized without a type takes the proposal's verbatim type (MV, TV, RV) when it
    has one, else stays unknown (a proposal's N would contradict them). A grid without a
    human label takes the proposal's type, N where the categorizer gave none (a semantic
    copy is none of Webster's verbatim types). `grid_ids` is ascending.
    """
    count = len(grid_ids)
    category = np.full(count, UNKNOWN, dtype=np.int8)
    webster = np.full(count, UNKNOWN, dtype=np.int8)
    category_human = np.zeros(count, dtype=bool)
    webster_human = np.zeros(count, dtype=bool)
    if proposals.grid_ids:
        where = np.searchsorted(grid_ids, proposals.grid_ids)
        category[where] = [CATEGORY_CODE[c] for c in proposals.categories]
        webster[where] = [WEBSTER_CODE[w or Webster.NONE] for w in proposals.webster]
    labelled = [(grid_id, label) for grid_id, label in agreed.items() if label.category is not None]
    if labelled:
        where = np.searchsorted(grid_ids, [grid_id for grid_id, _ in labelled])
        category[where] = [CATEGORY_CODE[label.category] for _, label in labelled]  # type: ignore[index]
        category_human[where] = True
        given = np.array([_human_webster(label) for _, label in labelled], dtype=np.int8)
        webster_human[where] = given != UNKNOWN
        proposed = webster[where]
        verbatim = np.isin(proposed, [WEBSTER_CODE[w] for w in _VERBATIM])
        webster[where] = np.where(given != UNKNOWN, given, np.where(verbatim, proposed, UNKNOWN))
    return Outcomes(category, category_human, webster, webster_human)


def _human_webster(label: AgreedLabel) -> int:
    """The Webster code the annotators gave, N if they found no memorization, else UNKNOWN."""
    if label.webster is not None:
        return WEBSTER_CODE[label.webster]
    return UNKNOWN if label.category and label.category.memorized else WEBSTER_CODE[Webster.NONE]


def model_names(table: GridTable) -> tuple[tuple[str, ...], dict[tuple[str, str], int]]:
    """A name per (model, settings key): the model's name, plus the settings that differ
    among its variants when it was run with more than one."""
    variants: dict[str, dict[str, dict[str, Any]]] = {}
    for model, key in dict.fromkeys(zip(table.models, table.settings_keys, strict=True)):
        variants.setdefault(model, {})[key] = table.settings.get(key, {})
    names: list[str] = []
    index: dict[tuple[str, str], int] = {}
    for model in sorted(variants):
        settings = variants[model]
        differing = sorted(
            key
            for key in {k for s in settings.values() for k in s}
            if len({_canonical(s.get(key)) for s in settings.values()}) > 1
        )
        for settings_key, values in sorted(settings.items(), key=lambda item: _canonical(item[1])):
            name = model
            if len(settings) > 1:
                shown = ", ".join(
                    f"{key}={_setting_text(values[key])}" for key in differing if key in values
                )
                name = f"{model} ({shown or 'no settings'})"
            index[(model, settings_key)] = len(names)
            names.append(name)
    return tuple(names), index


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _setting_text(value: Any) -> str:
    return NO_VALUE if value is None else value if isinstance(value, str) else json.dumps(value)


def groups_of(table: GridTable, by: str | None) -> np.ndarray:
    """Each grid's value of the --by field: its source, or a field of its prompt's metadata."""
    if not by:
        return np.full(len(table.ids), "", dtype=object)
    if by == GRID_SOURCE:
        return np.array([source or NO_VALUE for source in table.sources], dtype=object)
    field_name = by.removeprefix(PROMPT_FIELD_PREFIX)
    if table.prompt_metadata and not any(field_name in m for m in table.prompt_metadata.values()):
        # A misspelt field would otherwise group every grid under "(none)" without a word.
        fields = sorted({name for m in table.prompt_metadata.values() for name in m})
        raise InputError(
            "--by",
            f"no prompt has a field {field_name!r} (fields: {', '.join(fields) or 'none'})",
        )
    by_prompt = {
        prompt_id: NO_VALUE if value is None or value == "" else _setting_text(value)
        for prompt_id, metadata in table.prompt_metadata.items()
        for value in [metadata.get(field_name)]
    }
    return np.array([by_prompt[prompt_id] for prompt_id in table.prompt_ids], dtype=object)


def check_by(by: str | None) -> None:
    field_name = (by or "").removeprefix(PROMPT_FIELD_PREFIX)
    if by and by != GRID_SOURCE and not (by.startswith(PROMPT_FIELD_PREFIX) and field_name.strip()):
        raise InputError(
            "--by", f"{by!r}: use `source` or `prompt:FIELD` (a prompt metadata field)"
        )


# ---------------------------------------------------------------- the report


@dataclass(frozen=True)
class ModelRates:
    """The rates of one model, over all its grids or over one group of them."""

    model: str
    group: str | None
    grids: int
    human: int  # grids whose category is the agreed human label
    proposed: int  # grids whose category is their proposal
    unknown: int  # grids with neither
    rates: list[Rate]

    def rate(self, figure: str) -> Rate:
        return next(rate for rate in self.rates if rate.figure == figure)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "group": self.group,
            "grids": self.grids,
            "human": self.human,
            "proposed": self.proposed,
            "unknown": self.unknown,
            "rates": [rate.to_dict() for rate in self.rates],
        }


@dataclass(frozen=True)
class MovedPrompt:
    """A prompt memorized under one model of a comparison and not under the other."""

    prompt_id: int
    prompt: str
    grid_a: int
    grid_b: int
    category_a: str
    category_b: str
    human_a: bool
    human_b: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Comparison:
    """Two models on the prompts both have grids for: each figure's change, and what moved."""

    model_a: str
    model_b: str
    prompts: int
    changes: list[PairedChange]
    memorized_under_a_only: list[MovedPrompt]
    memorized_under_b_only: list[MovedPrompt]

    def change(self, figure: str) -> PairedChange:
        return next(change for change in self.changes if change.figure == figure)

    @property
    def grid_ids(self) -> list[int]:
        """The moved prompts' grids, each prompt's two side by side: the queue to look at."""
        moved_prompts = [*self.memorized_under_a_only, *self.memorized_under_b_only]
        return [grid for item in moved_prompts for grid in (item.grid_a, item.grid_b)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_a": self.model_a,
            "model_b": self.model_b,
            "prompts": self.prompts,
            "changes": [change.to_dict() for change in self.changes],
            "memorized_under_a_only": [item.to_dict() for item in self.memorized_under_a_only],
            "memorized_under_b_only": [item.to_dict() for item in self.memorized_under_b_only],
        }


@dataclass(frozen=True)
class Report:
    models: list[ModelRates]
    seed: int
    bootstraps: int
    by: str | None
    ties: int  # grids whose annotators tie: counted with their proposal
    comparison: Comparison | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def grid_ids(self) -> list[int]:
        return self.comparison.grid_ids if self.comparison else []

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": REPORT_KIND,
            "level": LEVEL,
            "seed": self.seed,
            "bootstraps": self.bootstraps,
            "by": self.by,
            "ties": self.ties,
            "figures": [
                {"key": f.key, "title": f.title, "scheme": f.scheme.value} for f in FIGURES
            ],
            "models": [model.to_dict() for model in self.models],
            "comparison": self.comparison.to_dict() if self.comparison else None,
            "warnings": self.warnings,
            # What `memgrid annotate --grids-from` opens: the moved prompts' grids.
            "grid_ids": self.grid_ids,
        }


def build_report(
    rows: ReportRows,
    *,
    by: str | None = None,
    compare: tuple[str, str] | None = None,
    seed: int = DEFAULT_SEED,
    bootstraps: int = DEFAULT_BOOTSTRAPS,
) -> Report:
    """Rates per model (and per group with `by`), and the comparison of two models if asked."""
    comparison = None
    if compare is not None:
        comparison = compare_models(
            rows, rows.model_index(compare[0]), rows.model_index(compare[1]), seed, bootstraps
        )
    found = []
    for model_index, name in enumerate(rows.model_names):
        in_model = rows.models == model_index
        found.append(_model_rates(rows, in_model, name, None, seed, bootstraps))
        if by:
            for group in sorted(set(rows.groups[in_model])):
                mask = in_model & (rows.groups == group)
                found.append(_model_rates(rows, mask, name, group, seed, bootstraps))
    warnings = []
    if rows.ties:
        warnings.append(
            f"{rows.ties} grid(s) with tied annotators count with their proposal until adjudicated"
        )
    unknown = sum(model.unknown for model in found if model.group is None)
    if unknown:
        warnings.append(
            f"{unknown} grid(s) have neither a human label nor a proposal (run `memgrid propose`)"
        )
    return Report(found, seed, bootstraps, by, rows.ties, comparison, warnings)


def _model_rates(
    rows: ReportRows, mask: np.ndarray, name: str, group: str | None, seed: int, bootstraps: int
) -> ModelRates:
    outcomes = rows.outcomes.take(mask)
    known = outcomes.category != UNKNOWN
    human = int(outcomes.category_human.sum())
    return ModelRates(
        model=name,
        group=group,
        grids=len(outcomes),
        human=human,
        proposed=int(known.sum()) - human,
        unknown=int((~known).sum()),
        rates=rates(outcomes, seed=stable_seed(seed, name, group or ""), bootstraps=bootstraps),
    )


def compare_models(
    rows: ReportRows, model_a: int, model_b: int, seed: int, bootstraps: int
) -> Comparison:
    """The paired comparison of two models on the prompts both have a grid for."""
    if model_a == model_b:
        raise InputError("--compare", "name two different models")
    index_a, index_b = _common_prompts(rows, model_a, model_b)
    a, b = rows.outcomes.take(index_a), rows.outcomes.take(index_b)
    name_a, name_b = rows.model_names[model_a], rows.model_names[model_b]
    changes = paired_changes(a, b, seed=stable_seed(seed, name_a, name_b), bootstraps=bootstraps)
    only_a, only_b = moved(a, b)

    def moved_prompts(positions: np.ndarray) -> list[MovedPrompt]:
        return [
            MovedPrompt(
                prompt_id=int(rows.prompt_ids[index_a[p]]),
                prompt=rows.prompts[int(rows.prompt_ids[index_a[p]])],
                grid_a=int(rows.grid_ids[index_a[p]]),
                grid_b=int(rows.grid_ids[index_b[p]]),
                category_a=CATEGORIES[a.category[p]].value,
                category_b=CATEGORIES[b.category[p]].value,
                human_a=bool(a.category_human[p]),
                human_b=bool(b.category_human[p]),
            )
            for p in positions
        ]

    return Comparison(
        name_a, name_b, len(index_a), changes, moved_prompts(only_a), moved_prompts(only_b)
    )


def _common_prompts(rows: ReportRows, model_a: int, model_b: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the two models' grids on the prompts both have, paired, by prompt id:
    one pair per prompt. A prompt with several grids under one model (imported from two
    folders) is paired by its first grid, in id order; a grid of unknown prompt with none."""
    # A grid whose prompt is unknown (imported without one) pairs with nothing: "" is not
    # one prompt that both models were given.
    known = np.array([rows.prompts[int(p)] != "" for p in rows.prompt_ids], dtype=bool)
    in_a = np.flatnonzero((rows.models == model_a) & known)
    in_b = np.flatnonzero((rows.models == model_b) & known)
    prompts_a, prompts_b = rows.prompt_ids[in_a], rows.prompt_ids[in_b]
    # Not assume_unique: with a prompt repeated, it returns indices outside the arrays.
    _, where_a, where_b = np.intersect1d(prompts_a, prompts_b, return_indices=True)
    return in_a[where_a], in_b[where_b]


def project_report(
    project: Project,
    *,
    by: str | None = None,
    compare: tuple[str, str] | None = None,
    seed: int = DEFAULT_SEED,
    bootstraps: int = DEFAULT_BOOTSTRAPS,
) -> Report:
    check_by(by)
    rows = report_rows(read_facts(project), by)
    return build_report(rows, by=by, compare=compare, seed=seed, bootstraps=bootstraps)


def grids_from(project: Project, path: Path) -> tuple[int, ...]:
    """The grids of a saved report (`memgrid annotate --grids-from`), all in this project."""
    listed = read_grid_list(path)
    known = set(project.store.grids.ids_all())
    missing = [grid_id for grid_id in listed if grid_id not in known]
    if missing:
        shown = ", ".join(str(grid_id) for grid_id in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise InputError(path, f"grids not in this project: {shown}{more}")
    return listed
