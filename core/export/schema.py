"""The Parquet layout of an export row, and pyarrow, loaded only when a Parquet export runs."""

from __future__ import annotations

from typing import Any

from memgrid.core.export.columns import ColumnKind, DataColumns
from memgrid.core.extras import require_extra


def load_pyarrow() -> Any:
    """pyarrow with its parquet module, or MissingExtraError naming the extra that installs it."""
    require_extra("export", "a Parquet file")
    import pyarrow
    import pyarrow.parquet  # makes pyarrow.parquet reachable

    return pyarrow


def arrow_type(pa: Any, kind: ColumnKind) -> Any:
    return {
        ColumnKind.BOOL: pa.bool_(),
        ColumnKind.INTEGER: pa.int64(),
        ColumnKind.REAL: pa.float64(),
        ColumnKind.TEXT: pa.string(),
    }[kind]


def flat_fields(pa: Any, kinds: dict[str, ColumnKind]) -> list[tuple[str, Any]]:
    return [(name, arrow_type(pa, kind)) for name, kind in kinds.items()]


def parquet_schema(pa: Any, columns: DataColumns) -> Any:
    """The Parquet layout of a row: typed structs, free-form dicts (scores, settings,
    provenance) as JSON text, since their keys differ from grid to grid; the prompt's
    fields and the scalar score values also as flat columns (`columns`)."""
    feature = pa.struct(
        [("category", pa.string()), ("name", pa.string()), ("tiles", pa.list_(pa.int32()))]
    )
    reason = pa.struct(
        [
            ("signal", pa.string()),
            ("text", pa.string()),
            ("value", pa.float64()),
            ("threshold", pa.float64()),
            ("fired", pa.bool_()),
        ]
    )
    agreement = pa.struct(
        [
            ("how", pa.string()),
            ("support", pa.int32()),
            ("annotators", pa.int32()),
            ("share", pa.float64()),
            ("tied", pa.list_(pa.string())),
        ]
    )
    label = pa.struct(
        [
            ("annotator", pa.string()),
            ("action", pa.string()),
            ("state", pa.string()),
            ("category", pa.string()),
            ("features", pa.list_(feature)),
            ("webster", pa.string()),
            ("note", pa.string()),
            ("proposal_shown", pa.bool_()),
            ("time", pa.string()),
            ("imported_from", pa.string()),
        ]
    )
    threshold_set = pa.struct([("id", pa.int64()), ("name", pa.string()), ("version", pa.int32())])
    proposal = pa.struct(
        [
            ("category", pa.string()),
            ("threshold_set", threshold_set),
            ("score", pa.float64()),
            ("margin", pa.float64()),
            ("webster", pa.string()),
            ("features", pa.list_(feature)),
            ("reasons", pa.list_(reason)),
        ]
    )
    matched = [
        ("webster", pa.string()),
        ("key", pa.string()),
        ("url", pa.string()),
        ("caption", pa.string()),
        ("sha256", pa.string()),
        ("distance", pa.float64()),
        ("carlini", pa.float64()),
        ("linked", pa.bool_()),
    ]
    reference = pa.struct([*matched, ("seeds", pa.int32()), ("n_seeds", pa.int32())])
    image = pa.struct(
        [
            ("seed", pa.int64()),
            ("sha256", pa.string()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("path", pa.string()),
            ("project_path", pa.string()),
            ("reference", pa.struct(matched)),
        ]
    )
    return pa.schema(
        [
            ("grid_id", pa.int64()),
            ("prompt_id", pa.int64()),
            ("prompt", pa.string()),
            *flat_fields(pa, columns.prompt_meta_kinds()),
            ("model", pa.string()),
            ("source", pa.string()),
            ("category", pa.string()),
            ("state", pa.string()),
            ("agreement", agreement),
            ("features", pa.list_(feature)),
            ("webster", pa.string()),
            ("labels", pa.list_(label)),
            ("proposal", proposal),
            ("reference", reference),
            ("scores", pa.string()),
            *flat_fields(pa, columns.score_kinds()),
            ("settings", pa.string()),
            ("provenance", pa.string()),
            ("images", pa.list_(image)),
            ("contact_sheet", pa.string()),
        ]
    )
