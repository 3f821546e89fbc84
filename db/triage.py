"""Triage results: every prompt a `generate --triage-steps` run scored, kept or skipped.

docs/design.md, "Generation and import": the value of every triaged prompt is stored,
skipped ones included, so an ROC over all prompts (Wen et al.) needs nothing but the
project. One result per prompt, model, settings and number of triage steps; a rerun
replaces it.
"""

from __future__ import annotations

import json

from memgrid.core.records import TriageRecord
from memgrid.db.rows import Noun, canonical_json, content_key, now_text


class TriageResults(Noun):
    def add(self, result: TriageRecord) -> None:
        store = self.store
        with store.atomic():
            prompt_id = store.prompts.ensure(result.prompt)
            store.write(
                """INSERT INTO triage_results (prompt_id, model, settings, settings_key,
                    triage_steps, seeds, value, threshold, kept, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (prompt_id, model, settings_key, triage_steps) DO UPDATE SET
                    seeds = excluded.seeds, value = excluded.value,
                    threshold = excluded.threshold, kept = excluded.kept,
                    created_at = excluded.created_at""",
                (
                    prompt_id,
                    result.model,
                    canonical_json(result.settings),
                    content_key(result.settings),
                    result.triage_steps,
                    json.dumps(list(result.seeds)),
                    result.value,
                    result.threshold,
                    int(result.kept),
                    now_text(),
                ),
            )

    def all(self) -> list[TriageRecord]:
        """Every result, by prompt, then model and steps."""
        return [
            TriageRecord(
                prompt=row[0],
                model=row[1],
                settings=json.loads(row[2]),
                triage_steps=row[3],
                seeds=tuple(json.loads(row[4])),
                value=row[5],
                threshold=row[6],
                kept=bool(row[7]),
                prompt_id=row[8],
                prompt_metadata=json.loads(row[9]),
                created_at=row[10],
            )
            for row in self.store.rows(
                """SELECT p.text, t.model, t.settings, t.triage_steps, t.seeds, t.value,
                    t.threshold, t.kept, t.prompt_id, p.metadata, t.created_at
                FROM triage_results t JOIN prompts p ON p.id = t.prompt_id
                ORDER BY t.prompt_id, t.model, t.triage_steps"""
            )
        ]

    def counts_all(self) -> dict[str, int]:
        """Results kept (a grid was generated) and skipped (below the threshold)."""
        row = self.store.row("SELECT count(*), coalesce(sum(kept), 0) FROM triage_results")
        return {"triaged": int(row[0]), "kept": int(row[1]), "skipped": int(row[0] - row[1])}
