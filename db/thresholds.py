"""Threshold sets: named, versioned detection thresholds, one active per model."""

from __future__ import annotations

from typing import Any

from memgrid.core.errors import NotFoundError
from memgrid.core.records import ThresholdSet
from memgrid.db.rows import THRESHOLD_COLUMNS, Noun, canonical_json, now_text, threshold_set_record


class ThresholdSets(Noun):
    def add(
        self,
        name: str,
        values: dict[str, float],
        *,
        notes: str = "",
        model: str | None = None,
        activate: bool = False,
        origin: str = "",
    ) -> ThresholdSet:
        """Store a new version of the named set (versions count up from 0).

        `origin` says where it came from: v0, file PATH, calibration run N.
        """
        with self.store.atomic():
            row = self.store.row("SELECT max(version) FROM threshold_sets WHERE name = ?", (name,))
            version = 0 if row[0] is None else int(row[0]) + 1
            cursor = self.store.write(
                """INSERT INTO threshold_sets (name, version, model, "values", notes, origin,
                    created_at) VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (name, version, model, canonical_json(values), notes, origin, now_text()),
            )
            set_id = int(cursor.lastrowid or 0)
            if activate:
                self.activate(set_id)
        return self.get(set_id)

    def activate(self, set_id: int) -> None:
        """Make one set active for its model (or for all grids when it names none)."""
        with self.store.atomic():
            model = self.get(set_id).model
            self.store.write("UPDATE threshold_sets SET active = 0 WHERE model IS ?", (model,))
            self.store.write("UPDATE threshold_sets SET active = 1 WHERE id = ?", (set_id,))

    def get(self, set_id: int) -> ThresholdSet:
        row = self.store.row(
            f"SELECT {THRESHOLD_COLUMNS} FROM threshold_sets WHERE id = ?", (set_id,)
        )
        if row is None:
            raise NotFoundError(f"threshold set {set_id}", "no threshold set with this id")
        return threshold_set_record(row)

    def find(self, name: str, version: int | None = None) -> ThresholdSet | None:
        """The named set at `version`, or its latest version."""
        sql = f"SELECT {THRESHOLD_COLUMNS} FROM threshold_sets WHERE name = ?"
        params: list[Any] = [name]
        if version is not None:
            sql += " AND version = ?"
            params.append(version)
        row = self.store.row(sql + " ORDER BY version DESC LIMIT 1", params)
        return None if row is None else threshold_set_record(row)

    def find_active(self, model: str | None = None) -> ThresholdSet | None:
        """The active set for `model`, falling back to the project-wide active set."""
        for candidate in [model, None] if model else [None]:
            row = self.store.row(
                f"SELECT {THRESHOLD_COLUMNS} FROM threshold_sets WHERE active = 1 AND model IS ?",
                (candidate,),
            )
            if row is not None:
                return threshold_set_record(row)
        return None

    def all(self) -> list[ThresholdSet]:
        return [
            threshold_set_record(row)
            for row in self.store.rows(
                f"SELECT {THRESHOLD_COLUMNS} FROM threshold_sets ORDER BY name, version"
            )
        ]
