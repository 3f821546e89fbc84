"""Consistency metrics by name; modules load only when a metric is asked for.

Each metric turns a grid's seeds into a pairwise matrix and then into a Score whose
`values` share one set of keys (see core.metrics.base.grid_scores).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memgrid.core.metrics.base import Metric

# name -> "module:Class"; resolved lazily so listing metrics never imports numpy-heavy code.
METRICS: dict[str, str] = {
    "tiled-l2": "memgrid.core.metrics.tiled_l2:TiledL2",
    "phash": "memgrid.core.metrics.phash:PHash",
    "keypoints": "memgrid.core.metrics.keypoints:Keypoints",
    "gradients": "memgrid.core.metrics.gradients:GradientLayout",
    "clip": "memgrid.core.metrics.clip:Clip",
    "sscd": "memgrid.core.metrics.sscd:Sscd",
}
# Metrics that need no weights run by default; clip is included so its absence is reported.
DEFAULT_METRICS = ("tiled-l2", "phash", "keypoints", "gradients", "clip")
# Metrics that need model weights on disk (docs/design.md, "Signals"); the rest need none.
WEIGHT_METRICS = ("clip", "sscd")
# What runs anywhere, offline and without torch: the demo's scoring, `status`'s currency check.
WEIGHTS_FREE_METRICS = tuple(name for name in DEFAULT_METRICS if name not in WEIGHT_METRICS)


def metric_class(name: str) -> type[Metric]:
    """The class registered under `name`; KeyError lists the known names."""
    try:
        target = METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(METRICS)}") from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def make_metric(name: str, **options: Any) -> Metric:
    """A metric instance; options are the metric's own keyword parameters."""
    return metric_class(name)(**options)
