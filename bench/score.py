"""Scoring speed against the floor and a tool users know: decode-only, memgrid, imagededup.

Run: just bench score [--grids N] [--workers 1,2] [--repeats 3] [--keep DIR] [--real DIR]
(or .venv/bin/python bench/score.py ..., or python -m bench.score ... from the repository root)

Two sets: generated grids of 16 seeds at 512x512 PNG (a quarter near-identical copies, a
quarter fixed watermarks on varied scenes, half free variation; drawn like the demo at
256 px, upscaled and re-noised so the PNGs are as large as real 512 px generations), and
the real grids of ../shared/realgrids-dev when that folder is there (--real DIR).
On each set and for each worker count, in a fresh process each, after a warm-up, three
times with the tools taking turns (the median run of each is kept: the machine is shared):
- decode-only: every image opened and decoded by Pillow, nothing else (the floor for PNG);
- decode-memgrid: every image decoded as memgrid's scoring does (checked open, header,
  chunk checksums, libspng for PNG);
- memgrid: `score_project` with every weights-free signal the categorizer reads (tiled-l2
  with its robust variant and region map, phash, keypoints, and the grid statistics of
  each), as the CLI runs it: decoding from disk, store writes and its pool's start included,
  nothing cached (the ratios use this run); then the same again, re-scoring with the
  per-image features (hashes, keypoints) the first run stored;
- imagededup: its PHash `encode_image` loop in-process (its import excluded), over the same
  files; with 2 workers the images are split over a pool started before the timing.
Then the two ratios: memgrid's images/s over imagededup's (goal >= 1) and memgrid's cost
over decode-only's (goal <= 1.5; by CPU time also over memgrid's own decoding, which is
faster than Pillow's), and each run's peak resident memory (ru_maxrss of the process and
of its pool's workers). The load average is printed: the machine is shared.
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
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path

from PIL import Image

from memgrid.core.demo import photo, scene, stamp, with_noise
from memgrid.core.images import CheckedImage, decode_pixels, png_bytes
from memgrid.core.metrics import WEIGHTS_FREE_METRICS, make_metric
from memgrid.core.metrics.features import LazyImages
from memgrid.tui.program import workers_skip_main_script
from memgrid.tui.services.ingest import import_grids
from memgrid.tui.services.project import create_project, open_project
from memgrid.tui.services.scoring import score_project
from memgrid.tui.services.scoring_processes import reuse_freed_memory

SEEDS = 16
SIZE = 512
WATERMARK = (160, 216, 250, 248)
KINDS = ("copy", "template", "varied", "varied")
REAL_DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "realgrids-dev"
# decode: Pillow, the floor the goal is set against; decode-memgrid: what memgrid's scoring
# decodes with (checked open, header, chunk checksums, libspng for PNG), a lower floor.
TOOLS = ("decode", "decode-memgrid", "memgrid", "imagededup")


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


def image_paths(root: Path) -> list[Path]:
    """Every image of the project's grids, in grid order (repeats of one file kept)."""
    with open_project(root) as project:
        return [
            project.image_path(image)
            for grid in project.store.grids.where(ids=project.store.grids.ids_all())
            for image in grid.images
        ]


def decode_like_memgrid(paths: Sequence[Path]) -> int:
    for path in paths:
        decode_pixels(path)
    return len(paths)


def decode_images(paths: Sequence[Path]) -> int:
    for path in paths:
        with Image.open(path) as image:
            image.load()
    return len(paths)


_phasher = None


def imagededup_hashes(paths: Sequence[Path]) -> int:
    global _phasher
    if _phasher is None:
        from imagededup.methods import PHash  # import outside the timing (warm-up)

        _phasher = PHash(verbose=False)
    for path in paths:
        _phasher.encode_image(image_file=path)
    return len(paths)


def timed_over_paths(
    work: Callable[[Sequence[Path]], int], paths: list[Path], workers: int
) -> tuple[float, float]:
    """Seconds and this process's CPU seconds for `work` over every path: here, or split over
    a pool started beforehand (its CPU time is then elsewhere: 0 here)."""
    work(paths[:2])  # warm-up: imports and the page cache
    if workers == 1:
        started, cpu_started = time.perf_counter(), time.process_time()
        work(paths)
        return time.perf_counter() - started, time.process_time() - cpu_started
    chunks = [paths[start : start + 16] for start in range(0, len(paths), 16)]
    with get_context("fork").Pool(workers) as pool:
        pool.map(work, [paths[:2]] * workers)  # each worker warmed up too
        started = time.perf_counter()
        pool.map(work, chunks, chunksize=1)
        return time.perf_counter() - started, 0.0


@contextmanager
def pristine_copy(root: Path) -> Iterator[Path]:
    """The project's database copied without the per-image features an earlier measurement
    stored (the images shared through a link), so that every memgrid run starts cold."""
    with tempfile.TemporaryDirectory(prefix="memgrid-bench-run-") as scratch:
        copy = Path(scratch)
        with open_project(root) as project:
            project.store.db.execute("VACUUM INTO ?", [str(copy / "memgrid.db")])
        (copy / "images").symlink_to((root / "images").resolve())
        with open_project(copy) as project, project.store.atomic():
            project.store.db.execute("DELETE FROM embeddings")
        yield copy


def measure(root: Path, tool: str, workers: int, signals: Sequence[str]) -> dict[str, float]:
    """In this (fresh) process: one tool over every image of the project, images per second."""
    paths = image_paths(root)
    rescore_rate = 0.0
    if tool == "decode":
        seconds, cpu_seconds = timed_over_paths(decode_images, paths, workers)
    elif tool == "decode-memgrid":
        reuse_freed_memory()  # as scoring sets it up, here and in its pool's workers
        seconds, cpu_seconds = timed_over_paths(decode_like_memgrid, paths, workers)
    elif tool == "imagededup":
        seconds, cpu_seconds = timed_over_paths(imagededup_hashes, paths, workers)
    else:
        workers_skip_main_script()  # as `memgrid score` starts them: not re-running this file
        with pristine_copy(root) as copy, open_project(copy) as project:
            # Warm-up: imports (scikit-learn, scipy, OpenCV) and the page cache, outside the
            # timing, straight through the metrics so that no feature is cached in the store.
            grid = project.store.grids.get(project.store.grids.ids_all()[0])
            images = LazyImages([project.image_path(image) for image in grid.images])
            shas = [image.sha256 for image in grid.images]
            for name in signals:
                make_metric(name).score(grid.id, images, shas)
            metrics = [make_metric(name) for name in signals]
            cpu_before = time.process_time()
            report = score_project(project, metrics, workers=workers, rescore=True)
            cpu_seconds = time.process_time() - cpu_before
            # Again: new thresholds or --rescore read hashes and keypoints back (no detection).
            again = score_project(project, metrics, workers=workers, rescore=True)
        if report.errors or report.unavailable:
            raise SystemExit(f"bench run failed: {report.errors or report.unavailable}")
        seconds = report.seconds
        rescore_rate = len(paths) / again.seconds
    peak_kib = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    return {
        "images_per_second": len(paths) / seconds,
        "rescore_images_per_second": rescore_rate,
        # This process's CPU time per image: the whole cost with one worker (pools run
        # elsewhere), and steady however loaded the machine is.
        "cpu_ms_per_image": 1000 * cpu_seconds / len(paths),
        "rss_peak_mib": peak_kib / 1024,
    }


def measure_in_child(
    root: Path, tool: str, workers: int, signals: Sequence[str]
) -> dict[str, float]:
    command = [sys.executable, str(Path(__file__).resolve()), "--signals", ",".join(signals)]
    command += ["--measure", tool, str(workers)]
    result = subprocess.run([*command, str(root)], capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{tool} with {workers} workers failed:\n{result.stderr}")
    return json.loads(result.stdout.splitlines()[-1])


def median_runs(
    root: Path, workers: int, signals: Sequence[str], repeats: int
) -> dict[str, dict[str, float]]:
    """Each tool measured `repeats` times, the tools taking turns (so that a spell of load
    on the shared machine falls on all of them), and its median run kept: by CPU time with
    one worker, by images/s with more. Also the spread, as 'spread' (max / min - 1)."""
    key = "cpu_ms_per_image" if workers == 1 else "images_per_second"
    runs: dict[str, list[dict[str, float]]] = {tool: [] for tool in TOOLS}
    for _ in range(repeats):
        for tool in TOOLS:
            runs[tool].append(measure_in_child(root, tool, workers, signals))
    medians = {}
    for tool, measured in runs.items():
        ordered = sorted(measured, key=lambda facts: facts[key])
        values = [facts[key] for facts in ordered]
        medians[tool] = {**ordered[len(ordered) // 2], "spread": values[-1] / values[0] - 1}
    return medians


def compare(
    label: str, root: Path, worker_counts: list[int], signals: Sequence[str], repeats: int
) -> None:
    """Print every tool's rate and the two ratios for one project, per worker count."""
    print(f"{label}: {len(image_paths(root))} images, the median of {repeats} runs each")
    for workers in worker_counts:
        facts = median_runs(root, workers, signals, repeats)
        rate = {tool: facts[tool]["images_per_second"] for tool in TOOLS}
        for tool in TOOLS:
            print(
                f"  workers {workers}  {tool:<14} {rate[tool]:7.1f} images/s, "
                f"peak RSS {facts[tool]['rss_peak_mib']:.0f} MiB, runs within "
                f"{100 * facts[tool]['spread']:.0f}%"
            )
        if workers == 1:
            cpu = {tool: facts[tool]["cpu_ms_per_image"] for tool in TOOLS}
            print(
                f"  workers 1  CPU ms per image: decode {cpu['decode']:.1f} (memgrid's own "
                f"decoding {cpu['decode-memgrid']:.1f}), memgrid "
                f"{cpu['memgrid']:.1f}, imagededup {cpu['imagededup']:.1f}; by CPU time "
                f"memgrid / imagededup speed {cpu['imagededup'] / cpu['memgrid']:.2f}, "
                f"memgrid cost / decode-only {cpu['memgrid'] / cpu['decode']:.2f} "
                f"(/ its own decoding {cpu['memgrid'] / cpu['decode-memgrid']:.2f})"
            )
        print(
            f"  workers {workers}  memgrid re-scoring the same grids (features cached): "
            f"{facts['memgrid']['rescore_images_per_second']:.1f} images/s"
        )
        print(
            f"  workers {workers}  ratios: memgrid / imagededup speed "
            f"{rate['memgrid'] / rate['imagededup']:.2f} (goal >= 1), memgrid cost / decode-only "
            f"{rate['decode'] / rate['memgrid']:.2f} (goal <= 1.5); load average "
            f"{os.getloadavg()[0]:.2f}"
        )


def build_real(folder: Path, root: Path) -> None:
    with create_project(root) as project:
        report = import_grids(project, folder)
    for error in report.errors:
        print(f"  import: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, default=40)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--keep", type=Path, help="build the generated project here and keep it")
    parser.add_argument("--real", type=Path, default=REAL_DEFAULT, help="real grids to import")
    parser.add_argument(
        "--signals",
        default=",".join(WEIGHTS_FREE_METRICS),
        help="metrics memgrid computes (default: every weights-free one)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per tool (median kept)")
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        tool, workers, root = args.measure
        print(json.dumps(measure(Path(root), tool, int(workers), args.signals.split(","))))
        return
    worker_counts = [int(count) for count in args.workers.split(",")]
    signals = args.signals.split(",")
    scratch = Path(tempfile.mkdtemp(prefix="memgrid-bench-score-"))
    root = args.keep or scratch / "project"
    try:
        if not (root / "memgrid.db").exists():
            started = time.perf_counter()
            written = build_project(root, args.grids)
            print(
                f"{args.grids} grids x {SEEDS} seeds at {SIZE}x{SIZE} PNG "
                f"({written / args.grids / SEEDS / 1024:.0f} KiB per image) built in "
                f"{time.perf_counter() - started:.1f}s"
            )
        print(
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
            f"memgrid signals: {', '.join(signals)}"
        )
        compare("generated", root, worker_counts, signals, args.repeats)
        if args.real.is_dir():
            build_real(args.real, scratch / "real")
            compare(
                f"real ({args.real.name})", scratch / "real", worker_counts, signals, args.repeats
            )
        else:
            print(f"real grids: {args.real} not found, skipped (--real DIR)")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
