"""Columns that depend on the project's data: the prompts' own fields and the score values.

docs/design.md, "Export": the fields that came with a prompt (`source_id`, `laion_key`,
`url`, ...) join an export back to its source, so flat layouts (CSV, Parquet, imagefolder)
give each its own `prompt_meta.<key>` column, and every scalar score value its own
`score.<metric>.<field>` column beside the scores' JSON. A CSV header and a Parquet
schema are fixed before the first row, so the columns come from the whole project (the
JSON types SQLite sees per key), not from the rows of one batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

PROMPT_META = "prompt_meta"
SCORE_PREFIX = "score"
# SQLite's json_each types that hold one value; arrays and objects stay in the JSON columns.
_SCALAR_TYPES = {"true", "false", "integer", "real", "text"}


# Rows hold no cycles, so the encoder skips its cycle check (a fifth of its time).
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), check_circular=False, default=str
)


def compact_json(value: Any) -> str:
    """One-line JSON that line-based readers cannot split: U+2028/U+2029 are escaped too."""
    text = _ENCODER.encode(value)
    if "\u2028" in text or "\u2029" in text:
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text


class ColumnKind(StrEnum):
    """The type of a flat column; TEXT holds strings as they are and anything else as JSON."""

    BOOL = "bool"
    INTEGER = "integer"
    REAL = "real"
    TEXT = "text"


def column_kind(json_types: Iterable[str]) -> ColumnKind:
    """The one column type that holds every value of these SQLite JSON types."""
    found = set(json_types) - {"null"}
    if found and found <= {"true", "false"}:
        return ColumnKind.BOOL
    if found == {"integer"}:
        return ColumnKind.INTEGER
    if found and found <= {"integer", "real"}:
        return ColumnKind.REAL
    return ColumnKind.TEXT


def cell(value: Any, kind: ColumnKind) -> Any:
    """A value as its column stores it (None stays None)."""
    if value is None:
        return None
    if kind is ColumnKind.TEXT:
        return value if isinstance(value, str) else compact_json(value)
    if kind is ColumnKind.REAL:
        return float(value)
    return value


@dataclass(frozen=True)
class DataColumns:
    """The `prompt_meta.<key>` and `score.<metric>.<field>` columns of one export, typed."""

    prompt_meta: tuple[tuple[str, ColumnKind], ...] = ()
    scores: tuple[tuple[str, str, ColumnKind], ...] = ()

    @classmethod
    def from_types(
        cls,
        prompt_meta_types: Mapping[str, Iterable[str]],
        score_types: Mapping[str, Mapping[str, Iterable[str]]],
    ) -> DataColumns:
        """From the JSON types per prompt field and per metric and score field (store reads).

        Score fields that only ever hold arrays or objects get no column of their own.
        """
        return cls(
            prompt_meta=tuple(
                (key, column_kind(types)) for key, types in sorted(prompt_meta_types.items())
            ),
            scores=tuple(
                (metric, key, column_kind(types))
                for metric, fields in sorted(score_types.items())
                for key, types in sorted(fields.items())
                if set(types) & _SCALAR_TYPES
            ),
        )

    def prompt_meta_kinds(self) -> dict[str, ColumnKind]:
        """`prompt_meta.<key>` -> its type, by key."""
        return {f"{PROMPT_META}.{key}": kind for key, kind in self.prompt_meta}

    def score_kinds(self) -> dict[str, ColumnKind]:
        """`score.<metric>.<field>` -> its type, by metric, then field."""
        return {f"{SCORE_PREFIX}.{metric}.{key}": kind for metric, key, kind in self.scores}

    def prompt_meta_cells(self, row: Mapping[str, Any]) -> dict[str, Any]:
        meta = row["prompt_meta"]
        return {f"{PROMPT_META}.{key}": cell(meta.get(key), kind) for key, kind in self.prompt_meta}

    def score_cells(self, row: Mapping[str, Any]) -> dict[str, Any]:
        scores = row["scores"]
        return {
            f"{SCORE_PREFIX}.{metric}.{key}": cell(
                scores.get(metric, {}).get("values", {}).get(key), kind
            )
            for metric, key, kind in self.scores
        }
