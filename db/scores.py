"""Scores: each metric's result on each grid, replaced when the same metric and params rerun."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from memgrid.core.records import Score
from memgrid.db.rows import (
    SCORE_COLUMNS,
    Noun,
    canonical_json,
    content_key,
    now_text,
    placeholders,
    score_record,
)


class Scores(Noun):
    def add(self, score: Score) -> None:
        """Store a metric's result, replacing an earlier one with the same metric and params."""
        self.store.write(
            """INSERT INTO scores (grid_id, metric, params, params_key, version, "values",
                heatmap, available, note, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (grid_id, metric, params_key) DO UPDATE SET
                version = excluded.version, "values" = excluded."values",
                heatmap = excluded.heatmap, available = excluded.available,
                note = excluded.note, created_at = excluded.created_at""",
            (
                score.grid_id,
                score.metric,
                canonical_json(score.params),
                content_key(score.params),
                score.version,
                canonical_json(score.values),
                None if score.heatmap is None else json.dumps(score.heatmap),
                int(score.available),
                score.note,
                now_text(),
            ),
        )

    def where(self, *, grid_ids: Sequence[int], metric: str | None = None) -> list[Score]:
        """The stored scores of these grids (of one metric), by grid, then metric, then age.

        Age is when a score was last written, so the latest of a metric comes last.
        """
        if not grid_ids:
            return []
        sql = f"SELECT {SCORE_COLUMNS} FROM scores WHERE grid_id IN ({placeholders(grid_ids)})"
        params: list[Any] = list(grid_ids)
        if metric is not None:
            sql += " AND metric = ?"
            params.append(metric)
        rows = self.store.rows(sql + " ORDER BY grid_id, metric, created_at, id", params)
        return [score_record(row) for row in rows]

    def unscored_ids_where(
        self,
        *,
        metric: str,
        params: dict[str, Any],
        version: str,
        retry_unavailable: bool = True,
        computed_from: tuple[str, str] | None = None,
    ) -> list[int]:
        """Grids without a current score for metric+params+version, in id order.

        Current means available and covering every seed the grid has now, so a grid that
        gained seeds (a merge) is rescored: `grid_seeds` where a metric compares a sample of
        the seeds (keypoints), else `n_seeds`. With `computed_from` (a value's key, a plain
        name, and what it must be: the reference pool a match was made against), also that,
        and the score must be the grid's latest of the metric, which is the one read (a
        match made with other options since is not undone by skipping). An unavailable score
        (no weights) counts as not current unless `retry_unavailable` is False: then it is
        held until the metric can run.
        """
        held = "" if retry_unavailable else "OR s.available = 0"
        source_key, source = computed_from or ("", "")
        if source_key and not source_key.isidentifier():
            raise ValueError(f"not a plain value name: {source_key!r}")
        return [
            row[0]
            for row in self.store.rows(
                f"""SELECT g.id FROM grids g WHERE NOT EXISTS (
                    SELECT 1 FROM scores s WHERE s.grid_id = g.id AND s.metric = ?
                    AND s.params_key = ? AND s.version = ? AND ((s.available = 1
                    AND coalesce(json_extract(s."values", '$.grid_seeds'),
                        json_extract(s."values", '$.n_seeds')) =
                        (SELECT count(*) FROM images i WHERE i.grid_id = g.id)
                    AND (? = '' OR (json_extract(s."values", '$.' || ?) = ?
                        AND NOT EXISTS (SELECT 1 FROM scores t WHERE t.grid_id = g.id
                            AND t.metric = s.metric
                            AND (t.created_at, t.id) > (s.created_at, s.id))))) {held})
                ) ORDER BY g.id""",
                (metric, content_key(params), version, source_key, source_key, source),
            )
        ]

    def field_types_all(self) -> dict[str, dict[str, set[str]]]:
        """Metric -> value key -> the JSON types it holds over every available score."""
        types: dict[str, dict[str, set[str]]] = {}
        for metric, key, kind in self.store.rows(
            """SELECT DISTINCT s.metric, j.key, j.type FROM scores s, json_each(s."values") j
            WHERE s.available = 1"""
        ):
            types.setdefault(metric, {}).setdefault(key, set()).add(kind)
        return types

    def value_types_all(self) -> dict[str, dict[str, str]]:
        """Metric -> key -> JSON type ('real', 'integer', 'array', ...) of its latest available score."""
        types: dict[str, dict[str, str]] = {}
        for metric, key, kind in self.store.rows(
            """SELECT s.metric, j.key, j.type FROM scores s, json_each(s."values") j
            WHERE s.id IN (SELECT max(id) FROM scores WHERE available = 1 GROUP BY metric)"""
        ):
            types.setdefault(metric, {})[key] = kind
        return types

    def numbers_where(
        self, *, metric: str, keys: Sequence[str], length_keys: Sequence[str] = ()
    ) -> list[tuple[Any, ...]]:
        """Rows of (grid id, the values at `keys`, then the lengths of the lists at `length_keys`).

        One row per available score of `metric`, oldest first. SQLite's JSON functions read
        only the keys asked for, so calibration reads 100,000 grids without parsing JSON
        in Python; ask only for keys the metric has (see `value_types_all`).
        """
        for key in (*keys, *length_keys):
            if not key.isidentifier():
                raise ValueError(f"not a score value key: {key!r}")
        columns = [f"""json_extract("values", '$.{key}')""" for key in keys]
        columns += [f"""json_array_length("values", '$.{key}')""" for key in length_keys]
        return self.store.rows(
            f"""SELECT grid_id, {", ".join(columns) or "NULL"} FROM scores
            WHERE metric = ? AND available = 1 ORDER BY id""",
            (metric,),
        )
