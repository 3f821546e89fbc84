"""Typed records that cross the db/ boundary; db/ returns these, never row dicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from memgrid.core.errors import InputError
from memgrid.core.taxonomy import Category, Feature, LabelAction, LabelState, Webster

# SQLite stores an INTEGER in 64 signed bits: ids, seeds and versions stay within it.
MAX_STORED_INTEGER = 2**63 - 1


@dataclass(frozen=True)
class Prompt:
    id: int
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GridImage:
    """One seed's image; `path` is relative to the project folder."""

    seed: int
    path: str
    sha256: str
    width: int
    height: int


@dataclass(frozen=True)
class Grid:
    """One prompt rendered under many seeds by one model with one set of settings."""

    id: int
    prompt_id: int
    prompt: str
    model: str
    settings: dict[str, Any]
    provenance: dict[str, Any]
    source: str
    images: tuple[GridImage, ...] = ()
    origin: str = ""  # the source folder or manifest grid key an imported grid came from
    # The fields that came with the prompt (`memgrid prompts add`: source_id, url, ...).
    prompt_metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def seeds(self) -> list[int]:
        return [image.seed for image in self.images]


@dataclass(frozen=True)
class GridIdentity:
    """What names a grid outside its project: prompt, model, and where it came from
    (`source`: generate, import, ...; `imported_from`: the folder or manifest of an import;
    `origin`: the folder's name or manifest grid key that tells one import from another)."""

    id: int
    prompt: str
    model: str
    source: str
    imported_from: str = ""
    origin: str = ""


@dataclass(frozen=True)
class Reference:
    """A reference image: a training image a grid may copy (docs/design.md, "Reference images").

    `key` is the dataset's id for it (LAION's key), `url` where it was fetched from,
    `caption` its training caption; `phash` its 64-bit pHash as a signed integer (the
    pool's index); `path` is relative to the project folder, like a seed's.
    """

    id: int
    path: str
    sha256: str
    width: int
    height: int
    key: str = ""
    url: str = ""
    caption: str = ""
    phash: int = 0
    origin: str = ""

    def describe(self) -> dict[str, Any]:
        """What an export or a reason says of it."""
        return {
            "id": self.id,
            "key": self.key,
            "url": self.url,
            "caption": self.caption,
            "sha256": self.sha256,
            "path": self.path,
        }


@dataclass(frozen=True)
class Score:
    """One metric's result on one grid, with what is needed to compare runs.

    `values` holds the grid-level numbers (clique share, median similarity, extent...);
    `heatmap` is the per-tile region consistency (rows of floats in [0, 1]) when the
    metric has one. `available` is False when the metric could not run (no weights):
    `note` then says why, and no values are invented.
    """

    grid_id: int
    metric: str
    params: dict[str, Any]
    version: str
    values: dict[str, Any]
    heatmap: list[list[float]] | None = None
    available: bool = True
    note: str = ""


@dataclass(frozen=True)
class ThresholdSet:
    """A named, versioned set of detection thresholds; one is active per model."""

    id: int
    name: str
    version: int
    values: dict[str, float]
    model: str | None = None
    notes: str = ""
    active: bool = False
    origin: str = ""  # where it came from: v0, file PATH, calibration run N
    created_at: str = ""

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def reference(self) -> str:
        """How commands name it: NAME@VERSION."""
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class Reason:
    """One signal that fired (or could not be applied), in words for an annotator."""

    signal: str
    text: str
    value: float | None = None
    threshold: float | None = None
    fired: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "text": self.text,
            "value": self.value,
            "threshold": self.threshold,
            "fired": self.fired,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reason:
        return cls(
            signal=str(data["signal"]),
            text=str(data["text"]),
            value=data.get("value"),
            threshold=data.get("threshold"),
            fired=bool(data.get("fired", True)),
        )


@dataclass(frozen=True)
class Proposal:
    """The categorizer's proposed label for a grid under one threshold set."""

    grid_id: int
    threshold_set_id: int
    category: Category
    features: tuple[Feature, ...] = ()
    reasons: tuple[Reason, ...] = ()
    webster: Webster | None = None
    # The memorization score the decision rests on, and its signed distance from the
    # threshold that decided it: the app's "nearest the threshold first" order uses it.
    score: float | None = None
    margin: float | None = None


@dataclass(frozen=True)
class GridTable:
    """Every grid without its images, as columns: what a report over all grids groups by.

    Columns, not a record per grid: a report reads 100,000 grids at once. `ids` ascend;
    the other lists run alongside. Prompts and settings are looked up by key, since many
    grids share them.
    """

    ids: list[int]
    prompt_ids: list[int]
    models: list[str]
    settings_keys: list[str]  # of the settings alone: grids of one run share it, imported too
    sources: list[str]
    prompts: dict[int, str]
    prompt_metadata: dict[int, dict[str, Any]]
    settings: dict[str, dict[str, Any]]  # by settings key


@dataclass(frozen=True)
class ProposedLabels:
    """The active proposal's category and Webster type of every grid that has one, as columns."""

    grid_ids: list[int]
    categories: list[Category]
    webster: list[Webster | None]


@dataclass(frozen=True)
class LabelEvent:
    """One append-only annotation action; the current label is derived from these."""

    id: int
    grid_id: int
    annotator: str
    action: LabelAction
    state: LabelState | None
    category: Category | None
    features: tuple[Feature, ...] = ()
    note: str = ""
    webster: Webster | None = None
    undoes: int | None = None
    proposal_shown: bool = True
    proposal_category: Category | None = None
    session: str = ""
    created_at: float = 0.0
    os_user: str = ""  # the OS account that wrote it (core.annotators.OsIdentity)
    ssh_client: str = ""  # that process's SSH client address, if it ran over SSH
    origin: str = ""  # the label file it was imported from; "" when typed in memgrid
    external_id: str | None = None  # the imported row's stable id

    @property
    def imported(self) -> bool:
        return bool(self.origin)


@dataclass(frozen=True)
class TriageRecord:
    """One prompt's triage (`generate --triage-steps`): Wen et al.'s signal over its first
    steps, and whether it reached the threshold of that run (kept) or not (skipped)."""

    prompt: str
    model: str
    settings: dict[str, Any]
    triage_steps: int
    seeds: tuple[int, ...]
    value: float
    threshold: float
    kept: bool
    prompt_id: int = 0
    prompt_metadata: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""


@dataclass(frozen=True)
class Entity:
    """A lexicon entry: a name the prompt may mention or imply."""

    name: str
    type: str  # person | work | brand | place
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class CalibrationRecord:
    """One stored calibration run: the set it fitted, the fitted values and the full report.

    `metrics` is CalibrationResult.to_dict(); `fitted_threshold_set_id` names the set stored
    when the run was accepted.
    """

    id: int
    created_at: str
    threshold_set_id: int | None
    fitted_threshold_set_id: int | None
    label_count: int
    objective: str
    thresholds: dict[str, Any]
    metrics: dict[str, Any]
    accepted: bool = False


class QueueOrder(StrEnum):
    """The order in which an annotator's queue offers open grids (docs/design.md, "The annotation app")."""

    THRESHOLD = "threshold"  # nearest the threshold first
    SCORE = "score"  # highest memorization score first
    PROMPT = "prompt"  # by prompt text
    RANDOM = "random"  # a fixed shuffle, seeded

    @classmethod
    def parse(cls, text: str, source: str) -> QueueOrder:
        """The order named by `text`; an InputError naming `source` when there is none."""
        try:
            return cls(text)
        except ValueError:
            choices = ", ".join(order.value for order in cls)
            raise InputError(source, f"unknown order {text!r}; choose from {choices}") from None
