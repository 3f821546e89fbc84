"""Measure the detector on real seed grids: every signal, the combined score and the proposals.

Run: just bench detect [FOLDER] [--bootstraps B] [--out bench/results/detect.txt]
(FOLDER defaults to ../shared/realgrids-dev: memgrid's folder-per-grid layout plus a
manifest.jsonl with each grid's label, category, recurrence and source.)

The folder is imported into a temporary project as a user would import it, scored with the
default metrics (clip is reported unavailable: no weights here) and proposed under the
default threshold set. Printed, each with a bootstrap 95% interval over grids: AUC and TPR
at 5% FPR of every stored signal, memorized against mitigated + not memorized (unknown left
out); the proposal's accuracy, precision, recall and false alarms; category agreement on the
memorized grids; the same by grid size; the near-copy and character grids one by one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from memgrid.core.attribution import attribute
from memgrid.core.categorizer import categorize, latest_by_metric
from memgrid.core.combined import combined_score, evidence, feature_row, fit_weights
from memgrid.core.metrics import DEFAULT_METRICS
from memgrid.core.records import Entity, Score
from memgrid.core.thresholds import Thresholds, v0_values
from memgrid.tui.services.ingest import import_grids
from memgrid.tui.services.project import Project, create_project
from memgrid.tui.services.proposing import propose_all
from memgrid.tui.services.scoring import MetricOptions, build_metrics, score_project

REPOSITORY = Path(__file__).resolve().parents[1]
# ../shared/realgrids-dev beside the checkout, else a shared/ inside it.
DEFAULT_FOLDERS = (
    REPOSITORY.parent / "shared" / "realgrids-dev",
    REPOSITORY / "shared" / "realgrids-dev",
    Path("..") / "shared" / "realgrids-dev",
)
POSITIVE = "memorized"
NEGATIVE = ("mitigated", "not_memorized")
LOW_FPR = 0.05
# Manifest categories in memgrid's vocabulary.
CATEGORY_NAMES = {
    "explicit_intended": "explicit",
    "implicit_intended": "implicit",
    "unintended": "unintended",
    "none": "none",
}
NEAR_COPY = ("near_verbatim", "template")
# Score values that describe the run, not the grid: never a signal.
NOT_SIGNALS = {
    "n_seeds",
    "threshold",
    "median_distance",
    "region_grid",
    "tile_threshold",
    "texture_floor",
    "tile_delta",
    "robust_quantile",
    "median_inliers",  # the same ranking as keypoints:median_similarity
    "seeds_matched",
    "grid_seeds",
    "matched_area",  # where a keypoint clique's matches lie: it says what kind, not whether
}


@dataclass
class GridResult:
    """One grid: what the manifest says and what memgrid measured and proposed."""

    name: str
    source: str
    label: str
    category: str
    recurrence: str
    seeds: int
    prompt: str = ""
    scores: list[Score] = field(default_factory=list)
    signals: dict[str, float] = field(default_factory=dict)
    proposed: str = "none"
    reasons: list[str] = field(default_factory=list)
    held_out: str = "none"  # the proposal under weights fitted without this grid's source
    strongest: str | None = None  # the feature contributing most under the default weights

    @property
    def judged(self) -> bool:
        return self.label == POSITIVE or self.label in NEGATIVE

    @property
    def positive(self) -> bool:
        return self.label == POSITIVE


def read_manifest(folder: Path) -> dict[str, dict[str, Any]]:
    rows = [
        json.loads(line)
        for line in (folder / "manifest.jsonl").read_text().splitlines()
        if line.strip()
    ]
    return {row["grid_id"]: row for row in rows}


def signal_values(scores: Sequence[Score]) -> dict[str, float]:
    """Every numeric grid-level value as "metric:key" (the latest available score per metric)."""
    values: dict[str, float] = {}
    for score in scores:
        if not score.available:
            continue
        for key, value in score.values.items():
            if (
                key in NOT_SIGNALS
                or key.endswith("_size")
                or isinstance(value, bool)
                or not isinstance(value, int | float)
            ):
                continue
            values[f"{score.metric}:{key}"] = float(value)
        tiles = score.values.get("region_tiles")
        if isinstance(tiles, list):
            grid = int(score.values.get("region_grid") or 8)
            values[f"{score.metric}:region_share"] = len(tiles) / (grid * grid)
    return values


def build(
    folder: Path, root: Path, workers: int, metrics: Sequence[str] = DEFAULT_METRICS
) -> tuple[Project, list[GridResult]]:
    """Import, score (with `metrics`) and propose the folder in a new project at `root`."""
    manifest = read_manifest(folder)
    project = create_project(root)
    report = import_grids(project, folder)
    for error in report.errors:
        print(f"import: {error}")
    print(
        f"import: {report.grids_added} grids added, {report.grids_already_present} already "
        f"present, {report.images_added} images"
    )
    score_project(project, build_metrics(MetricOptions(names=tuple(metrics))), workers=workers)
    propose_all(project)
    results = []
    for grid in project.store.grids.all():
        name = grid.origin
        row = manifest.get(name)
        if row is None:
            print(f"import: grid {grid.id} ({name}) is not in the manifest")
            continue
        proposal = project.store.proposals.find(grid.id)
        scores = project.store.scores.where(grid_ids=[grid.id])
        signals = signal_values(scores)
        combined = combined_score(latest_by_metric(scores), Thresholds.v0())
        if proposal is not None and proposal.score is not None:
            signals["combined"] = proposal.score
        results.append(
            GridResult(
                name=name,
                source=row["source"].split(":", 1)[0],
                label=row["label"],
                category=CATEGORY_NAMES.get(row["category"], row["category"]),
                recurrence=row["recurrence"],
                seeds=len(grid.images),
                prompt=grid.prompt,
                scores=scores,
                signals=signals,
                proposed=proposal.category.value if proposal else "none",
                reasons=[r.text for r in proposal.reasons] if proposal else [],
                strongest=combined.strongest(),
            )
        )
    missing = sorted(set(manifest) - {r.name for r in results})
    if missing:
        print(f"import: {len(missing)} manifest grids not in the project: {', '.join(missing)}")
    leave_one_source_out(results, project.store.entities.all())
    return project, results


FOLD_WEIGHTS: dict[str, dict[str, float]] = {}  # source -> weights fitted without it


def leave_one_source_out(results: list[GridResult], lexicon: list[Entity]) -> None:
    """Fit the combined score's weights on five sources, propose the sixth, for every source.

    The proposals and scores so made (`held_out`, signal "combined (held-out fit)") are
    never fitted on the grid they judge, so their figures are not a fit to the test.
    """
    v0 = Thresholds.v0()
    rows = {id(r): feature_row(evidence(latest_by_metric(r.scores), v0)) for r in results}
    for source in sorted({r.source for r in results}):
        # As `memgrid calibrate` does without CLIP scores: positives labelled semantic-only
        # (no Webster type; here recurrence "character") are left out of the fit.
        train = [
            r for r in results if r.judged and r.source != source and r.recurrence != "character"
        ]
        fitted = fit_weights(
            np.array([rows[id(r)] for r in train]), np.array([r.positive for r in train])
        )
        thresholds = Thresholds.from_values({**v0_values(), **fitted.values()})
        FOLD_WEIGHTS[source] = fitted.values()
        for result in (r for r in results if r.source == source):
            held = categorize(result.scores, thresholds, attribute(result.prompt, lexicon))
            result.held_out = held.category.value
            result.signals["combined (held-out fit)"] = float(held.score or 0.0)


# ---------------------------------------------------------------- statistics


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr_limit: float = LOW_FPR) -> float:
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(tpr[fpr <= fpr_limit + 1e-12].max())


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(roc_auc_score(labels, scores))


Statistic = Callable[[np.ndarray], float | None]


def bootstrap(
    count: int, statistic: Statistic, draws: int, seed: int = 0
) -> tuple[float | None, tuple[float, float] | None]:
    """The statistic on all items and a percentile 95% interval over item resamples."""
    value = statistic(np.arange(count))
    if value is None or count == 0:
        return value, None
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(draws):
        drawn = statistic(rng.integers(0, count, count))
        if drawn is not None:
            samples.append(drawn)
    if len(samples) < draws // 2:
        return value, None
    low, high = np.percentile(samples, [2.5, 97.5])
    return value, (float(low), float(high))


def ranking(labels: np.ndarray, scores: np.ndarray, draws: int) -> dict[str, Any]:
    """AUC and TPR at 5% FPR with intervals; None where one class is missing."""

    def both_classes(fn: Callable[[np.ndarray, np.ndarray], float]) -> Statistic:
        def statistic(index: np.ndarray) -> float | None:
            picked = labels[index]
            if picked.all() or not picked.any():
                return None
            return fn(picked, scores[index])

        return statistic

    return {
        "auc": bootstrap(len(labels), both_classes(auc), draws),
        "tpr_at_5_fpr": bootstrap(len(labels), both_classes(tpr_at_fpr), draws),
    }


def decisions(labels: np.ndarray, proposed: np.ndarray, draws: int) -> dict[str, Any]:
    """Accuracy, precision, recall and false-alarm rate of memorized/not decisions."""

    def rate(
        numerator: Callable[[np.ndarray, np.ndarray], int],
        denominator: Callable[[np.ndarray, np.ndarray], int],
    ) -> Statistic:
        def statistic(index: np.ndarray) -> float | None:
            truth, guess = labels[index], proposed[index]
            below = denominator(truth, guess)
            return numerator(truth, guess) / below if below else None

        return statistic

    return {
        "accuracy": bootstrap(
            len(labels), rate(lambda t, g: int((t == g).sum()), lambda t, g: len(t)), draws
        ),
        "precision": bootstrap(
            len(labels), rate(lambda t, g: int((t & g).sum()), lambda t, g: int(g.sum())), draws
        ),
        "recall": bootstrap(
            len(labels), rate(lambda t, g: int((t & g).sum()), lambda t, g: int(t.sum())), draws
        ),
        "false_alarm_rate": bootstrap(
            len(labels), rate(lambda t, g: int((~t & g).sum()), lambda t, g: int((~t).sum())), draws
        ),
    }


def share(hits: np.ndarray, draws: int) -> tuple[float | None, tuple[float, float] | None]:
    return bootstrap(len(hits), lambda i: float(hits[i].mean()) if len(i) else None, draws)


def fmt(estimate: tuple[float | None, tuple[float, float] | None]) -> str:
    value, interval = estimate
    if value is None:
        return "n/a"
    if interval is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


# ---------------------------------------------------------------- report


def measure(results: list[GridResult], draws: int, lines: list[str]) -> dict[str, Any]:
    judged = [r for r in results if r.judged]
    labels = np.array([r.positive for r in judged])
    summary: dict[str, Any] = {
        "grids": len(results),
        "judged": len(judged),
        "positives": int(labels.sum()),
        "negatives": int((~labels).sum()),
    }
    lines.append(
        f"{len(results)} grids; judged {len(judged)}: {labels.sum()} memorized, "
        f"{(~labels).sum()} mitigated or not memorized (unknown left out)"
    )
    lines.append("")
    lines.append(
        f"signals (memorized vs not): AUC and TPR at {LOW_FPR:.0%} FPR, 95% intervals; "
        "AUC of near-copies (near_verbatim, template) alone against the same negatives"
    )
    names = sorted({name for r in judged for name in r.signals})
    near = np.array([r.recurrence in NEAR_COPY or not r.positive for r in judged])
    summary["signals"] = {}
    for name in names:
        scores = np.array([r.signals.get(name, np.nan) for r in judged])
        present = ~np.isnan(scores)
        stats = ranking(labels[present], scores[present], draws)
        near_only = present & near
        stats["auc_near_copies"] = ranking(labels[near_only], scores[near_only], draws)["auc"]
        summary["signals"][name] = stats
        lines.append(
            f"  {name:34s} AUC {fmt(stats['auc']):24s} TPR@5%FPR {fmt(stats['tpr_at_5_fpr']):24s}"
            f" near-copy AUC {fmt(stats['auc_near_copies'])}"
            + ("" if present.all() else f"  ({present.sum()} grids)")
        )
    lines.append("")
    summary["proposal"] = proposal_block("proposal (default threshold set)", judged, draws, lines)
    lines.append("combined score weights fitted without each source (v0: bias -4, weights 4):")
    for source, weights in FOLD_WEIGHTS.items():
        lines.append(f"  without {source}: " + ", ".join(f"{k} {v:g}" for k, v in weights.items()))
    lines.append("")
    summary["fold_weights"] = FOLD_WEIGHTS
    summary["held_out"] = proposal_block(
        "proposal (combined score fitted leave-one-source-out)", judged, draws, lines, held_out=True
    )
    summary["by_size"] = by_size("proposal (default threshold set)", judged, draws, lines)
    summary["by_size_held_out"] = by_size(
        "proposal (leave-one-source-out fit)", judged, draws, lines, held_out=True
    )
    lines.append("")
    grid_lines(results, lines)
    return summary


def by_size(
    title: str, judged: list[GridResult], draws: int, lines: list[str], held_out: bool = False
) -> dict[int, Any]:
    """Decisions, and the combined score's AUC where both classes occur, per seed count."""
    signal = "combined (held-out fit)" if held_out else "combined"
    table: dict[int, Any] = {}
    lines.append(f"by grid size, {title}:")
    for seeds in sorted({r.seeds for r in judged}):
        group = [r for r in judged if r.seeds == seeds]
        truth = np.array([r.positive for r in group])
        guess = np.array([(r.held_out if held_out else r.proposed) != "none" for r in group])
        scores = np.array([r.signals.get(signal, 0.0) for r in group])
        table[seeds] = {
            "grids": len(group),
            "positives": int(truth.sum()),
            "caught": int((truth & guess).sum()),
            "false_alarms": int((~truth & guess).sum()),
            "accuracy": share(truth == guess, draws),
            "combined_auc": ranking(truth, scores, draws)["auc"]
            if 0 < truth.sum() < len(truth)
            else (None, None),
        }
        row = table[seeds]
        lines.append(
            f"  {seeds} seeds: {len(group):2d} grids ({truth.sum()} memorized): caught "
            f"{row['caught']}/{truth.sum()}, false alarms {row['false_alarms']}/"
            f"{(~truth).sum()}, accuracy {fmt(row['accuracy'])}, combined AUC "
            f"{fmt(row['combined_auc'])}"
        )
    lines.append("")
    return table


def proposal_block(
    title: str, judged: list[GridResult], draws: int, lines: list[str], held_out: bool = False
) -> dict[str, Any]:
    def answer(r: GridResult) -> str:
        return r.held_out if held_out else r.proposed

    labels = np.array([r.positive for r in judged])
    proposed = np.array([answer(r) != "none" for r in judged])
    stats = decisions(labels, proposed, draws)
    memorized = [r for r in judged if r.positive]
    agree = np.array([answer(r) == r.category for r in memorized])
    near = [r for r in memorized if r.recurrence in NEAR_COPY]
    near_hits = sum(answer(r) == r.category for r in near)
    near_caught = sum(answer(r) != "none" for r in near)
    character = [r for r in memorized if r.recurrence == "character"]
    character_caught = sum(answer(r) != "none" for r in character)
    character_right = sum(answer(r) == r.category for r in character)
    false_alarms = int((~labels & proposed).sum())
    block = {
        **stats,
        "false_alarms": false_alarms,
        "negatives": int((~labels).sum()),
        "category_agreement": share(agree, draws),
        "near_copy_right": near_hits,
        "near_copy_caught": near_caught,
        "near_copy": len(near),
        "character_caught": character_caught,
        "character_right": character_right,
        "character": len(character),
    }
    lines.append(f"{title}:")
    lines.append(f"  accuracy {fmt(stats['accuracy'])}")
    lines.append(f"  precision {fmt(stats['precision'])}  recall {fmt(stats['recall'])}")
    lines.append(
        f"  false alarms {false_alarms}/{(~labels).sum()} negatives: rate {fmt(stats['false_alarm_rate'])}"
    )
    lines.append(
        f"  category agreement on the {len(memorized)} memorized grids: {fmt(block['category_agreement'])}"
    )
    lines.append(
        f"  near-copy grids (near_verbatim, template) proposed memorized with the manifest's "
        f"category: {near_hits}/{len(near)} ({near_caught}/{len(near)} proposed memorized)"
    )
    caught_names = [
        f"{r.name} (by {r.strongest})" if r.strongest else r.name
        for r in character
        if answer(r) != "none"
    ]
    missed = [r for r in character if answer(r) == "none"]
    signal = "combined (held-out fit)" if held_out else "combined"
    highest = max((r.signals.get(signal, 0.0) for r in missed), default=0.0)
    lines.append(
        f"  character grids (a named or described character in new poses): "
        f"{character_caught}/{len(character)} proposed memorized, {character_right}/"
        f"{len(character)} with the manifest's category. Weights-free signals catch "
        f"{', '.join(caught_names) or 'none'}; the other {len(missed)} stay below the cut "
        f"(combined score at most {highest:.2f}): their pixels do not recur, only the "
        "character does, which needs CLIP (the semantic rule) or SSCD, both with weights"
    )
    lines.append("")
    return block


def grid_lines(results: list[GridResult], lines: list[str]) -> None:
    lines.append("grids (label/category -> proposal), memorized and false alarms:")
    for r in sorted(results, key=lambda r: (r.label, r.recurrence, r.name)):
        wrong = (r.positive and r.proposed != r.category) or (
            r.label in NEGATIVE and r.proposed != "none"
        )
        held_wrong = (r.positive and r.held_out != r.category) or (
            r.label in NEGATIVE and r.held_out != "none"
        )
        if not (r.positive or r.label == "unknown" or wrong or held_wrong):
            continue
        mark = "x" if wrong else " "
        lines.append(
            f"  {mark} {r.name:42s} {r.seeds} seeds {r.label}/{r.category} ({r.recurrence}) -> "
            f"{r.proposed} (held-out fit: {r.held_out}; combined "
            f"{r.signals.get('combined', float('nan')):.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, help="default: ../shared/realgrids-dev")
    parser.add_argument("--bootstraps", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the report here (and .json beside)")
    parser.add_argument("--keep", type=Path, help="build the project here and keep it")
    parser.add_argument(
        "--metrics",
        default=",".join(DEFAULT_METRICS),
        help="metrics to score, comma-separated (default: memgrid's default set); leaving "
        "one out measures what the detector owes it",
    )
    args = parser.parse_args()
    found = [args.folder] if args.folder else [f for f in DEFAULT_FOLDERS if f.is_dir()]
    if not found or not (found[0] / "manifest.jsonl").is_file():
        parser.error(f"no manifest.jsonl in {found[0] if found else DEFAULT_FOLDERS[0]}")
    folder = found[0].resolve()
    root = args.keep or Path(tempfile.mkdtemp(prefix="memgrid-detect-"))
    try:
        project, results = build(folder, root, args.workers, args.metrics.split(","))
        project.close()
        lines: list[str] = []
        summary = measure(results, args.bootstraps, lines)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
        args.out.with_suffix(".json").write_text(json.dumps(summary, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
