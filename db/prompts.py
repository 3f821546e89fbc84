"""Prompts: the texts grids are rendered from, stored once each."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from memgrid.core.errors import NotFoundError
from memgrid.core.records import Prompt
from memgrid.db.rows import Noun, canonical_json, now_text, stored_json

_INSERT = "INSERT OR IGNORE INTO prompts (text, metadata, created_at) VALUES (?, ?, ?)"


class Prompts(Noun):
    def add_many(self, items: Iterable[tuple[str, dict[str, Any]]]) -> tuple[int, int]:
        """Insert prompts, merging exact duplicates; returns (added, merged)."""
        added = merged = 0
        created_at = now_text()
        with self.store.atomic():
            for text, metadata in items:
                if self.store.write(_INSERT, (text, canonical_json(metadata), created_at)).rowcount:
                    added += 1
                else:
                    merged += 1
        return added, merged

    def ensure(self, text: str, metadata: dict[str, Any] | None = None) -> int:
        """The prompt's id, adding it first when it is new."""
        self.store.write(_INSERT, (text, canonical_json(metadata or {}), now_text()))
        return int(self.store.row("SELECT id FROM prompts WHERE text = ?", (text,))[0])

    def get(self, prompt_id: int) -> Prompt:
        row = self.store.row("SELECT id, text, metadata FROM prompts WHERE id = ?", (prompt_id,))
        if row is None:
            raise NotFoundError(f"prompt {prompt_id}")
        return Prompt(id=row[0], text=row[1], metadata=stored_json(row[2]))

    def all(self) -> list[Prompt]:
        return [
            Prompt(id=row[0], text=row[1], metadata=stored_json(row[2]))
            for row in self.store.rows("SELECT id, text, metadata FROM prompts ORDER BY id")
        ]

    def metadata_types_all(self) -> dict[str, set[str]]:
        """Each field of the prompts that have grids -> the JSON types it holds (json_each's)."""
        types: dict[str, set[str]] = {}
        for key, kind in self.store.rows(
            """SELECT DISTINCT j.key, j.type FROM prompts p, json_each(p.metadata) j
            WHERE p.id IN (SELECT prompt_id FROM grids)"""
        ):
            types.setdefault(key, set()).add(kind)
        return types

    @property
    def count(self) -> int:
        return int(self.store.row("SELECT count(*) FROM prompts")[0])
