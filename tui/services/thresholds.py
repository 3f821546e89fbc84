"""Threshold history: every stored set and version, where it came from, and switching between them.

docs/design.md, "Calibration and agreement" (threshold history). Sets are named and versioned (v0, a file given to
`memgrid propose -t`, an accepted calibration run); one is active per model (or for all
grids). Activating an older version is how a calibration is rolled back: the proposals are
recomputed under it first, then it is made active (proposing.propose_then_activate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memgrid.core.errors import NotFoundError
from memgrid.core.records import ThresholdSet
from memgrid.core.thresholds import ThresholdChange, diff_values, parse_set_reference
from memgrid.tui.services.project import Project
from memgrid.tui.services.proposing import ProposeReport, propose_then_activate


def set_facts(threshold_set: ThresholdSet) -> dict[str, Any]:
    """A set as `thresholds list --json` and `show --json` give it."""
    return {
        "set": threshold_set.reference,
        "name": threshold_set.name,
        "version": threshold_set.version,
        "model": threshold_set.model,
        "active": threshold_set.active,
        "origin": threshold_set.origin,
        "created_at": threshold_set.created_at,
        "notes": threshold_set.notes,
        "values": threshold_set.values,
    }


def find_set(project: Project, reference: str) -> ThresholdSet:
    """The set NAME@VERSION names (NAME alone: its latest version); NotFoundError listing
    what is stored otherwise."""
    name, version = parse_set_reference(reference)
    found = project.store.thresholds.find(name, version)
    if found is None:
        stored = [t.reference for t in project.store.thresholds.all()]
        hint = f"stored: {', '.join(stored)}" if stored else "none stored yet (memgrid propose)"
        raise NotFoundError(f"threshold set {reference!r}", f"no such set or version; {hint}")
    return found


def activate_set(project: Project, reference: str) -> tuple[ThresholdSet, ProposeReport]:
    """Make the named set active for its model and recompute the proposals under it."""
    chosen = find_set(project, reference)
    report = propose_then_activate(project, chosen.id)
    return project.store.thresholds.get(chosen.id), report


@dataclass(frozen=True)
class SetDiff:
    before: ThresholdSet
    after: ThresholdSet
    changes: list[ThresholdChange]

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.before.reference,
            "to": self.after.reference,
            "models": [self.before.model, self.after.model],
            "changes": [
                {"key": c.key, "from": c.before, "to": c.after, "relative": c.relative}
                for c in self.changes
            ],
        }


def diff_sets(project: Project, before: str, after: str) -> SetDiff:
    first, second = find_set(project, before), find_set(project, after)
    return SetDiff(first, second, diff_values(first.values, second.values))
