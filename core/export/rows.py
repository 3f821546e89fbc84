"""One grid's export row: nested (JSONL, Parquet, WebDataset) and flat (CSV, imagefolder)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from memgrid.core.agreement import AgreedLabel, grid_state
from memgrid.core.records import Grid, LabelEvent, Proposal, Score, ThresholdSet
from memgrid.core.references.matching import REFERENCE_METRIC

REFERENCE_FIELDS = ("key", "url", "caption", "sha256", "distance", "carlini", "linked")

# What each field of a row holds; the manifest carries this, so an export explains itself.
ROW_FIELDS = {
    "grid_id": "the grid's id in the project (file names derive from it)",
    "prompt_id": "the prompt's id in the project",
    "prompt": "the prompt text",
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
    "labels": "every annotator's current label, and adjudications, with time and whether "
    "the proposal was shown",
    "proposal": "the categorizer's proposal under the active threshold set (name, "
    "version), with score, margin and reasons",
    "reference": "the training image the grid copies, from `memgrid match` (null when not "
    "matched): Webster's type from the evidence (MV its own caption's image, RV another pool "
    "image, TV a region, N none: then the nearest), key, url, caption, sha256, distance "
    "(robust tiled-l2), Carlini's distance, whether it is linked to the prompt, seeds matched",
    "scores": "metric -> the latest stored run: version, params, values, heat map",
    "settings": "the generation settings",
    "provenance": "how the grid was generated or imported",
    "images": "one per seed: seed, sha256, size, path in the export (null when images "
    "were left out), path in the project, and its best reference match (as `reference`)",
}


def build_row(
    grid: Grid,
    events: Sequence[LabelEvent],
    agreed: AgreedLabel,
    proposal: Proposal | None,
    threshold_set: ThresholdSet | None,
    scores: Sequence[Score],
    image_paths: Sequence[str | None],
) -> dict[str, Any]:
    """The export row of one grid; `image_paths` are relative to the export (None: not in it).

    `scores` maps each metric to its latest stored run; later entries win.
    """
    reference, by_seed = reference_fields(scores)
    return {
        "grid_id": grid.id,
        "prompt_id": grid.prompt_id,
        "prompt": grid.prompt,
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


# Flat rows (CSV, imagefolder metadata): scalars as columns, nested values as JSON text.
# Missing text is "" rather than null so that column types never change down the file.
FLAT_COLUMNS = (
    "grid_id",
    "prompt_id",
    "prompt",
    "model",
    "source",
    "category",
    "state",
    "agreement_how",
    "agreement_support",
    "agreement_annotators",
    "agreement_share",
    "webster",
    "features",
    "labels",
    "proposal_category",
    "proposal_threshold_set",
    "proposal_threshold_version",
    "proposal_score",
    "proposal_margin",
    "proposal",
    "reference_webster",
    "reference_key",
    "reference_url",
    "reference_caption",
    "reference_distance",
    "reference",
    "scores",
    "settings",
    "provenance",
    "seeds",
    "images",
)
# Columns that may be missing numbers; JSON metadata leaves them out, since a column that
# starts null and turns numeric later breaks `datasets`' type inference.
_NULLABLE_NUMBER_COLUMNS = (
    "agreement_share",
    "proposal_threshold_version",
    "proposal_score",
    "proposal_margin",
    "reference_distance",
)
IMAGEFOLDER_COLUMNS = (
    "file_name",
    "seed",
    "sha256",
    "width",
    "height",
    *(c for c in FLAT_COLUMNS if c not in (*_NULLABLE_NUMBER_COLUMNS, "seeds", "images")),
)


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """The row with nested values as JSON text and absent text as "" (in FLAT_COLUMNS order)."""
    agreement = row["agreement"]
    proposal = row["proposal"] or {}
    threshold_set = proposal.get("threshold_set") or {}
    reference = row["reference"] or {}
    return {
        "grid_id": row["grid_id"],
        "prompt_id": row["prompt_id"],
        "prompt": row["prompt"],
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
        "settings": compact_json(row["settings"]),
        "provenance": compact_json(row["provenance"]),
        "seeds": compact_json([image["seed"] for image in row["images"]]),
        "images": compact_json(row["images"]),
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
