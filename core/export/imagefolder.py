"""The Hugging Face `imagefolder` export: images plus `metadata.parquet`, one row per image.

`datasets.load_dataset("imagefolder", data_dir=...)` takes the features of the metadata
from the file's Arrow schema, and only Parquet carries one: its `huggingface` schema
metadata declares `category` a ClassLabel of the four categories (a JSONL metadata file
can only give strings). The other columns are the flat layout's (rows.flat_columns).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from memgrid.core.export.base import ExportItem
from memgrid.core.export.columns import ColumnKind, DataColumns
from memgrid.core.export.parquet import ParquetWriter
from memgrid.core.export.rows import FLAT_COLUMN_KINDS, flat_columns, flat_row
from memgrid.core.export.schema import arrow_type, load_pyarrow
from memgrid.core.taxonomy import Category

IMAGEFOLDER_METADATA = "metadata.parquet"
IMAGE_COLUMN_KINDS = {
    "file_name": ColumnKind.TEXT,
    "seed": ColumnKind.INTEGER,
    "sha256": ColumnKind.TEXT,
    "width": ColumnKind.INTEGER,
    "height": ColumnKind.INTEGER,
}
# Whole-grid columns that a row per image leaves out (its own seed and file say it).
_PER_GRID_ONLY = ("seeds", "images")
# The ClassLabel's names, in the order of its integer codes.
CATEGORY_NAMES = [category.value for category in Category]


def imagefolder_columns(columns: DataColumns) -> list[str]:
    return [
        *IMAGE_COLUMN_KINDS,
        *(name for name in flat_columns(columns) if name not in _PER_GRID_ONLY),
    ]


class ImageFolderWriter(ParquetWriter):
    """Images plus `metadata.parquet`, one row per image with its grid's flat columns.

    One row per image is what `datasets.load_dataset("imagefolder", ...)` reads (its
    `file_name` column); `grid_id` and `seed` tie the rows of a grid together.
    """

    file_name = IMAGEFOLDER_METADATA

    def column_names(self) -> list[str]:
        return imagefolder_columns(self.columns)

    @classmethod
    def schema(cls, pa: Any, columns: DataColumns) -> Any:
        kinds = {
            **IMAGE_COLUMN_KINDS,
            **FLAT_COLUMN_KINDS,
            **columns.prompt_meta_kinds(),
            **columns.score_kinds(),
        }
        features = {"category": {"_type": "ClassLabel", "names": CATEGORY_NAMES}}
        return pa.schema(
            [
                # The ClassLabel's storage: the category's code, null without an agreed label.
                (name, pa.int64() if name == "category" else arrow_type(pa, kinds[name]))
                for name in imagefolder_columns(columns)
            ],
            metadata={"huggingface": json.dumps({"info": {"features": features}})},
        )

    @classmethod
    def render(cls, items: Sequence[ExportItem], columns: DataColumns) -> Any:
        pa = load_pyarrow()
        lines = []
        for item in items:
            flat = flat_row(item.row, columns)
            category = item.row["category"]
            flat["category"] = None if category is None else CATEGORY_NAMES.index(category)
            for image in item.row["images"]:
                lines.append(
                    {
                        "file_name": image["path"],
                        "seed": image["seed"],
                        "sha256": image["sha256"],
                        "width": image["width"],
                        "height": image["height"],
                        **flat,
                    }
                )
        return pa.Table.from_pylist(lines, schema=cls.schema(pa, columns))
