"""Calibration: refit the active thresholds on human labels (docs/design.md, "Calibration and agreement").

Two fits, in order:
1. the memorization thresholds that compare one signal with a number (`tau_mem` on the
   pixel clique share, `tau_sem` on CLIP similarity, `tau_wen` on Wen's noise magnitude)
   by ROC and precision-recall on memorized-vs-not, choosing the operating point by F1,
   Youden's J or a precision the user names (`fit`);
2. the category thresholds (`tau_global`, `tau_region`) by grid search on macro-F1 over
   the four categories, evaluated through the categorizer itself (`search`, scored by
   `evaluate`).
Every signal stored is also ranked by how well it separates memorized from not (AUC,
TPR at 1% FPR), with seeded bootstrap 95% intervals. Thin or one-sided labels give
warnings and leave thresholds as they were; they never raise. `run.calibrate` does it all.

The package is pure: the caller hands it arrays of signal values and labels, and a
function that runs the categorizer on one labelled grid.

Only the shared vocabulary (`common`: signal names, defaults, objectives) is re-exported
here, and it loads no numpy; the numeric modules load when a calibration runs.
"""

from memgrid.core.calibration.common import (
    CATEGORIES,
    CATEGORY_CODE,
    DEFAULT_BOOTSTRAPS,
    DEFAULT_SAMPLE_LIMIT,
    DEFAULT_SEED,
    NONE_CODE,
    PIXEL_CLIQUE_SIGNAL,
    SIGNAL_KEYS,
    THRESHOLD_SIGNALS,
    Objective,
    parse_objective,
)

__all__ = [
    "CATEGORIES",
    "CATEGORY_CODE",
    "DEFAULT_BOOTSTRAPS",
    "DEFAULT_SAMPLE_LIMIT",
    "DEFAULT_SEED",
    "NONE_CODE",
    "PIXEL_CLIQUE_SIGNAL",
    "SIGNAL_KEYS",
    "THRESHOLD_SIGNALS",
    "Objective",
    "parse_objective",
]
