"""Peak memory of `memgrid import` and `memgrid score` on a grid of very large images.

Run: just bench large_images [--side 8000] [--seeds 8] [--workers 1]
(or .venv/bin/python bench/large_images.py ...)

Writes one grid folder of `--seeds` PNGs of side x side pixels (a few different flat
colours: small files that decode to side * side * 3 bytes each), then runs `memgrid
import` and `memgrid score --metric tiled-l2,phash` each in its own process and reports
its peak resident memory (ru_maxrss from wait4) and wall time. What it shows: import
decodes one image at a time, and score holds each image at working size (the longer side
at most 2048), so neither grows with the number of large images in a grid. 8000 x 8000
is the largest image memgrid accepts (64 million pixels); a larger one is refused from its
header.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.flat_png import flat_png  # noqa: E402


def run_measured(arguments: list[str]) -> tuple[float, float, int]:
    """(peak RSS in MiB, seconds, exit status) of `python -m memgrid.tui ARGUMENTS`."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "memgrid.tui", *arguments],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode() if process.stderr else ""
    if process.returncode:
        print(f"    exit {process.returncode}: {error.strip()[:300]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - started, process.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=8000)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="memgrid-bench-large-"))
    try:
        grid = work / "source" / "grid"
        grid.mkdir(parents=True)
        (grid / "prompt.txt").write_text("a very large image")
        for seed in range(args.seeds):
            flat_png(grid / f"{seed:04d}.png", args.side, args.side, (seed * 30 % 256, 90, 160))
        size = sum(p.stat().st_size for p in grid.glob("*.png")) / args.seeds / 1024
        decoded = args.side * args.side * 3 / 2**20
        print(
            f"{args.seeds} seeds of {args.side} x {args.side} PNG ({size:.0f} KiB a file, "
            f"{decoded:.0f} MiB decoded as RGB); {os.cpu_count()} CPUs"
        )
        project = work / "project"
        steps = [
            ("init", ["init", str(project)]),
            ("import", ["import", str(grid.parent), "-p", str(project)]),
            (
                "score",
                [
                    "score",
                    "-p",
                    str(project),
                    "--metric",
                    "tiled-l2,phash",
                    "-j",
                    str(args.workers),
                ],
            ),
        ]
        for name, arguments in steps:
            peak, seconds, status = run_measured(arguments)
            print(f"  {name:<7} peak RSS {peak:7.0f} MiB, {seconds:6.1f} s, exit {status}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
