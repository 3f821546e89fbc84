"""The stored reference match as the categorizer's evidence: Webster's type and its reason.

docs/design.md, "Reference images". A seed within Carlini's delta of a training image is a
copy of it, whatever the consistency across seeds says: the match makes the grid
memorized, of the whole image (MV, RV) or of a region (TV), and the reason names the
reference (key, url, caption) and the distance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memgrid.core.records import Reason, Score
from memgrid.core.references.matching import REFERENCE_METRIC
from memgrid.core.taxonomy import Webster

CAPTION_SHOWN = 80  # characters of a caption a reason quotes
# What a grid of each type copies, as the app and `memgrid show` say it.
TYPE_WORDS = {
    Webster.MATCHING_VERBATIM.value: "its own training image (MV)",
    Webster.RETRIEVAL_VERBATIM.value: "another training image (RV)",
    Webster.TEMPLATE_VERBATIM.value: "a region of a training image (TV)",
}


@dataclass(frozen=True)
class ReferenceEvidence:
    webster: Webster
    kind: str  # "whole" or "template", as the categorizer names kinds
    tiles: tuple[int, ...] = ()


def describe_reference(reference: dict[str, Any]) -> str:
    """key, url and caption (shortened), as far as the reference has them."""
    parts = []
    if reference.get("key"):
        parts.append(f"key {reference['key']}")
    if reference.get("url"):
        parts.append(str(reference["url"]))
    caption = str(reference.get("caption") or "")
    if caption:
        shown = caption if len(caption) <= CAPTION_SHOWN else caption[: CAPTION_SHOWN - 1] + "…"
        parts.append(f"caption {shown!r}")
    return ", ".join(parts) or f"reference {reference.get('id')}"


def reference_evidence(score: Score | None, reasons: list[Reason]) -> ReferenceEvidence | None:
    """The match's evidence (None when it found no copy), leaving its reason either way."""
    if score is None:
        return None
    if not score.available:
        why = score.note or "unavailable"
        reasons.append(Reason(REFERENCE_METRIC, f"reference: unavailable ({why})", fired=False))
        return None
    values = score.values
    webster = Webster(values.get("webster", Webster.NONE.value))
    reference = values.get("reference") or {}
    delta = float(score.params.get("delta", 0.15))
    n_seeds = int(values.get("n_seeds", 0))
    if webster is Webster.NONE:
        if reference:
            text = (
                f"reference: no seed copies a training image; nearest {describe_reference(reference)} "
                f"at {float(reference['distance']):.3f} > delta {delta:.2f}"
            )
            value = float(reference["distance"])
        else:
            text = f"reference: no training image among {values.get('candidates', 0)} candidates"
            value = None
        reasons.append(Reason(REFERENCE_METRIC, text, value, delta, fired=False))
        return None
    seeds = int(values.get("matched_seeds", 0))
    named = describe_reference(reference)
    distance = float(reference.get("distance", 0.0))
    if webster is Webster.TEMPLATE_VERBATIM:
        tiles = tuple(int(t) for t in reference.get("region_tiles") or ())
        text = (
            f"reference (TV): {seeds}/{n_seeds} seeds repeat a region of {len(tiles)} tiles of "
            f"the training image {named} while the rest differs"
        )
        reasons.append(Reason(REFERENCE_METRIC, text, float(len(tiles)), None))
        return ReferenceEvidence(webster, "template", tiles)
    whose = (
        "the prompt's own training image"
        if webster is Webster.MATCHING_VERBATIM
        else "another training image in the pool"
    )
    text = (
        f"reference ({webster.value}): {seeds}/{n_seeds} seeds copy {whose}, {named} "
        f"(robust tiled-l2 {distance:.3f} ≤ delta {delta:.2f})"
    )
    reasons.append(Reason(REFERENCE_METRIC, text, distance, delta))
    return ReferenceEvidence(webster, "whole")
