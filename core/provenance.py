"""A grid's provenance when more than one run added its seeds.

docs/design.md, "Generation and import": a rerun with more seeds (or a merge, or a second
import) adds only the seeds a grid lacks. The grid keeps the first run's provenance at the
top, with `seeds` listing every seed it has, and `runs`: one entry per run that added
seeds, each that run's provenance with `seeds` the seeds it added.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

RUNS = "runs"
SEEDS = "seeds"


def _run_entries(provenance: Mapping[str, Any], seeds: Iterable[int]) -> list[dict[str, Any]]:
    """The runs a provenance records, limited to `seeds`; a single run when it lists none."""
    wanted = set(seeds)
    if not provenance.get(RUNS):
        top = {key: value for key, value in provenance.items() if key != RUNS}
        return [{**top, SEEDS: sorted(wanted)}] if wanted else []
    entries = []
    for run in provenance[RUNS]:
        kept = sorted(wanted & set(run.get(SEEDS, ())))
        if kept:
            entries.append({**run, SEEDS: kept})
    return entries


def extend_provenance(
    stored: Mapping[str, Any],
    seeds_before: Iterable[int],
    run: Mapping[str, Any],
    seeds_added: Iterable[int],
) -> dict[str, Any]:
    """The provenance of a grid after `run` added `seeds_added` to the seeds it had."""
    before, added = set(seeds_before), set(seeds_added)
    if not added:
        return dict(stored)
    return {
        **stored,
        SEEDS: sorted(before | added),
        RUNS: _run_entries(stored, before) + _run_entries(run, added),
    }
