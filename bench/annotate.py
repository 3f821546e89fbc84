"""Time `memgrid annotate` in a real pseudo-terminal on 5,000 grids x 16 seeds (issue 4).

Run: .venv/bin/python bench/annotate.py [--grids 5000] [--seeds 16] [--keys 200] [--keep DIR]

Builds a project (64 distinct 64 px scenes shared by all grids, a lexicon, a tiled-l2
score with a heat map and a proposal with reasons on every grid; thumbnails precomputed
as `memgrid annotate` leaves them), then runs the app at 160x50 in a pty, as a person at
a terminal would, and reports:
- launch -> first grid: from spawning the process to the last byte of the first frame
  that shows a grid;
- label key -> next grid fully drawn, p50/p95/max over `--keys` keys: from writing the
  key to the last byte written before the terminal goes quiet (so every frame of the
  change counts, not only the first);
- bytes written to the terminal per grid change (mean, p95, max).
Keys are paced like a fast annotator: `--pause` seconds between them, and every
`--think-every` keys a longer pause (`--think` seconds), as people stop to look; the
app prefetches in the short pauses and runs full garbage collections in the long ones,
as it does in real use. Aims: p95 <= 50 ms, first grid <= 1 s, <= 64 KB a grid change.
Every label is checked in the database afterwards.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from memgrid.core.demo import DEMO_ENTITIES, scene  # noqa: E402
from memgrid.core.records import GridImage, Proposal, Reason, Score  # noqa: E402
from memgrid.core.taxonomy import Category, Feature  # noqa: E402
from memgrid.tui.app.thumbnails import ThumbnailCache  # noqa: E402
from memgrid.tui.services.project import create_project, open_project  # noqa: E402

from tests.app.pty_terminal import PtyTerminal  # noqa: E402

DISTINCT_IMAGES = 64
IMAGE_SIZE = 64
GRID_HEADER = re.compile(rb"grid (\d+)  ")
PROMPTS = (
    "a photo of a red car in front of the {} showroom",
    "Starfall Over Kestrel Bay, the painting by Mira Olenko, variation {}",
    "the famous poster of Orbital Sunrise, edition {}",
    "a can of Zesta soda on a beach, shot {}",
    "a portrait of Aldo Vessel giving a speech, take {}",
)


def build_project(root: Path, grids: int, seeds: int) -> float:
    """Write the bench project; returns the seconds spent precomputing thumbnails."""
    rng = random.Random(0)
    with create_project(root) as project:
        store = project.store
        store.entities.add_many(DEMO_ENTITIES)
        images = [
            project.images.put_image(scene(("bench-tui", i)).resize((IMAGE_SIZE, IMAGE_SIZE)), 0)
            for i in range(DISTINCT_IMAGES)
        ]
        threshold_set = store.thresholds.add("bench", {"tau_mem": 0.5}, activate=True)
        with store.atomic():
            for grid in range(grids):
                shared = [images[(grid * 7 + seed) % DISTINCT_IMAGES] for seed in range(seeds)]
                grid_images = [
                    GridImage(seed, i.path, i.sha256, i.width, i.height)
                    for seed, i in enumerate(shared)
                ]
                prompt = PROMPTS[grid % len(PROMPTS)].format(grid)
                grid_id, _ = store.grids.add(prompt, grid_images, model="bench", source="bench")
                score = rng.random()
                heatmap = [[round(rng.random(), 3) for _ in range(8)] for _ in range(8)]
                store.scores.add(
                    Score(
                        grid_id,
                        "tiled-l2",
                        {"delta": 0.15},
                        "1",
                        {"clique_share": score, "median_distance": 0.2, "extent": 0.5},
                        heatmap=heatmap,
                    )
                )
                category = Category.UNINTENDED if score > 0.5 else Category.NONE
                store.proposals.add(
                    Proposal(
                        grid_id,
                        threshold_set.id,
                        category,
                        features=(Feature(category, "fixed region", (0, 1, 8, 9)),),
                        reasons=(
                            Reason("tiled-l2", f"clique share {score:.2f} vs 0.5", score, 0.5),
                            Reason("clip", "no CLIP weights: not applied", fired=False),
                        ),
                        score=score,
                        margin=score - 0.5,
                    )
                )
        started = time.perf_counter()
        ThumbnailCache(project.thumbs_dir, project.image_path).ensure(images)
        return time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux): a measure the machine's load does not skew."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run(
    root: Path, keys: int, pause: float, think: float, think_every: int, quiet: float
) -> dict[str, float]:
    annotator = f"bench-{time.time_ns()}"  # a new annotator: a reused project starts afresh
    env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor"}
    memgrid = Path(sys.executable).with_name("memgrid")
    argv = [
        str(memgrid),
        "annotate",
        "-p",
        str(root),
        "--annotator",
        annotator,
        "--image-protocol",
        "halfcell",
    ]
    terminal = PtyTerminal(argv, env, columns=160, rows=50)
    try:
        first, found = terminal.frame_with(GRID_HEADER, timeout=60)
        launch = first.arrived - terminal.started
        shown = int(found.group(1))
        terminal.quiet(quiet)
        cpu_before = cpu_seconds(terminal.process.pid)
        latencies, sizes = [], []
        for index in range(keys):
            time.sleep(think if think_every and index % think_every == think_every - 1 else pause)
            offset, sent = terminal.send(b"1234"[index % 4 : index % 4 + 1])
            _frame, found = terminal.frame_with(GRID_HEADER, start=offset, timeout=10)
            if int(found.group(1)) == shown:
                raise RuntimeError(f"grid {shown} still on screen after a label key")
            shown = int(found.group(1))
            end = terminal.quiet(quiet)
            latencies.append((terminal.arrival_of(end) - sent) * 1000)
            sizes.append(end - offset)
        cpu_per_key = (cpu_seconds(terminal.process.pid) - cpu_before) / keys
        terminal.send(b"q")
        terminal.process.wait(timeout=20)
    finally:
        terminal.close()
    with open_project(root) as project:
        labelled = project.store.labels.state_counts_where(annotator=annotator)["labelled"]
    if labelled != keys:
        raise RuntimeError(f"{keys} keys acknowledged but {labelled} labels in the database")
    return {
        "launch_s": launch,
        "cpu_ms_per_key": cpu_per_key * 1000,
        "p50_ms": statistics.median(latencies),
        "p95_ms": percentile(latencies, 0.95),
        "max_ms": max(latencies),
        "bytes_mean": statistics.fmean(sizes),
        "bytes_p95": percentile(sizes, 0.95),
        "bytes_max": max(sizes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, default=5000)
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--pause", type=float, default=0.15, help="seconds between keys")
    parser.add_argument("--think", type=float, default=1.5, help="seconds of a longer pause")
    parser.add_argument("--think-every", type=int, default=10, help="keys between long pauses")
    parser.add_argument("--quiet", type=float, default=0.05, help="silence that ends a change")
    parser.add_argument("--keep", type=Path, help="build (or reuse) the project here")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="memgrid-bench-tui-")) / "project"
    if not (root / "memgrid.db").exists():
        started = time.perf_counter()
        thumbs = build_project(root, args.grids, args.seeds)
        print(
            f"built {args.grids} grids x {args.seeds} seeds in "
            f"{time.perf_counter() - started:.1f} s (thumbnails {thumbs:.2f} s)"
        )
    results = run(root, args.keys, args.pause, args.think, args.think_every, args.quiet)
    print(f"project: {root} ({args.grids} grids x {args.seeds} seeds), terminal 160x50 truecolor")
    print(f"launch -> first grid:          {results['launch_s'] * 1000:7.0f} ms   (aim <= 1000)")
    print(
        f"label key -> next grid drawn:  p50 {results['p50_ms']:5.1f} ms  "
        f"p95 {results['p95_ms']:5.1f} ms  max {results['max_ms']:5.1f} ms  "
        f"over {args.keys} keys   (aim p95 <= 50)"
    )
    print(
        f"app CPU per grid change:       {results['cpu_ms_per_key']:5.1f} ms   (all threads: "
        f"commit, draw, prefetch, idle collection; load average {os.getloadavg()[0]:.1f})"
    )
    print(
        f"bytes per grid change:         mean {results['bytes_mean'] / 1024:5.1f} KB  "
        f"p95 {results['bytes_p95'] / 1024:5.1f} KB  max {results['bytes_max'] / 1024:5.1f} KB"
        "   (aim <= 64 KB)"
    )


if __name__ == "__main__":
    main()
