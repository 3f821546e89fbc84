"""The lexicon: names a prompt may mention or imply (people, works, brands, places)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from memgrid.core.records import Entity
from memgrid.db.rows import Noun, stored_json


class Entities(Noun):
    def add_many(self, entities: Iterable[Entity]) -> int:
        """Insert or update lexicon entries by name; returns how many were written."""
        rows = [(e.name, e.type, json.dumps(list(e.aliases))) for e in entities]
        self.store.write_many(
            """INSERT INTO entities (name, type, aliases) VALUES (?, ?, ?)
            ON CONFLICT (name) DO UPDATE SET type = excluded.type, aliases = excluded.aliases""",
            rows,
        )
        return len(rows)

    def all(self) -> list[Entity]:
        return [
            Entity(name=row[0], type=row[1], aliases=tuple(stored_json(row[2])))
            for row in self.store.rows("SELECT name, type, aliases FROM entities ORDER BY name")
        ]
