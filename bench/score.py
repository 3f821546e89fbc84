"""Time `memgrid score` with tiled-l2 and phash on grids of 16 seeds at 512x512 PNG.

Run: just bench score [--grids N] [--workers 1,2] [--keep DIR]
(or .venv/bin/python bench/score.py ..., or python -m bench.score ... from the repository root)

The grids are written to a project on disk first (a quarter near-identical copies, a
quarter fixed watermarks on varied scenes, half free variation; drawn like the demo at
256 px, upscaled and re-noised so the PNGs are as large as real 512 px generations).
Each measurement then runs in a fresh process: it scores every grid through the same
workflow the CLI uses (image decoding from disk and the store writes included) and
reports grids per second and its peak resident memory (ru_maxrss), before and after
scoring. Aim (issue 3): >= 10 grids/s for tiled-l2 on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from memgrid.core.demo import photo, scene, stamp, with_noise
from memgrid.core.images import CheckedImage, png_bytes
from memgrid.core.metrics import make_metric
from memgrid.tui.services.project import create_project, open_project
from memgrid.tui.services.scoring import score_project
from PIL import Image

SEEDS = 16
SIZE = 512
WATERMARK = (160, 216, 250, 248)
KINDS = ("copy", "template", "varied", "varied")


def bench_png(kind: str, grid: int, seed: int) -> bytes:
    """One seed's PNG: a near-copy, a watermarked scene or a free scene, at 512 px."""
    if kind == "copy":
        drawn = photo(("bench", grid))
    elif kind == "template":
        drawn = stamp(scene(("bench", grid, seed)), "STOCK", WATERMARK, ("bench", grid))
    else:
        drawn = scene(("bench", grid, seed))
    upscaled = drawn.resize((SIZE, SIZE), Image.Resampling.BICUBIC)
    return png_bytes(with_noise(upscaled, ("bench", grid, seed), sigma=2.0))


def _grid_pngs(grid: int) -> list[bytes]:
    kind = KINDS[grid % len(KINDS)]
    return [bench_png(kind, grid, seed) for seed in range(SEEDS)]


def build_project(root: Path, grid_count: int) -> int:
    """Write `grid_count` grids into a new project; returns the bytes of PNG written."""
    written = 0
    with create_project(root) as project, ProcessPoolExecutor() as pool:
        for grid, pngs in enumerate(pool.map(_grid_pngs, range(grid_count))):
            images = [
                project.images.put(CheckedImage(png, ".png", SIZE, SIZE), seed)
                for seed, png in enumerate(pngs)
            ]
            written += sum(len(png) for png in pngs)
            kind = KINDS[grid % len(KINDS)]
            project.store.grids.add(f"bench {grid} ({kind})", images, model="bench", source="b")
    return written


def measure(root: Path, metric_names: list[str], workers: int) -> dict[str, float]:
    """In this (fresh) process: warm up, score every grid again, report rate and memory."""
    with open_project(root) as project:
        # Warm-up: imports (scikit-learn, scipy) and the page cache, outside the timing.
        warm_up = [make_metric(name) for name in metric_names]
        score_project(project, warm_up, grid_ids=[1, 2], rescore=True)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        metrics = [make_metric(name) for name in metric_names]
        report = score_project(project, metrics, workers=workers, rescore=True)
    if report.errors or report.unavailable:
        raise SystemExit(f"bench run failed: {report.errors or report.unavailable}")
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "grids_per_second": report.grids_per_second,
        "rss_before_mib": before / 1024,
        "rss_peak_mib": after / 1024,
    }


def measure_in_child(root: Path, metric_names: tuple[str, ...], workers: int) -> dict[str, float]:
    command = [sys.executable, str(Path(__file__).resolve()), "--measure"]
    command += [",".join(metric_names), str(workers), str(root)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, default=40)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--keep", type=Path, help="build the project here and keep it")
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        names, workers, root = args.measure
        print(json.dumps(measure(Path(root), names.split(","), int(workers))))
        return
    worker_counts = [int(count) for count in args.workers.split(",")]
    root = args.keep or Path(tempfile.mkdtemp(prefix="memgrid-bench-score-")) / "project"
    try:
        if not (root / "memgrid.db").exists():
            started = time.perf_counter()
            written = build_project(root, args.grids)
            print(
                f"{args.grids} grids x {SEEDS} seeds at {SIZE}x{SIZE} PNG "
                f"({written / args.grids / SEEDS / 1024:.0f} KiB per image) built in "
                f"{time.perf_counter() - started:.1f}s"
            )
        print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
        for metric_names in (("tiled-l2",), ("phash",), ("tiled-l2", "phash")):
            for workers in worker_counts:
                facts = measure_in_child(root, metric_names, workers)
                print(
                    f"  {' + '.join(metric_names):<17} workers {workers}: "
                    f"{facts['grids_per_second']:6.1f} grids/s, peak RSS "
                    f"{facts['rss_peak_mib']:.0f} MiB ({facts['rss_before_mib']:.0f} MiB "
                    "after imports and warm-up)"
                )
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        if args.keep is None:
            shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
