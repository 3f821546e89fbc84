"""The combined score: one logistic model over every signal decides memorized or not.

docs/design.md, "The combined score". Each signal becomes one piece of *evidence* x, 0 at
its chance level and 1 at the threshold the literature sets for it alone, capped at 2:

| feature | signal | chance (x = 0) | threshold (x = 1) |
|---|---|---|---|
| copy | largest near-duplicate clique (tiled-l2 robust, sscd, phash, keypoints), or the whole-image extent | a clique of one seed | the clique `required_clique` asks for; extent tau_global |
| layout | phash or gradients median pairwise similarity, whichever is further along | phash 0.5 (unrelated images differ in half their bits); gradients 0.58 (the 90th percentile of unrelated pairs) | phash 54/64 (10 bits, a near-duplicate); gradients 0.7 (about their 99th percentile) |
| matches | keypoints median pairwise similarity | 0.2 (5 chance inliers) | 0.5 (20 inliers) |
| region | largest consistent region of the tiled-l2 map | one tile | tau_region |
| semantic | clip median pairwise similarity | 0.8 (seeds of an ordinary prompt) | tau_sem |

The score is p = 1 / (1 + exp(-(bias + sum of weight * x))). The v0 weights follow from the
literature thresholds: bias -4 and every weight 4, so any one signal at its own threshold
gives p = 0.5 (the v0 rules' decision), a signal past it more, and signals part-way add up
(two at half their thresholds also reach 0.5). `memgrid calibrate` fits the weights on the
project's labels: a logistic regression whose weights have a Gaussian prior centred on v0
(`fit_weights`), whatever set is active, so refitting on the same labels gives the same
weights; a weight too few labels show evidence for keeps its v0 value. Grid-level evidence
needs `min_seeds` seeds: smaller grids get x = 0 with a note saying so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from memgrid.core.records import Score

if TYPE_CHECKING:
    from memgrid.core.thresholds import Thresholds

FEATURES = ("copy", "layout", "matches", "region", "semantic")
# Near-duplicate metrics whose clique is copy evidence, strictest first.
COPY_METRICS = ("tiled-l2", "sscd", "phash", "keypoints")
LAYOUT_METRIC, MATCH_METRIC, REGION_METRIC, SEMANTIC_METRIC = (
    "phash",
    "keypoints",
    "tiled-l2",
    "clip",
)
# The composition redrawn rather than copied (core/metrics/gradients.py): the same layout
# as pHash's, seen through edges, so it is one feature with pHash (the larger evidence),
# not a second one that would count one recurring layout twice.
GRADIENT_METRIC = "gradients"
EVIDENCE_CAP = 2.0
V0_BIAS = -4.0
V0_WEIGHT = 4.0
# Chance level and single-signal threshold of the median similarities (see the table above).
LAYOUT_CHANCE, LAYOUT_THRESHOLD = 0.5, 54 / 64
MATCH_CHANCE, MATCH_THRESHOLD = 0.2, 0.5
# Pairs of unrelated seeds of real grids: median 0.49, 90th percentile 0.58, 99th 0.72. As
# with keypoints' 5 chance inliers, evidence starts where chance pairs thin out (the 90th
# percentile) and reaches 1 where about one unrelated pair in a hundred is as alike.
GRADIENT_CHANCE, GRADIENT_THRESHOLD = 0.58, 0.7
SEMANTIC_CHANCE = 0.8
# The fit's prior: weights within about +-2 of v0 unless the labels say otherwise. It is
# centred on v0, the shipped defaults, never on the active set: a prior centred on the last
# fit would count the same labels again at every calibration and drift.
PRIOR_SIGMA = 2.0
# Fewer memorized (or not memorized) examples than this leave every weight at its default,
# as calibration leaves a threshold (docs/design.md, "Calibration and agreement").
FIT_MIN_PER_CLASS = 2
# A feature's weight moves only when at least this many labelled grids show its evidence
# (x > 0); with fewer, the labels say next to nothing about it and it keeps its default.
FIT_MIN_SHOWING = 2

_WEIGHT_SOURCE = (
    "v0: every weight 4 and bias -4, so one signal at its literature threshold (x = 1) gives "
    "p = 0.5; fitted by `memgrid calibrate` (docs/design.md, 'The combined score')"
)
# (key, v0, low, high, meaning, source) for core.thresholds.
COMBINED_KEYS: tuple[tuple[str, float, float, float, str, str], ...] = (
    (
        "tau_combined",
        0.5,
        0.0,
        1.0,
        "combined score (probability of memorized) from which a grid is proposed memorized",
        "0.5: the logistic model's own decision; one signal at its threshold reaches it",
    ),
    (
        "w_bias",
        V0_BIAS,
        -50.0,
        50.0,
        "the combined score's bias (log-odds with no evidence)",
        _WEIGHT_SOURCE,
    ),
    *(
        (
            f"w_{feature}",
            V0_WEIGHT,
            -50.0,
            50.0,
            f"weight of the {feature} evidence",
            _WEIGHT_SOURCE,
        )
        for feature in FEATURES
    ),
)


@dataclass(frozen=True)
class Evidence:
    """One feature of the combined score: x (0 chance, 1 at threshold), from which signal."""

    feature: str
    x: float
    signal: str | None = None  # "metric:key" it was read from
    value: float | None = None  # that signal's own value
    note: str = ""  # why x is 0 without a value: not scored, unavailable, too few seeds

    @property
    def applied(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class CombinedScore:
    """p = sigmoid(bias + sum of contributions), with each feature's contribution."""

    probability: float
    logit: float
    bias: float
    contributions: tuple[tuple[str, float], ...]
    evidence: tuple[Evidence, ...]
    threshold: float
    by_feature: dict[str, Evidence]

    @property
    def memorized(self) -> bool:
        return self.probability >= self.threshold

    @property
    def margin(self) -> float:
        return self.probability - self.threshold

    def evidence_for(self, feature: str) -> Evidence:
        return self.by_feature[feature]

    def strongest(self) -> str | None:
        """The feature contributing most, if any contributes."""
        positive = [(value, feature) for feature, value in self.contributions if value > 0]
        return max(positive)[1] if positive else None


def sigmoid(logit: float) -> float:
    return (
        1.0 / (1.0 + math.exp(-logit)) if logit >= 0 else math.exp(logit) / (1.0 + math.exp(logit))
    )


def _scaled(value: float, chance: float, threshold: float) -> float:
    """Evidence from a value: 0 at chance, 1 at threshold, clipped to [0, EVIDENCE_CAP]."""
    if threshold <= chance:
        return EVIDENCE_CAP if value >= threshold else 0.0
    return float(min(max((value - chance) / (threshold - chance), 0.0), EVIDENCE_CAP))


def _unapplied(feature: str, metric: str, scores: Mapping[str, Score]) -> Evidence:
    score = scores.get(metric)
    if score is None:
        return Evidence(feature, 0.0, note=f"{metric} not scored")
    return Evidence(feature, 0.0, note=f"{metric} unavailable ({score.note or 'no reason given'})")


def seeds_of(scores: Mapping[str, Score]) -> int | None:
    """The grid's seed count as its scores report it (`grid_seeds` where a metric compared a
    sample of the seeds, as keypoints do on large grids)."""
    counts = [
        int(s.values.get("grid_seeds", s.values["n_seeds"]))
        for s in scores.values()
        if s.available and "n_seeds" in s.values
    ]
    return max(counts) if counts else None


def clique_size(score: Score) -> int:
    """The near-duplicate clique a score reports: tiled-l2's robust one where it has it."""
    values = score.values
    for key in ("robust_clique_size", "clique_size"):
        if key in values:
            return int(values[key])
    return round(float(values["clique_share"]) * int(values["n_seeds"]))


def evidence(
    scores: Mapping[str, Score], thresholds: Thresholds, seeds: int | None = None
) -> tuple[Evidence, ...]:
    """Every feature's evidence from a grid's latest score per metric (`seeds`: if known)."""
    seeds = seeds_of(scores) if seeds is None else seeds
    if seeds is not None and thresholds.too_small(seeds):
        note = f"only {seeds} seeds: needs >= {thresholds.min_seeds}"
        return tuple(Evidence(feature, 0.0, note=note) for feature in FEATURES)
    available = {metric: s for metric, s in scores.items() if s.available}
    return (
        _copy(available, scores, thresholds),
        _layout(available, scores),
        _median("matches", MATCH_METRIC, available, scores, MATCH_CHANCE, MATCH_THRESHOLD),
        _region(available, scores, thresholds),
        _median(
            "semantic", SEMANTIC_METRIC, available, scores, SEMANTIC_CHANCE, thresholds.tau_sem
        ),
    )


def _copy(
    available: Mapping[str, Score], scores: Mapping[str, Score], thresholds: Thresholds
) -> Evidence:
    candidates = []
    for metric in COPY_METRICS:
        score = available.get(metric)
        if score is None:
            continue
        seeds = int(score.values["n_seeds"])
        clique = clique_size(score)
        required = thresholds.required_clique(seeds)
        x = _scaled(clique, 1.0, required) if required > 1 else float(clique > 1) * EVIDENCE_CAP
        candidates.append(Evidence("copy", x, f"{metric}:clique_size", float(clique)))
    region = available.get(REGION_METRIC)
    if region is not None and "extent" in region.values:
        extent = float(region.values["extent"])
        candidates.append(
            Evidence(
                "copy",
                _scaled(extent, 0.0, thresholds.tau_global),
                f"{REGION_METRIC}:extent",
                extent,
            )
        )
    if not candidates:
        return _unapplied("copy", REGION_METRIC, scores)
    return max(candidates, key=lambda e: e.x)


def _median(
    feature: str,
    metric: str,
    available: Mapping[str, Score],
    scores: Mapping[str, Score],
    chance: float,
    threshold: float,
) -> Evidence:
    score = available.get(metric)
    if score is None or "median_similarity" not in score.values:
        return _unapplied(feature, metric, scores)
    value = float(score.values["median_similarity"])
    return Evidence(
        feature, _scaled(value, chance, threshold), f"{metric}:median_similarity", value
    )


def _layout(available: Mapping[str, Score], scores: Mapping[str, Score]) -> Evidence:
    """The whole layout recurring: pHash's bits or the gradients' edges, whichever says more."""
    found = [
        _median("layout", LAYOUT_METRIC, available, scores, LAYOUT_CHANCE, LAYOUT_THRESHOLD),
        _median("layout", GRADIENT_METRIC, available, scores, GRADIENT_CHANCE, GRADIENT_THRESHOLD),
    ]
    applied = [e for e in found if e.applied]
    return max(applied, key=lambda e: e.x) if applied else found[0]


def region_share(score: Score) -> float:
    values = score.values
    cells = int(values.get("region_grid") or 8)
    return len(values.get("region_tiles") or ()) / (cells * cells)


def _region(
    available: Mapping[str, Score], scores: Mapping[str, Score], thresholds: Thresholds
) -> Evidence:
    score = available.get(REGION_METRIC)
    if score is None or "region_tiles" not in score.values:
        return _unapplied("region", REGION_METRIC, scores)
    cells = int(score.values.get("region_grid") or 8)
    share = region_share(score)
    return Evidence(
        "region",
        _scaled(share, 1 / (cells * cells), thresholds.tau_region),
        f"{REGION_METRIC}:region_share",
        share,
    )


def combine(found: Sequence[Evidence], thresholds: Thresholds) -> CombinedScore:
    """The combined score of a grid's evidence under a threshold set's weights."""
    contributions = tuple((e.feature, thresholds.weight(e.feature) * e.x) for e in found)
    logit = thresholds.bias + sum(value for _, value in contributions)
    return CombinedScore(
        probability=sigmoid(logit),
        logit=logit,
        bias=thresholds.bias,
        contributions=contributions,
        evidence=tuple(found),
        threshold=thresholds.tau_combined,
        by_feature={e.feature: e for e in found},
    )


def combined_score(scores: Mapping[str, Score], thresholds: Thresholds) -> CombinedScore:
    return combine(evidence(scores, thresholds), thresholds)


def feature_row(found: Sequence[Evidence]) -> list[float]:
    """Evidence in FEATURES order: one row of the design matrix `fit_weights` takes."""
    by_feature = {e.feature: e.x for e in found}
    return [by_feature.get(feature, 0.0) for feature in FEATURES]


@dataclass(frozen=True)
class FittedWeights:
    """A fit of the combined score: bias, weight per feature, and how the fit went.

    `held` names the threshold-set keys (w_bias, w_<feature>) kept at their v0 defaults
    because too few labels could move them.
    """

    bias: float
    weights: dict[str, float]
    examples: int
    positives: int
    converged: bool
    held: tuple[str, ...] = ()

    @property
    def negatives(self) -> int:
        return self.examples - self.positives

    def values(self) -> dict[str, float]:
        """As threshold-set keys (w_bias, w_<feature>)."""
        return {"w_bias": round(self.bias, 4)} | {
            f"w_{f}": round(w, 4) for f, w in self.weights.items()
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "values": self.values(),
            "examples": self.examples,
            "positives": self.positives,
            "converged": self.converged,
            "held": list(self.held),
        }


def weight_keys() -> tuple[str, ...]:
    """The combined score's threshold-set keys, in the fit's order: w_bias, then FEATURES."""
    return ("w_bias", *(f"w_{feature}" for feature in FEATURES))


def fit_weights(
    rows: np.ndarray,
    memorized: np.ndarray,
    *,
    sigma: float = PRIOR_SIGMA,
    iterations: int = 100,
) -> FittedWeights:
    """MAP logistic regression of memorized on the evidence rows, prior N(v0, sigma^2).

    The prior keeps weights the labels cannot inform at v0 and keeps a fit on a handful of
    separable labels from running off to infinity. Weights that too few labels inform are
    not fitted at all (`held`): none with fewer than FIT_MIN_PER_CLASS examples of either
    class, a feature's with fewer than FIT_MIN_SHOWING grids showing its evidence.

    Newton's method with a halving line search: the penalised log-likelihood is strictly
    concave, but a full Newton step overshoots where the labels separate (the
    probabilities saturate, the curvature vanishes) and can oscillate without end; a step
    that never lowers the objective converges to the one maximum, whatever the start.
    """
    features = np.asarray(rows, dtype=float).reshape(len(memorized), len(FEATURES))
    design = np.hstack([np.ones((len(features), 1)), features])
    labels = np.asarray(memorized, dtype=float)
    centre = np.array([V0_BIAS, *(V0_WEIGHT for _ in FEATURES)])
    positives = int(labels.sum())
    free = np.ones(len(centre), dtype=bool)
    if min(positives, len(labels) - positives) < FIT_MIN_PER_CLASS:
        free[:] = False
    free[1:] &= (features > 0).sum(axis=0) >= FIT_MIN_SHOWING

    def objective(theta: np.ndarray) -> float:
        logits = design @ theta
        likelihood = labels @ logits - np.logaddexp(0.0, logits).sum()
        return float(likelihood - 0.5 * np.sum((theta - centre) ** 2) / sigma**2)

    theta = centre.copy()
    converged = not free.any()
    for _ in range(iterations if free.any() else 0):
        probabilities = np.exp(-np.logaddexp(0.0, -(design @ theta)))
        gradient = design.T @ (labels - probabilities) - (theta - centre) / sigma**2
        curvature = (design * (probabilities * (1 - probabilities))[:, None]).T @ design
        curvature += np.eye(len(centre)) / sigma**2
        step = np.zeros_like(theta)
        step[free] = np.linalg.solve(curvature[np.ix_(free, free)], gradient[free])
        if np.max(np.abs(step)) < 1e-8:
            converged = True
            break
        start, scale = objective(theta), 1.0
        while objective(theta + scale * step) < start and scale > 1e-12:
            scale /= 2
        theta = theta + scale * step
    if not converged:  # never seen; a half-way fit is no fit, so the defaults stand
        theta, free[:] = centre, False
    return FittedWeights(
        bias=float(theta[0]),
        weights={feature: float(w) for feature, w in zip(FEATURES, theta[1:], strict=True)},
        examples=len(labels),
        positives=positives,
        converged=converged,
        held=tuple(key for key, moved in zip(weight_keys(), free, strict=True) if not moved),
    )
