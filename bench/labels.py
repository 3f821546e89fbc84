"""Time `memgrid labels export` and `labels import` on 100,000 labelled grids.

Run: just bench labels [--grids N]
 (or .venv/bin/python bench/labels.py ...)

The project is bench/export.py's (two or three annotators per grid, adjudications, undos).
Its current labels are exported to JSONL and CSV, then imported into a copy with the same
grids and no labels, twice: the first import adds every event, the second (idempotent)
adds none. The copy's current labels are checked against the original's.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from export import build_project  # bench/export.py: the same project

from memgrid.tui.services.labels import export_labels, import_labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, default=100_000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="memgrid-bench-labels-"))
    try:
        started = time.perf_counter()
        original = build_project(workdir / "original", args.grids, random.Random(7))
        print(f"built {args.grids:,} labelled grids in {time.perf_counter() - started:.1f} s")
        print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
        with original:
            expected = _current(original)
            for suffix in (".jsonl", ".csv"):
                path = workdir / f"labels{suffix}"
                started, cpu = time.perf_counter(), time.process_time()
                rows = export_labels(original, path)
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
                print(
                    f"labels export {suffix:<6} {rows:,} labels: {seconds:.2f} s "
                    f"(CPU {cpu:.2f} s, {path.stat().st_size / 1e6:.0f} MB)"
                )
        for suffix in (".jsonl", ".csv"):
            copy = build_project(
                workdir / f"copy{suffix}", args.grids, random.Random(7), labels=False
            )
            with copy:
                for attempt in ("first", "again"):
                    started, cpu = time.perf_counter(), time.process_time()
                    report = import_labels(copy, workdir / f"labels{suffix}")
                    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
                    print(
                        f"labels import {suffix:<6} {attempt}: {report.rows:,} rows, "
                        f"{report.added:,} added, {report.already_imported:,} imported before: "
                        f"{seconds:.2f} s (CPU {cpu:.2f} s)"
                    )
                assert _current(copy) == expected, "the copy's current labels differ"
        print("the copies' current labels equal the original's")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _current(project) -> list[tuple[object, ...]]:
    return sorted(
        (e.grid_id, e.annotator, e.action, e.category, e.features, round(e.created_at, 6))
        for e in project.store.labels.current_all()
    )


if __name__ == "__main__":
    main()
