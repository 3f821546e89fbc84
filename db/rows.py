"""What every noun of the store shares: JSON keys, timestamps, and rows turned into records."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from memgrid.core.errors import DatabaseError
from memgrid.core.records import (
    CalibrationRecord,
    Grid,
    GridImage,
    LabelEvent,
    Proposal,
    Reason,
    Score,
    ThresholdSet,
)
from memgrid.core.taxonomy import Category, Feature, LabelAction, LabelState, Webster

if TYPE_CHECKING:
    from memgrid.db.store import Store


class Noun:
    """One kind of thing in the database (grids, scores, labels...), reached as `store.<noun>`."""

    def __init__(self, store: Store) -> None:
        self.store = store


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def stored_json(value: Any) -> Any:
    """A JSON column read back; a damaged value is one DatabaseError, not a traceback."""
    try:
        return json.loads(value)
    except (ValueError, TypeError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise DatabaseError(
            f"database: a stored value is not readable JSON ({type(error).__name__}); "
            "the database is damaged or was written by another program"
        ) from None


def content_key(value: Any) -> str:
    """A short stable key for a settings or params dict, for uniqueness constraints."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:24]


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def placeholders(values: Sequence[Any]) -> str:
    """`?, ?, ...` for an IN list; callers keep batches under SQLite's variable limit."""
    return ", ".join("?" * len(values))


GRID_COLUMNS = "g.id, g.prompt_id, p.text, g.model, g.settings, g.provenance, g.source, g.origin"
SCORE_COLUMNS = 'grid_id, metric, params, version, "values", heatmap, available, note'
THRESHOLD_COLUMNS = 'id, name, version, "values", model, notes, active'
PROPOSAL_COLUMNS = "grid_id, threshold_set_id, category, features, reasons, webster, score, margin"
EVENT_COLUMNS = """id, grid_id, annotator, action, state, category, features, note, webster,
    undoes, proposal_shown, proposal_category, session, created_at, os_user, ssh_client"""
RUN_COLUMNS = """id, created_at, threshold_set_id, fitted_threshold_set_id, label_count,
    objective, thresholds, metrics, accepted"""


def grid_record(row: Sequence[Any], images: Sequence[GridImage]) -> Grid:
    """A grid from GRID_COLUMNS (grids `g` joined to prompts `p`) and its images."""
    return Grid(
        id=row[0],
        prompt_id=row[1],
        prompt=row[2],
        model=row[3],
        settings=stored_json(row[4]),
        provenance=stored_json(row[5]),
        source=row[6],
        images=tuple(images),
        origin=row[7],
    )


def score_record(row: Sequence[Any]) -> Score:
    return Score(
        grid_id=row[0],
        metric=row[1],
        params=stored_json(row[2]),
        version=row[3],
        values=stored_json(row[4]),
        heatmap=None if row[5] is None else stored_json(row[5]),
        available=bool(row[6]),
        note=row[7],
    )


def threshold_set_record(row: Sequence[Any]) -> ThresholdSet:
    return ThresholdSet(
        id=row[0],
        name=row[1],
        version=row[2],
        values=stored_json(row[3]),
        model=row[4],
        notes=row[5],
        active=bool(row[6]),
    )


def proposal_record(row: Sequence[Any]) -> Proposal:
    return Proposal(
        grid_id=row[0],
        threshold_set_id=row[1],
        category=Category(row[2]),
        features=tuple(Feature.from_dict(f) for f in stored_json(row[3])),
        reasons=tuple(Reason.from_dict(r) for r in stored_json(row[4])),
        webster=Webster(row[5]) if row[5] else None,
        score=row[6],
        margin=row[7],
    )


def label_event_record(row: Sequence[Any]) -> LabelEvent:
    return LabelEvent(
        id=row[0],
        grid_id=row[1],
        annotator=row[2],
        action=LabelAction(row[3]),
        state=LabelState(row[4]) if row[4] else None,
        category=Category(row[5]) if row[5] else None,
        features=tuple(Feature.from_dict(f) for f in stored_json(row[6])),
        note=row[7],
        webster=Webster(row[8]) if row[8] else None,
        undoes=row[9],
        proposal_shown=bool(row[10]),
        proposal_category=Category(row[11]) if row[11] else None,
        session=row[12],
        created_at=row[13],
        os_user=row[14],
        ssh_client=row[15],
    )


def calibration_record(row: Sequence[Any]) -> CalibrationRecord:
    return CalibrationRecord(
        id=row[0],
        created_at=row[1],
        threshold_set_id=row[2],
        fitted_threshold_set_id=row[3],
        label_count=row[4],
        objective=row[5],
        thresholds=stored_json(row[6]),
        metrics=stored_json(row[7]),
        accepted=bool(row[8]),
    )
