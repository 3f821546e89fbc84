"""Time `memgrid export` on 100,000 labelled grids, to JSONL and to Parquet, without images.

Run: just bench export [--grids N] [--repeat N] [--keep DIR]
 (or .venv/bin/python bench/export.py ...)

The project is built with bulk SQL through the store (not the CLI): every grid has 8
seeds, a proposal under the active threshold set, two scores, and two or three
annotators' labels, some adjudicated, some undone. The images are never read, so no
image files exist. Aim (issue 7): <= 10 s per format on the 2-core development machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from memgrid.core.export.options import ExportFormat, ExportOptions, ImageMode
from memgrid.core.taxonomy import Category, LabelState
from memgrid.db.rows import canonical_json, content_key, now_text
from memgrid.tui.services.export import export_project, export_workers
from memgrid.tui.services.project import Project, create_project, open_project

SEEDS = tuple(range(8))
MODEL = "bench/sd-1.4"
SETTINGS = {"steps": 50, "guidance": 7.5, "size": 512}
ANNOTATORS = ("ana", "bo", "chen")
CATEGORIES = tuple(Category)
METRICS = ("tiled-l2", "phash")


def build_project(
    root: Path, grid_count: int, rng: random.Random, *, labels: bool = True
) -> Project:
    """A project of `grid_count` grids (labelled unless `labels` is False), inserted in bulk
    through the store; each prompt carries the fields of a LAION-style prompt list."""
    project = create_project(root)
    store = project.store
    created_at = now_text()
    settings_json, settings_key = canonical_json(SETTINGS), content_key(SETTINGS)
    thresholds = store.thresholds.add(
        "bench", {"tau_mem": 0.15, "tau_global": 0.6}, model=MODEL, activate=True
    )
    with store.atomic():
        connection = store.db.conn
        connection.executemany(
            "INSERT INTO prompts (id, text, metadata, created_at) VALUES (?, ?, ?, ?)",
            (
                (
                    i,
                    f"prompt {i}: a photo of subject {i % 977} in style {i % 31}",
                    canonical_json(
                        {
                            "source_id": f"laion-{i:09d}",
                            "laion_key": f"{i * 7919 % 10**9:09d}",
                            "url": f"https://images.example.org/{i}.jpg",
                            "webster_type": "MV" if i % 7 == 0 else "N",
                        }
                    ),
                    created_at,
                )
                for i in range(1, grid_count + 1)
            ),
        )
        connection.executemany(
            """INSERT INTO grids (id, prompt_id, model, settings, settings_key, provenance,
            source, created_at) VALUES (?, ?, ?, ?, ?, ?, 'bench', ?)""",
            (
                (
                    i,
                    i,
                    MODEL,
                    settings_json,
                    settings_key,
                    canonical_json({"library": "diffusers 0.42", "batch": i % 4}),
                    created_at,
                )
                for i in range(1, grid_count + 1)
            ),
        )
        connection.executemany(
            """INSERT INTO images (grid_id, seed, path, sha256, width, height)
            VALUES (?, ?, ?, ?, 512, 512)""",
            _images(grid_count),
        )
        connection.executemany(
            """INSERT INTO scores (grid_id, metric, params, params_key, version, "values",
            heatmap, available, note, created_at) VALUES (?, ?, ?, ?, '1', ?, NULL, 1, '', ?)""",
            _scores(grid_count, rng, created_at),
        )
        connection.executemany(
            """INSERT INTO proposals (grid_id, threshold_set_id, category, features, reasons,
            webster, score, margin, created_at) VALUES (?, ?, ?, '[]', ?, NULL, ?, ?, ?)""",
            _proposals(grid_count, thresholds.id, rng, created_at),
        )
        connection.executemany(
            """INSERT INTO label_events (id, grid_id, annotator, action, state, category,
            features, undoes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            _label_events(grid_count, rng) if labels else (),
        )
    return project


def _images(grid_count: int):
    for grid_id in range(1, grid_count + 1):
        for seed in SEEDS:
            sha = f"{grid_id:032x}{seed:032x}"
            yield grid_id, seed, f"images/{sha[:2]}/{sha}.png", sha


def _scores(grid_count: int, rng: random.Random, created_at: str):
    for grid_id in range(1, grid_count + 1):
        for metric in METRICS:
            params = {"threshold": 0.15, "cluster_eps": 0.15, "min_samples": 3}
            clique = rng.randint(1, len(SEEDS))
            values = {
                "n_seeds": len(SEEDS),
                "clique_size": clique,
                "clique_share": clique / len(SEEDS),
                "median_similarity": rng.random(),
            }
            yield (
                grid_id,
                metric,
                canonical_json(params),
                content_key(params),
                canonical_json(values),
                created_at,
            )


def _proposals(grid_count: int, set_id: int, rng: random.Random, created_at: str):
    reasons = json.dumps(
        [
            {
                "signal": "tiled-l2",
                "text": "7 of 8 seeds near-identical",
                "value": 0.875,
                "threshold": 0.6,
                "fired": True,
            }
        ]
    )
    for grid_id in range(1, grid_count + 1):
        score = rng.random()
        yield (
            grid_id,
            set_id,
            rng.choice(CATEGORIES).value,
            reasons,
            score,
            score - 0.5,
            created_at,
        )


def _label_events(grid_count: int, rng: random.Random):
    """Two or three votes per grid, an adjudication on every tenth, an undone label on every
    twentieth: the shapes the agreement rule has to read."""
    event_id = 0
    clock = 1_700_000_000.0
    feature = json.dumps([{"category": "unintended", "name": "watermark", "tiles": [0, 1]}])
    for grid_id in range(1, grid_count + 1):
        for annotator in ANNOTATORS[: 2 + grid_id % 2]:
            event_id += 1
            category = rng.choice(CATEGORIES).value
            features = feature if category == "unintended" else "[]"
            yield (
                event_id,
                grid_id,
                annotator,
                "label",
                LabelState.LABELLED.value,
                category,
                features,
                None,
                clock + event_id,
            )
        if grid_id % 20 == 0:
            event_id += 1
            undone = event_id
            yield (
                event_id,
                grid_id,
                "ana",
                "label",
                "labelled",
                "none",
                "[]",
                None,
                clock + event_id,
            )
            event_id += 1
            yield (event_id, grid_id, "ana", "undo", None, None, "[]", undone, clock + event_id)
        if grid_id % 10 == 0:
            event_id += 1
            yield (
                event_id,
                grid_id,
                "judge",
                "adjudicate",
                "labelled",
                rng.choice(CATEGORIES).value,
                "[]",
                None,
                clock + event_id,
            )


def time_export(
    project: Project, export_format: ExportFormat, out: Path
) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (this process and its workers) and rows of one export."""
    options = ExportOptions(export_format, out, with_images=ImageMode.NONE)
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    report = export_project(project, options)
    return time.perf_counter() - started, _cpu_seconds() - cpu_before, report.rows


def _cpu_seconds() -> float:
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="Exports per format.")
    parser.add_argument(
        "--keep", type=Path, help="Build the project here and keep it (reused when present)."
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="memgrid-bench-export-"))
    root = args.keep or workdir / "project"
    try:
        if (root / "memgrid.db").exists():
            project = open_project(root)
            print(f"reusing {project.store.grids.count:,} grids in {root}")
        else:
            started = time.perf_counter()
            project = build_project(root, args.grids, random.Random(7))
            print(f"built {args.grids:,} grids in {time.perf_counter() - started:.1f} s")
        with project:
            grid_count = project.store.grids.count
            print(
                f"{os.cpu_count()} cores, {export_workers(grid_count)} worker processes, "
                f"load average {os.getloadavg()[0]:.1f} before the exports"
            )
            for export_format in (ExportFormat.JSONL, ExportFormat.PARQUET):
                walls = []
                for run in range(args.repeat):
                    out = workdir / f"{export_format}-{run}"
                    seconds, cpu, rows = time_export(project, export_format, out)
                    size = sum(f.stat().st_size for f in out.iterdir())
                    shutil.rmtree(out)
                    walls.append(seconds)
                    print(
                        f"export {export_format:<8} {rows:,} grids, no images: {seconds:.2f} s "
                        f"(CPU {cpu:.1f} s, {size / 1e6:.0f} MB)"
                    )
                print(
                    f"export {export_format:<8} best {min(walls):.2f} s, "
                    f"median {statistics.median(walls):.2f} s over {len(walls)} runs"
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
