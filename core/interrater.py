"""Inter-annotator agreement, and the annotators' agreement with the proposals.

docs/design.md, "Calibration and agreement": Cohen's kappa for each pair of annotators, Fleiss' kappa and
Krippendorff's alpha (nominal) over all of them, and agreement with the categorizer on
blind versus shown grids: when annotators agree with the proposal more often where they
saw it, the proposal anchors them, and labels from shown grids flatter the detector.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Any

import numpy as np

from memgrid.core.records import LabelEvent

# Annotator -> item -> category (as text); one current label per annotator and item.
Ratings = Mapping[str, Mapping[int, str]]


@dataclass(frozen=True)
class PairAgreement:
    """Cohen's kappa of two annotators over the items both labelled."""

    annotator_a: str
    annotator_b: str
    items: int
    observed: float  # share of common items with the same category
    kappa: float | None  # None when undefined (fewer than 2 common items, or one category)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ProposalAgreement:
    """How often annotators chose the proposed category, on one kind of grid."""

    labels: int
    agreed: int
    kappa: float | None

    @property
    def share(self) -> float | None:
        return self.agreed / self.labels if self.labels else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "share": self.share}


@dataclass(frozen=True)
class AgreementReport:
    """Everything `memgrid agreement` reports, ready for a table or JSON."""

    annotators: list[str]
    items_multi_rated: int
    pairs: list[PairAgreement]
    fleiss_kappa: float | None
    krippendorff_alpha: float | None
    blind: ProposalAgreement
    shown: ProposalAgreement
    warnings: list[str] = field(default_factory=list)

    @property
    def anchoring(self) -> float | None:
        """Agreement with the proposal on shown minus blind grids; > 0 suggests anchoring."""
        if self.blind.share is None or self.shown.share is None:
            return None
        return self.shown.share - self.blind.share

    def to_dict(self) -> dict[str, Any]:
        return {
            "annotators": self.annotators,
            "items_multi_rated": self.items_multi_rated,
            "pairs": [pair.to_dict() for pair in self.pairs],
            "fleiss_kappa": self.fleiss_kappa,
            "krippendorff_alpha": self.krippendorff_alpha,
            "blind": self.blind.to_dict(),
            "shown": self.shown.to_dict(),
            "anchoring": self.anchoring,
            "warnings": self.warnings,
        }


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> float | None:
    """Cohen's kappa of two parallel label sequences (scikit-learn); None when undefined."""
    if len(first) != len(second):
        raise ValueError("Cohen's kappa needs two sequences of the same length")
    if len(first) < 2 or len(set(first) | set(second)) < 2:
        return None  # chance agreement is 1: kappa is 0/0
    from sklearn.metrics import cohen_kappa_score  # deferred: sklearn is slow to import

    return _finite(cohen_kappa_score(list(first), list(second)))


def pairwise_kappas(ratings: Ratings) -> list[PairAgreement]:
    """Cohen's kappa for every pair of annotators, over the items both labelled."""
    pairs = []
    for annotator_a, annotator_b in combinations(sorted(ratings), 2):
        common = sorted(set(ratings[annotator_a]) & set(ratings[annotator_b]))
        labels_a = [ratings[annotator_a][item] for item in common]
        labels_b = [ratings[annotator_b][item] for item in common]
        same = sum(a == b for a, b in zip(labels_a, labels_b, strict=True))
        pairs.append(
            PairAgreement(
                annotator_a=annotator_a,
                annotator_b=annotator_b,
                items=len(common),
                observed=same / len(common) if common else math.nan,
                kappa=cohen_kappa(labels_a, labels_b),
            )
        )
    return pairs


def category_counts(ratings: Ratings, min_raters: int = 2) -> tuple[np.ndarray, list[str]]:
    """Items x categories table of how many annotators chose each category.

    Only items labelled by at least `min_raters` annotators enter: a single label
    carries no information about agreement.
    """
    categories = sorted({category for items in ratings.values() for category in items.values()})
    column = {category: index for index, category in enumerate(categories)}
    per_item: dict[int, list[str]] = {}
    for items in ratings.values():
        for item, category in items.items():
            per_item.setdefault(item, []).append(category)
    rows = [labels for _, labels in sorted(per_item.items()) if len(labels) >= min_raters]
    table = np.zeros((len(rows), len(categories)), dtype=np.int64)
    for row, labels in enumerate(rows):
        for category in labels:
            table[row, column[category]] += 1
    return table, categories


def fleiss_kappa(table: np.ndarray) -> float | None:
    """Fleiss' (1971) kappa of an items x categories count table; None when undefined.

    With the same number of raters per item this is Fleiss' formula exactly; items with
    fewer raters enter with their own per-item agreement (n_i(n_i - 1) pairs), the usual
    extension when not every annotator saw every item.
    """
    counts = np.asarray(table, dtype=float)
    raters = counts.sum(axis=1)
    counts, raters = counts[raters >= 2], raters[raters >= 2]
    if counts.shape[0] == 0:
        return None
    per_item = ((counts * counts).sum(axis=1) - raters) / (raters * (raters - 1))
    observed = float(per_item.mean())
    shares = counts.sum(axis=0) / raters.sum()
    expected = float((shares * shares).sum())
    if math.isclose(expected, 1.0):
        return None  # every label in one category: agreement by chance is certain
    return _finite((observed - expected) / (1.0 - expected))


def krippendorff_alpha(ratings: Ratings) -> float | None:
    """Krippendorff's alpha for nominal data (the `krippendorff` package); None when undefined.

    Missing labels are allowed: alpha uses every item with at least two labels.
    """
    table, categories = category_counts(ratings, min_raters=2)
    if table.shape[0] == 0 or len(categories) < 2:
        return None
    import krippendorff  # deferred: only agreement needs it

    # A single item (or no disagreement to expect) divides 0 by 0: undefined, so None, and no
    # RuntimeWarning on the person's terminal.
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = krippendorff.alpha(value_counts=table, level_of_measurement="nominal")
    return _finite(alpha)


def proposal_agreement(events: Iterable[LabelEvent]) -> tuple[ProposalAgreement, ProposalAgreement]:
    """Agreement of labels with the proposal they were given, on (blind, shown) grids.

    Only events that recorded the proposal's category count: a blind event still stores
    which category was hidden from the annotator, so both kinds compare the same thing.
    """
    split: dict[bool, tuple[list[str], list[str]]] = {True: ([], []), False: ([], [])}
    for event in events:
        if event.category is None or event.proposal_category is None:
            continue
        humans, proposals = split[event.proposal_shown]
        humans.append(event.category.value)
        proposals.append(event.proposal_category.value)
    blind, shown = (
        ProposalAgreement(
            labels=len(humans),
            agreed=sum(h == p for h, p in zip(humans, proposals, strict=True)),
            kappa=cohen_kappa(humans, proposals),
        )
        for humans, proposals in (split[False], split[True])
    )
    return blind, shown


def agreement_report(events: Sequence[LabelEvent], min_items: int = 10) -> AgreementReport:
    """Agreement among annotators and with the proposals, from current label events.

    `events` are the annotators' current labels (one per annotator and grid); events
    without a category (skips) are ignored. Warns rather than fails on thin data.
    """
    labelled = [event for event in events if event.category is not None]
    ratings: dict[str, dict[int, str]] = {}
    for event in labelled:
        ratings.setdefault(event.annotator, {})[event.grid_id] = event.category.value  # type: ignore[union-attr]
    table, _ = category_counts(ratings)
    blind, shown = proposal_agreement(labelled)
    warnings = []
    if len(ratings) < 2:
        warnings.append(
            f"{len(ratings)} annotator(s): agreement between annotators needs at least two"
        )
    elif table.shape[0] < min_items:
        warnings.append(
            f"only {table.shape[0]} grid(s) labelled by two or more annotators: "
            f"kappa and alpha are unreliable below {min_items}"
        )
    if blind.labels < min_items:
        warnings.append(
            f"only {blind.labels} blind label(s): the anchoring comparison is unreliable "
            f"below {min_items}"
        )
    return AgreementReport(
        annotators=sorted(ratings),
        items_multi_rated=int(table.shape[0]),
        pairs=pairwise_kappas(ratings),
        fleiss_kappa=fleiss_kappa(table),
        krippendorff_alpha=krippendorff_alpha(ratings),
        blind=blind,
        shown=shown,
        warnings=warnings,
    )


def _finite(value: float) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
