"""Category evaluation: confusion matrices, per-class scores and macro-F1 with intervals."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from memgrid.core.calibration.common import (
    CATEGORIES,
    DEFAULT_BOOTSTRAPS,
    DEFAULT_SEED,
    interval_list,
)
from memgrid.core.calibration.fit import percentile_interval


def confusion(human: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Counts with human categories in rows and predicted ones in columns (CATEGORIES order)."""
    size = len(CATEGORIES)
    cells = np.asarray(human, int) * size + np.asarray(predicted, int)
    return np.bincount(cells, minlength=size * size).reshape(size, size)


def class_scores(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and the macro-F1 of confusion matrices.

    Leading axes (bootstrap resamples) are kept. Macro-F1 averages the classes that have
    human labels; a class never predicted and never labelled does not count against it.
    """
    matrix = np.asarray(matrix, float)
    hits = np.diagonal(matrix, axis1=-2, axis2=-1)
    labelled = matrix.sum(axis=-1)
    predicted = matrix.sum(axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, hits / predicted, np.where(labelled > 0, 0.0, np.nan))
        recall = np.where(labelled > 0, hits / labelled, np.nan)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        f1 = np.where(labelled > 0, f1, np.nan)
        present = labelled > 0
        macro = np.where(present, f1, 0.0).sum(axis=-1) / present.sum(axis=-1)
        accuracy = hits.sum(axis=-1) / matrix.sum(axis=(-2, -1))
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "macro_f1": macro,
        "accuracy": accuracy,
    }


@dataclass(frozen=True)
class CategoryEvaluation:
    """A confusion matrix over the four categories with per-class scores and intervals."""

    matrix: list[list[int]]
    precision: dict[str, float | None]
    recall: dict[str, float | None]
    f1: dict[str, float | None]
    macro_f1: float | None
    macro_f1_interval: tuple[float, float] | None
    accuracy: float | None
    precision_intervals: dict[str, tuple[float, float] | None]
    recall_intervals: dict[str, tuple[float, float] | None]

    @property
    def right(self) -> int:
        """Grids whose predicted category is the human one (the matrix's diagonal)."""
        return sum(row[index] for index, row in enumerate(self.matrix))

    def to_dict(self) -> dict[str, Any]:
        return {
            "categories": [c.value for c in CATEGORIES],
            "matrix": self.matrix,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "macro_f1": self.macro_f1,
            "macro_f1_interval": interval_list(self.macro_f1_interval),
            "accuracy": self.accuracy,
            "precision_intervals": {
                k: interval_list(v) for k, v in self.precision_intervals.items()
            },
            "recall_intervals": {k: interval_list(v) for k, v in self.recall_intervals.items()},
        }


def evaluate_categories(
    human: np.ndarray,
    predicted: np.ndarray,
    *,
    seed: int = DEFAULT_SEED,
    bootstraps: int = DEFAULT_BOOTSTRAPS,
) -> CategoryEvaluation:
    """Confusion matrix, per-class precision/recall and macro-F1 with bootstrap intervals.

    Resampling grids only reshuffles the 16 (human, predicted) cells, so a resample is a
    multinomial draw over them: exact, and cheap at any number of grids.
    """
    matrix = confusion(human, predicted)
    scores = class_scores(matrix)
    total = int(matrix.sum())
    if bootstraps > 0 and total > 0:
        rng = np.random.default_rng(seed)
        flat = matrix.reshape(-1).astype(float)
        draws = rng.multinomial(total, flat / flat.sum(), size=bootstraps)
        resampled = class_scores(draws.reshape(bootstraps, *matrix.shape))
    else:
        resampled = None

    def per_class(name: str) -> dict[str, float | None]:
        return {c.value: _number(scores[name][i]) for i, c in enumerate(CATEGORIES)}

    def intervals(name: str) -> dict[str, tuple[float, float] | None]:
        if resampled is None:
            return {c.value: None for c in CATEGORIES}
        return {
            c.value: percentile_interval(resampled[name][:, i]) if matrix[i].sum() else None
            for i, c in enumerate(CATEGORIES)
        }

    return CategoryEvaluation(
        matrix=matrix.tolist(),
        precision=per_class("precision"),
        recall=per_class("recall"),
        f1=per_class("f1"),
        macro_f1=_number(scores["macro_f1"]) if total else None,
        macro_f1_interval=percentile_interval(resampled["macro_f1"]) if resampled else None,
        accuracy=_number(scores["accuracy"]) if total else None,
        precision_intervals=intervals("precision"),
        recall_intervals=intervals("recall"),
    )


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
