"""One grid's export row: nested (JSONL, Parquet, WebDataset) and flat (CSV, imagefolder)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import PurePath
from typing import Any

from memgrid.core.agreement import AgreedLabel, grid_state
from memgrid.core.export.columns import ColumnKind, DataColumns, compact_json
from memgrid.core.records import Grid, LabelEvent, Proposal, Score, ThresholdSet
from memgrid.core.references.matching import REFERENCE_METRIC

REFERENCE_FIELDS = ("key", "url", "caption", "sha256", "distance", "carlini", "linked")

# What each field of a row holds; the manifest carries this, so an export explains itself.
ROW_FIELDS = {
    "grid_id": "the grid's id in the project (file names derive from it)",
    "prompt_id": "the prompt's id in the project",
    "prompt": "the prompt text",
    "prompt_meta": "the fields that came with the prompt (`memgrid prompts add`, `import`): "
    "source_id, laion_key, url, ... as given; flat layouts give each a `prompt_meta.<key>` "
    "column",
    "model": "the generator model",
    "source": "where the grid came from (generate, import, demo)",
    "category": "the agreed primary category: explicit, implicit, unintended or none; "
    "null without an agreed label",
    "state": "labelled, flagged, skipped or unlabelled, over all annotators",
    "agreement": "how the label was reached (adjudicated, majority, tie, unlabelled), the "
    "annotators who chose it (support) out of those who labelled (annotators), their "
    "share, and the categories of a tie",
    "features": "the agreed label's features: category, name, tiles of the region map "
    "(empty: the whole image)",
    "webster": "Webster's replication type (MV, TV, RV, N) where the labels give one",
    "labels": "every annotator's current label, and adjudications, with time, whether "
    "the proposal was shown, and the label file it was imported from (null: typed in memgrid)",
    "proposal": "the categorizer's proposal under the active threshold set (name, "
    "version), with score, margin and reasons",
    "reference": "the training image the grid copies, from `memgrid match` (null when not "
    "matched): Webster's type from the evidence (MV its own caption's image, RV another pool "
    "image, TV a region, N none: then the nearest), key, url, caption, sha256, distance "
    "(robust tiled-l2), Carlini's distance, whether it is linked to the prompt, seeds matched",
    "scores": "metric -> the latest stored run: version, params, values, heat map; flat "
    "layouts add a `score.<metric>.<field>` column per scalar value",
    "settings": "the generation settings",
    "provenance": "how the grid was generated or imported",
    "images": "one per seed: seed, sha256, size, path in the export (null when images "
    "were left out), path in the project, and its best reference match (as `reference`)",
    "contact_sheet": "path in the export of the grid's contact sheet (the seeds tiled, the "
    "region outlined); null without --contact-sheet",
}


def build_row(
    grid: Grid,
    events: Sequence[LabelEvent],
    agreed: AgreedLabel,
    proposal: Proposal | None,
    threshold_set: ThresholdSet | None,
    scores: Sequence[Score],
    image_paths: Sequence[str | None],
    contact_sheet: str | None = None,
) -> dict[str, Any]:
    """The export row of one grid; `image_paths` and `contact_sheet` are relative to the
    export (None: not in it).

    `scores` maps each metric to its latest stored run; later entries win.
    """
    reference, by_seed = reference_fields(scores)
    return {
        "grid_id": grid.id,
        "prompt_id": grid.prompt_id,
        "prompt": grid.prompt,
        "prompt_meta": grid.prompt_metadata,
        "model": grid.model,
        "source": grid.source,
        "category": _value(agreed.category),
        "state": grid_state(events).value,
        "agreement": {
            "how": agreed.how.value,
            "support": agreed.support,
            "annotators": agreed.annotators,
            "share": agreed.share,
            "tied": [category.value for category in agreed.tied],
        },
        "features": [feature.to_dict() for feature in agreed.features],
        "webster": _value(agreed.webster),
        "labels": [_label(event) for event in events],
        "proposal": _proposal(proposal, threshold_set),
        "reference": reference,
        "scores": {score.metric: _score(score) for score in scores},
        "settings": grid.settings,
        "provenance": grid.provenance,
        "images": [
            {
                "seed": image.seed,
                "sha256": image.sha256,
                "width": image.width,
                "height": image.height,
                "path": path,
                "project_path": image.path,
                "reference": by_seed.get(image.seed),
            }
            for image, path in zip(grid.images, image_paths, strict=True)
        ],
        "contact_sheet": contact_sheet,
    }


def reference_fields(
    scores: Sequence[Score],
) -> tuple[dict[str, Any] | None, dict[int, dict[str, Any]]]:
    """The grid's matched reference and each seed's, from its latest `reference` score."""
    matched = [s for s in scores if s.metric == REFERENCE_METRIC and s.available]
    if not matched:
        return None, {}
    values = matched[-1].values
    best = values.get("reference") or {}
    grid = {
        "webster": values.get("webster"),
        **{field: best.get(field) for field in REFERENCE_FIELDS},
        "seeds": values.get("matched_seeds"),
        "n_seeds": values.get("n_seeds"),
    }
    references = values.get("references") or {}
    by_seed = {}
    for seed in values.get("seeds") or []:
        described = references.get(str(seed.get("reference_id"))) or {}
        by_seed[int(seed["seed"])] = {
            "webster": seed.get("webster"),
            **{field: described.get(field) for field in ("key", "url", "caption", "sha256")},
            **{field: seed.get(field) for field in ("distance", "carlini", "linked")},
        }
    return grid, by_seed


def _value(member: StrEnum | None) -> str | None:
    return None if member is None else member.value


def _label(event: LabelEvent) -> dict[str, Any]:
    return {
        "annotator": event.annotator,
        "action": event.action,
        "state": _value(event.state),
        "category": _value(event.category),
        "features": [feature.to_dict() for feature in event.features],
        "webster": _value(event.webster),
        "note": event.note,
        "proposal_shown": event.proposal_shown,
        "time": datetime.fromtimestamp(event.created_at, UTC).isoformat(timespec="milliseconds"),
        # The label file it came from (its name: a full path would leak the importer's
        # folders into a shared dataset); null when typed in memgrid.
        "imported_from": PurePath(event.origin).name if event.origin else None,
    }


def _proposal(
    proposal: Proposal | None, threshold_set: ThresholdSet | None
) -> dict[str, Any] | None:
    if proposal is None:
        return None
    return {
        "category": proposal.category.value,
        "threshold_set": None
        if threshold_set is None
        else {"id": threshold_set.id, "name": threshold_set.name, "version": threshold_set.version},
        "score": proposal.score,
        "margin": proposal.margin,
        "webster": _value(proposal.webster),
        "features": [feature.to_dict() for feature in proposal.features],
        "reasons": [reason.to_dict() for reason in proposal.reasons],
    }


def _score(score: Score) -> dict[str, Any]:
    return {
        "version": score.version,
        "params": score.params,
        "values": score.values,
        "available": score.available,
        "note": score.note,
        "heatmap": score.heatmap,
    }


# Flat rows (CSV, imagefolder): scalars as columns, nested values as JSON text, each column
# of one type. The project's own columns (DataColumns) go after `prompt` and `scores`.
FLAT_COLUMN_KINDS = {
    "grid_id": ColumnKind.INTEGER,
    "prompt_id": ColumnKind.INTEGER,
    "prompt": ColumnKind.TEXT,
    "model": ColumnKind.TEXT,
    "source": ColumnKind.TEXT,
    "category": ColumnKind.TEXT,
    "state": ColumnKind.TEXT,
    "agreement_how": ColumnKind.TEXT,
    "agreement_support": ColumnKind.INTEGER,
    "agreement_annotators": ColumnKind.INTEGER,
    "agreement_share": ColumnKind.REAL,
    "webster": ColumnKind.TEXT,
    "features": ColumnKind.TEXT,
    "labels": ColumnKind.TEXT,
    "proposal_category": ColumnKind.TEXT,
    "proposal_threshold_set": ColumnKind.TEXT,
    "proposal_threshold_version": ColumnKind.INTEGER,
    "proposal_score": ColumnKind.REAL,
    "proposal_margin": ColumnKind.REAL,
    "proposal": ColumnKind.TEXT,
    "reference_webster": ColumnKind.TEXT,
    "reference_key": ColumnKind.TEXT,
    "reference_url": ColumnKind.TEXT,
    "reference_caption": ColumnKind.TEXT,
    "reference_distance": ColumnKind.REAL,
    "reference": ColumnKind.TEXT,
    "scores": ColumnKind.TEXT,
    "settings": ColumnKind.TEXT,
    "provenance": ColumnKind.TEXT,
    "seeds": ColumnKind.TEXT,
    "images": ColumnKind.TEXT,
    "contact_sheet": ColumnKind.TEXT,
}
FLAT_COLUMNS = tuple(FLAT_COLUMN_KINDS)


def flat_columns(columns: DataColumns, base: Sequence[str] = FLAT_COLUMNS) -> list[str]:
    """The flat layout's column names: `base` with the project's own columns in place."""
    names: list[str] = []
    for name in base:
        names.append(name)
        if name == "prompt":
            names += columns.prompt_meta_kinds()
        elif name == "scores":
            names += columns.score_kinds()
    return names


def flat_row(row: dict[str, Any], columns: DataColumns = DataColumns()) -> dict[str, Any]:
    """The row with nested values as JSON text and absent text as "" (in `flat_columns` order).

    Text is "" rather than null so that column types never change down a file.
    """
    agreement = row["agreement"]
    proposal = row["proposal"] or {}
    threshold_set = proposal.get("threshold_set") or {}
    reference = row["reference"] or {}
    return {
        "grid_id": row["grid_id"],
        "prompt_id": row["prompt_id"],
        "prompt": row["prompt"],
        **columns.prompt_meta_cells(row),
        "model": row["model"],
        "source": row["source"],
        "category": row["category"] or "",
        "state": row["state"],
        "agreement_how": agreement["how"],
        "agreement_support": agreement["support"],
        "agreement_annotators": agreement["annotators"],
        "agreement_share": agreement["share"],
        "webster": row["webster"] or "",
        "features": compact_json(row["features"]),
        "labels": compact_json(row["labels"]),
        "proposal_category": proposal.get("category") or "",
        "proposal_threshold_set": threshold_set.get("name", ""),
        "proposal_threshold_version": threshold_set.get("version"),
        "proposal_score": proposal.get("score"),
        "proposal_margin": proposal.get("margin"),
        "proposal": compact_json(row["proposal"]),
        "reference_webster": reference.get("webster") or "",
        "reference_key": reference.get("key") or "",
        "reference_url": reference.get("url") or "",
        "reference_caption": reference.get("caption") or "",
        "reference_distance": reference.get("distance"),
        "reference": compact_json(row["reference"]),
        "scores": compact_json(row["scores"]),
        **columns.score_cells(row),
        "settings": compact_json(row["settings"]),
        "provenance": compact_json(row["provenance"]),
        "seeds": compact_json([image["seed"] for image in row["images"]]),
        "images": compact_json(row["images"]),
        "contact_sheet": row["contact_sheet"] or "",
    }


# Spreadsheets run a cell that starts with one of these as a formula ("CSV injection");
# OWASP's advice is to put a single quote in front. A cell that already starts with a quote
# gets one too, so dropping one leading quote always gives the text back.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "'")
CSV_FORMULA_ESCAPING = (
    "text cells that start with =, +, -, @, a tab, a carriage return or a single quote have a "
    "single quote put in front, so spreadsheets show them instead of running them as formulas "
    "(OWASP, CSV injection); drop one leading single quote to read the text as stored. "
    "Numbers and the JSON text columns are written as they are."
)


def formula_safe(cell: Any) -> Any:
    """A flat cell as a spreadsheet can open it: text that would run as a formula gets a quote."""
    if isinstance(cell, str) and cell.startswith(FORMULA_TRIGGERS):
        return "'" + cell
    return cell
