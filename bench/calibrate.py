"""Time `memgrid calibrate` on 100,000 labelled grids.

Run: .venv/bin/python bench/calibrate.py [--grids N] [--bootstraps B] [--keep DIR]

The project is built with bulk SQL through the store (not the CLI): every grid has a
tiled-l2 and a phash score whose numbers are drawn from distributions that depend on the
grid's true category, and one annotator's label (a tenth of the grids get a second
annotator, some of whom disagree). Timed: the whole calibration as the CLI runs it
(reading the agreed labels and the signals, the ROC fits with bootstrap intervals, the
categorizer on a stratified sample for the category search and the confusion matrices,
storing the run), then its parts. Accepting (re-proposing every grid) is not included:
that is `memgrid propose`'s cost. Aim (issue 6): <= 2 s on the 2-core development machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from memgrid.core.calibration import DEFAULT_BOOTSTRAPS, DEFAULT_SAMPLE_LIMIT, Objective
from memgrid.core.calibration.run import LabelledGrids, calibrate, stratified_sample
from memgrid.core.taxonomy import Category, LabelState
from memgrid.core.thresholds import v0_values
from memgrid.db.rows import canonical_json, content_key, now_text
from memgrid.tui.services.calibration import (
    LabelledCategorizer,
    calibrate_project,
    read_labels,
)
from memgrid.tui.services.project import Project, create_project
from memgrid.tui.services.proposing import DEFAULT_SET_NAME

SEEDS = 8
MODEL = "bench/sd-1.4"
SETTINGS = {"steps": 50, "guidance": 7.5, "size": 512}
CATEGORIES = tuple(Category)
SHARES = {
    Category.NONE: 0.6,
    Category.UNINTENDED: 0.2,
    Category.EXPLICIT: 0.1,
    Category.IMPLICIT: 0.1,
}
PROMPTS = {
    Category.NONE: "a photo of a quiet street number {i}",
    Category.UNINTENDED: "a living room with a sofa, shot {i}",
    Category.EXPLICIT: '"The Lighthouse at Dusk" poster, print {i}',
    Category.IMPLICIT: "the famous painting of a lighthouse at dusk, copy {i}",
}


def draw_scores(truth: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-grid numbers: memorized grids have large cliques and extents, with overlap."""
    memorized = truth != CATEGORIES.index(Category.NONE)
    copy = memorized & (rng.random(len(truth)) < 0.4)  # the rest of the memorized: templates
    clique = np.where(copy, rng.integers(5, SEEDS + 1, len(truth)), rng.integers(1, 4, len(truth)))
    region = np.where(
        copy,
        64,
        np.where(memorized, rng.integers(1, 12, len(truth)), rng.integers(0, 3, len(truth))),
    )
    similarity = np.clip(rng.normal(np.where(memorized, 0.75, 0.55), 0.12), 0.0, 1.0)
    return {"clique": clique, "region": region, "similarity": similarity, "copy": copy}


def build_project(root: Path, grid_count: int, seed: int) -> Project:
    """A project of `grid_count` scored, labelled grids, inserted in bulk through the store."""
    rng = np.random.default_rng(seed)
    weights = np.array([SHARES[c] for c in CATEGORIES])
    truth = rng.choice(len(CATEGORIES), size=grid_count, p=weights / weights.sum())
    numbers = draw_scores(truth, rng)
    project = create_project(root)
    store = project.store
    store.thresholds.add(DEFAULT_SET_NAME, {"tau_mem": 0.02}, activate=True)
    created_at, settings_json, settings_key = (
        now_text(),
        canonical_json(SETTINGS),
        content_key(SETTINGS),
    )
    ids = range(1, grid_count + 1)
    with store.atomic():
        connection = store.db.conn
        connection.executemany(
            "INSERT INTO prompts (id, text, metadata, created_at) VALUES (?, ?, '{}', ?)",
            ((i, PROMPTS[CATEGORIES[truth[i - 1]]].format(i=i), created_at) for i in ids),
        )
        connection.executemany(
            """INSERT INTO grids (id, prompt_id, model, settings, settings_key, provenance,
            source, created_at) VALUES (?, ?, ?, ?, ?, '{}', 'bench', ?)""",
            ((i, i, MODEL, settings_json, settings_key, created_at) for i in ids),
        )
        for metric, jitter in (("tiled-l2", 0), ("phash", 1)):
            params = {"threshold": 0.15 if metric == "tiled-l2" else 0.1}
            rows = []
            for i in ids:
                row = i - 1
                clique = int(min(SEEDS, numbers["clique"][row] + (jitter and rng.integers(0, 2))))
                tiles = int(numbers["region"][row])
                values = {
                    "n_seeds": SEEDS,
                    "clique_size": clique,
                    "clique_share": clique / SEEDS,
                    "cluster_size": clique if clique >= 3 else 0,
                    "cluster_share": (clique if clique >= 3 else 0) / SEEDS,
                    "median_similarity": float(numbers["similarity"][row]),
                    "threshold": params["threshold"],
                }
                if metric == "tiled-l2":
                    values |= {
                        "extent": tiles / 64,
                        "region_tiles": list(range(tiles)),
                        "region_bbox": [0, 0, 0, 0] if tiles else None,
                        "region_grid": 8,
                    }
                rows.append(
                    (
                        i,
                        metric,
                        canonical_json(params),
                        content_key(params),
                        "1",
                        canonical_json(values),
                        created_at,
                    )
                )
            connection.executemany(
                """INSERT INTO scores (grid_id, metric, params, params_key, version, "values",
                created_at) VALUES (?, ?, ?, ?, ?, ?, ?)""",
                rows,
            )
        events = []
        for i in ids:
            category = CATEGORIES[truth[i - 1]]
            events.append((i, "ana", category.value))
            if i % 10 == 0:  # a second annotator on a tenth, who disagrees now and then
                second = category if rng.random() > 0.15 else CATEGORIES[rng.integers(0, 4)]
                events.append((i, "bo", second.value))
        connection.executemany(
            f"""INSERT INTO label_events (grid_id, annotator, action, state, category,
            proposal_shown, created_at) VALUES (?, ?, 'label', '{LabelState.LABELLED.value}', ?, 1,
            strftime('%s', 'now'))""",
            events,
        )
    return project


def categorizer_call_seconds(project: Project, data: LabelledGrids, rounds: int = 3) -> float:
    """CPU seconds per categorizer call as the category search makes them (grids read, warm).

    Process time, not wall time: the figure is the call's own work, steady on a shared machine.
    """
    sample = stratified_sample(data.labels, DEFAULT_SAMPLE_LIMIT, 0)
    categorizer = LabelledCategorizer(project, data.grid_ids)
    categorizer.preload(sample.tolist())
    values = v0_values()
    indices = [int(i) for i in sample]
    for index in indices:  # first pass: attributions and thresholds are memoised
        categorizer(index, values)
    started = time.process_time()
    for _ in range(rounds):
        for index in indices:
            categorizer(index, values)
    return (time.process_time() - started) / (rounds * len(indices))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, default=100_000)
    parser.add_argument("--bootstraps", type=int, default=DEFAULT_BOOTSTRAPS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="build the project here and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="memgrid-bench-calibrate-")) / "project"
    started = time.perf_counter()
    project = build_project(root, args.grids, args.seed)
    print(
        f"built {args.grids:,} labelled grids in {time.perf_counter() - started:.1f} s (not timed)"
    )
    # Import what calibration imports lazily, so the timing is the work, not the loading.
    from sklearn.metrics import roc_auc_score  # noqa: F401

    try:
        started = time.perf_counter()
        (run,) = calibrate_project(project, Objective("f1"), bootstraps=args.bootstraps)
        total = time.perf_counter() - started
        started = time.perf_counter()
        labels = read_labels(project)
        reading = time.perf_counter() - started
        started = time.perf_counter()
        calibrate(labels.data, run.summary["current"], Objective("f1"), bootstraps=args.bootstraps)
        fitting = time.perf_counter() - started
        per_call = categorizer_call_seconds(project, labels.data)
        summary = run.summary
        search = summary["search"] or {}
        print(
            json.dumps(
                {
                    "grids": args.grids,
                    "labelled": summary["label_count"],
                    "signals": len(summary["signals"]),
                    "bootstraps": args.bootstraps,
                    "categorizer_sample": summary["sample_size"],
                    "categorizer_calls": search.get("categorizer_calls"),
                    "search_candidates": search.get("evaluated"),
                    "seconds_total": round(total, 3),
                    "seconds_reading_labels_and_signals": round(reading, 3),
                    "seconds_fitting_without_categorizer": round(fitting, 3),
                    "cpu_ms_per_categorizer_call": round(per_call * 1000, 3),
                    "changes": summary["changes"],
                    "best_signal": summary["best_signal"],
                    "macro_f1_before_after": [
                        round(summary["before"]["macro_f1"], 4),
                        round(summary["after"]["macro_f1"], 4),
                    ],
                },
                indent=2,
            )
        )
        print(
            f"calibrate: {total:.2f} s for {summary['label_count']:,} labelled grids (aim <= 2 s)"
        )
    finally:
        project.close()
        if args.keep is None:
            shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
