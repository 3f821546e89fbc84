"""Calibration runs: each fit of a threshold set, stored whether or not it is accepted."""

from __future__ import annotations

from typing import Any

from memgrid.core.errors import NotFoundError
from memgrid.core.records import CalibrationRecord
from memgrid.db.rows import RUN_COLUMNS, Noun, calibration_record, canonical_json, now_text


class CalibrationRuns(Noun):
    def add(
        self,
        *,
        threshold_set_id: int | None,
        label_count: int,
        objective: str,
        thresholds: dict[str, Any],
        metrics: dict[str, Any],
    ) -> int:
        cursor = self.store.write(
            """INSERT INTO calibration_runs (created_at, threshold_set_id, label_count,
                objective, thresholds, metrics) VALUES (?, ?, ?, ?, ?, ?)""",
            (
                now_text(),
                threshold_set_id,
                label_count,
                objective,
                canonical_json(thresholds),
                canonical_json(metrics),
            ),
        )
        return int(cursor.lastrowid or 0)

    def mark_accepted(self, run_id: int, fitted_threshold_set_id: int) -> None:
        self.store.write(
            "UPDATE calibration_runs SET accepted = 1, fitted_threshold_set_id = ? WHERE id = ?",
            (fitted_threshold_set_id, run_id),
        )

    def get(self, run_id: int) -> CalibrationRecord:
        row = self.store.row(f"SELECT {RUN_COLUMNS} FROM calibration_runs WHERE id = ?", (run_id,))
        if row is None:
            raise NotFoundError(f"calibration run {run_id}", "no calibration run with this id")
        return calibration_record(row)

    def all(self) -> list[CalibrationRecord]:
        """Every run, oldest first."""
        return [
            calibration_record(row)
            for row in self.store.rows(f"SELECT {RUN_COLUMNS} FROM calibration_runs ORDER BY id")
        ]
