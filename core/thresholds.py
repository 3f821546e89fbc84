"""Threshold sets: the documented v0 starting values, and validation of user threshold files.

The categorizer reads its thresholds from one typed `Thresholds`, built from a stored
ThresholdSet's values, so every rule names the number it applies and where it came from.
Every default below comes from the design (sections 2-3) and the literature it cites;
none is tuned on demo data. Calibration (docs/design.md, "Calibration and agreement") replaces them with fitted ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from memgrid.core.combined import COMBINED_KEYS, FEATURES
from memgrid.core.errors import InputError
from memgrid.core.records import MAX_STORED_INTEGER
from memgrid.core.text_files import parse_json, parse_toml, read_text

V0_NAME = "v0"


@dataclass(frozen=True)
class ThresholdSpec:
    """One threshold key: its v0 value (None: unset, its rule is not applied), range and source."""

    key: str
    default: float | None
    low: float
    high: float
    meaning: str
    source: str
    integer: bool = False

    def check(self, value: Any, source: str | Path) -> float:
        """The value as a float, or InputError naming the key and the allowed range."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(
                source, f"{self.key} must be a number, not {value!r}", location=self.key
            )
        try:
            number = float(value)
        except OverflowError:  # an integer of hundreds of digits
            number = math.inf
        if not math.isfinite(number) or not self.low <= number <= self.high:
            shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:39]}…"
            raise InputError(
                source,
                f"{self.key} = {shown} is out of range [{self.low:g}, {self.high:g}]",
                location=self.key,
            )
        if self.integer and not number.is_integer():
            raise InputError(
                source, f"{self.key} must be a whole number, not {value!r}", location=self.key
            )
        return number


SPECS: dict[str, ThresholdSpec] = {
    spec.key: spec
    for spec in (
        ThresholdSpec(
            "tiled_l2_delta",
            0.15,
            0.0,
            1.0,
            "largest tile RMS distance under which two seeds are near-identical",
            "Carlini et al. 2023 (Extracting Training Data from Diffusion Models): delta = 0.15",
        ),
        ThresholdSpec(
            "tile_delta",
            0.08,
            0.0,
            1.0,
            "per-tile RMS distance (64 px tiles of the region map) under which two seeds agree "
            "on a tile",
            "Carlini's 0.15 was set for whole images: per 64 px tile, 6% of textured tile pairs "
            "of unrelated seeds agree by chance at 0.15 and 1% at 0.08 (28k tile pairs of 54 real "
            "grids not memorized, realgrids-dev); re-encoded copies sit at 0.02-0.03",
        ),
        ThresholdSpec(
            "sscd_replica",
            0.5,
            0.0,
            1.0,
            "SSCD cosine similarity above which two seeds are replicas",
            "Somepalli et al. 2023 and MemBench (Hong et al.): replica above cosine 0.5",
        ),
        ThresholdSpec(
            "tau_mem",
            0.02,
            0.0,
            1.0,
            "share of seeds in the largest near-duplicate clique for pixel-level memorization",
            "Carlini et al.: a clique of 10 of 500 generations (2%); with min_clique it gives "
            "exactly Carlini's 10 at 500 seeds and MemBench's 3 at 50",
        ),
        ThresholdSpec(
            "min_clique",
            3.0,
            2.0,
            1000.0,
            "fewest mutually near-identical seeds that count (all seeds when the grid is smaller)",
            "MemBench (Hong et al.): DBSCAN min_samples 3; one near-identical pair can be chance",
            integer=True,
        ),
        ThresholdSpec(
            "min_seeds",
            3.0,
            2.0,
            1000.0,
            "fewest seeds a grid-level rule (clique, region, median) needs; smaller grids are "
            "reported as too small to judge",
            "with 2 seeds every statistic is one pair: 'half the pairs' is that pair, DBSCAN's "
            "min_samples 3 can never cluster, and a median is a single comparison. Three seeds "
            "give three pairs, the fewest in which a majority can agree",
            integer=True,
        ),
        ThresholdSpec(
            "tau_global",
            0.9,
            0.0,
            1.0,
            "tiled-l2 region extent from which the consistency is a copy of the whole image",
            "whole-image replication has an extent near 1 (Webster's matching "
            "verbatim); 0.9 leaves room for edge tiles where seeds drift",
        ),
        ThresholdSpec(
            "tau_region",
            2 / 64,
            0.0,
            1.0,
            "smallest connected consistent region (share of the image) that counts as a template",
            "Webster 2023 (templates: a bounded, connected fixed region); "
            "two tiles of the 8x8 map, so one chance tile is not a template",
        ),
        ThresholdSpec(
            "tau_sem",
            0.95,
            0.0,
            1.0,
            "median pairwise CLIP image similarity for semantic consistency (same identity or "
            "concept while pixels vary)",
            "CLIP near-duplicate level used in dataset de-duplication (0.95 and up); seeds of one "
            "ordinary prompt already agree at about 0.8-0.9, so lower values flag plain prompt "
            "adherence. A heuristic starting point: calibrate it",
        ),
        ThresholdSpec(
            "tau_text_image",
            0.28,
            -1.0,
            1.0,
            "CLIP text-image cosine from which a crop shows what a text (prompt or lexicon "
            "entry) describes",
            "LAION-5B (Schuhmann et al. 2022) kept image-caption pairs above CLIP ViT-B/32 "
            "cosine 0.28; other CLIP models need their own value",
        ),
        ThresholdSpec(
            "tau_wen",
            None,
            0.0,
            1e6,
            "Wen et al. text-conditional noise magnitude above which a prompt is memorized",
            "unset in v0: Wen et al. 2024 report AUC and TPR at 1% FPR, not a threshold; the "
            "magnitude depends on the model, steps and guidance, so it must be calibrated",
        ),
    )
}
# The combined score's keys: its logistic weights, bias and cut (core.combined).
SPECS.update(
    (key, ThresholdSpec(key, default, low, high, meaning, source))
    for key, default, low, high, meaning, source in COMBINED_KEYS
)

# Keys of a threshold file that describe the set rather than set a threshold.
METADATA_KEYS = ("name", "notes", "model")


@lru_cache(maxsize=1024)
def _required_clique(tau_mem: float, min_clique: int, n_seeds: int) -> int:
    by_share = math.ceil(tau_mem * n_seeds - 1e-9)
    return max(by_share, min(min_clique, n_seeds // 2 + 1), 1)


def v0_values() -> dict[str, float]:
    """The v0 threshold values; unset keys (no default) are left out, so their rules do not run."""
    return {key: spec.default for key, spec in SPECS.items() if spec.default is not None}


def v0_notes() -> str:
    """Where each v0 value comes from, stored with the set so the choice stays explained."""
    lines = []
    for spec in SPECS.values():
        value = "unset" if spec.default is None else f"{spec.default:g}"
        lines.append(f"{spec.key} = {value}: {spec.meaning}. Source: {spec.source}.")
    return "\n".join(lines)


def validate_values(values: Mapping[str, Any], source: str | Path) -> dict[str, float]:
    """Checked threshold values; unknown keys or out-of-range numbers raise InputError."""
    checked: dict[str, float] = {}
    for key, value in values.items():
        spec = SPECS.get(key)
        if spec is None:
            known = ", ".join(SPECS)
            raise InputError(source, f"unknown threshold {key!r} (known: {known})", location=key)
        checked[key] = spec.check(value, source)
    return checked


def parse_set_reference(text: str) -> tuple[str, int | None]:
    """`NAME@VERSION` (`default@3`, `default@v3`) as (name, version); NAME alone: its latest."""
    name, at, version = text.strip().rpartition("@")
    if not at:
        return text.strip(), None
    if not name or not version:
        raise InputError(text, "name a threshold set as NAME@VERSION, e.g. default@1")
    digits = version[1:] if version[:1] in ("v", "V") else version
    if not (digits.isascii() and digits.isdigit()):
        raise InputError(text, f"version {version!r} is not a whole number; e.g. {name}@1")
    if int(digits) > MAX_STORED_INTEGER:
        raise InputError(text, "no threshold set has a version this large")
    return name, int(digits)


@dataclass(frozen=True)
class ThresholdChange:
    """One key whose value differs between two sets (None: the set leaves it unset)."""

    key: str
    before: float | None
    after: float | None

    @property
    def relative(self) -> float | None:
        """(after - before) / |before|, where both are set and before is not zero: negative
        when the value went down, whatever the sign of the values (a weight of -4 made -28)."""
        if self.before is None or self.after is None or self.before == 0:
            return None
        return (self.after - self.before) / abs(self.before)


def diff_values(before: Mapping[str, float], after: Mapping[str, float]) -> list[ThresholdChange]:
    """The keys whose values differ between two sets, in SPECS order (unknown keys last)."""
    keys = [*SPECS, *sorted((set(before) | set(after)) - set(SPECS))]
    return [
        ThresholdChange(key, before.get(key), after.get(key))
        for key in keys
        if before.get(key) != after.get(key)
        and not (
            before.get(key) is not None
            and after.get(key) is not None
            and math.isclose(before[key], after[key], rel_tol=1e-12, abs_tol=0.0)
        )
    ]


@dataclass(frozen=True)
class ThresholdFile:
    """A validated threshold file: v0 values overridden by the file's, plus its metadata."""

    name: str
    values: dict[str, float]
    notes: str = ""
    model: str | None = None


def load_threshold_file(path: Path) -> ThresholdFile:
    """Read a TOML or JSON threshold file; keys it leaves out keep their v0 values.

    Top-level keys are threshold keys (see SPECS) plus optional `name` (default: the file
    name without suffix), `notes` and `model` (the generator the set applies to).
    """
    data = _read_mapping(path)
    metadata = {key: data.pop(key) for key in METADATA_KEYS if key in data}
    for key, value in metadata.items():
        # notes may be empty; a name or model must say something (model "" names no model)
        if not isinstance(value, str) or (key != "notes" and not value.strip()):
            raise InputError(path, f"{key} must be a non-empty string", location=key)
    overrides = validate_values(data, path)
    return ThresholdFile(
        name=str(metadata.get("name", path.stem)).strip(),
        values={**v0_values(), **overrides},
        notes=str(metadata.get("notes", f"loaded from {path.name}")),
        model=metadata.get("model"),
    )


def _read_mapping(path: Path) -> dict[str, Any]:
    text = read_text(path)
    suffix = path.suffix.lower()
    if suffix == ".toml":
        data: Any = parse_toml(text, path)
    elif suffix == ".json":
        data = parse_json(text, path)
    else:
        raise InputError(path, "threshold file must end in .toml or .json")
    if not isinstance(data, dict):
        raise InputError(path, "a threshold file must hold one table (mapping) of keys")
    return data


@dataclass(frozen=True)
class Thresholds:
    """The values the categorizer applies, typed; None marks a rule that is not applied."""

    tiled_l2_delta: float
    sscd_replica: float
    tau_mem: float
    min_clique: int
    tau_global: float
    tau_region: float
    tau_sem: float
    tau_text_image: float
    tau_wen: float | None = None
    tile_delta: float = 0.08
    min_seeds: int = 3
    tau_combined: float = 0.5
    # The combined score's logistic weights by feature, and its bias (core.combined).
    weights: tuple[tuple[str, float], ...] = ()
    bias: float = -4.0

    @classmethod
    def from_values(cls, values: Mapping[str, float], source: str = "threshold set") -> Thresholds:
        """Stored values over v0 defaults; keys from older or newer sets are validated."""
        merged = {**v0_values(), **validate_values(values, source)}
        return cls(
            tiled_l2_delta=merged["tiled_l2_delta"],
            sscd_replica=merged["sscd_replica"],
            tau_mem=merged["tau_mem"],
            min_clique=int(merged["min_clique"]),
            tau_global=merged["tau_global"],
            tau_region=merged["tau_region"],
            tau_sem=merged["tau_sem"],
            tau_text_image=merged["tau_text_image"],
            tau_wen=merged.get("tau_wen"),
            tile_delta=merged["tile_delta"],
            min_seeds=int(merged["min_seeds"]),
            tau_combined=merged["tau_combined"],
            weights=tuple((feature, merged[f"w_{feature}"]) for feature in FEATURES),
            bias=merged["w_bias"],
        )

    @classmethod
    def v0(cls) -> Thresholds:
        return cls.from_values({})

    def pair_threshold(self, metric: str) -> float | None:
        """The near-duplicate pair threshold this set expects a metric to be scored at."""
        return {"tiled-l2": self.tiled_l2_delta, "sscd": self.sscd_replica}.get(metric)

    def weight(self, feature: str) -> float:
        return dict(self.weights).get(feature, 0.0)

    def required_clique(self, n_seeds: int) -> int:
        """Seeds the largest near-duplicate clique must hold: tau_mem's share, at least min_clique.

        Below 2 * min_clique seeds, min_clique is more than a strict majority (3 of 4, 3 of
        3), so the count asked for is a strict majority there: 2 of 3, 3 of 4, 3 of 5.
        tau_mem's share only binds from 150 seeds up (3 / 0.02).
        """
        return _required_clique(self.tau_mem, self.min_clique, n_seeds)

    def too_small(self, n_seeds: int) -> bool:
        """True when the grid has fewer seeds than a grid-level rule needs."""
        return n_seeds < self.min_seeds
