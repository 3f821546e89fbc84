"""Time `memgrid annotate` in a real pseudo-terminal on 5,000 grids x 16 seeds.

Run: .venv/bin/python bench/annotate.py [--grids 5000] [--seeds 16] [--keys 200] [--keep DIR]
     [--runs halfcell,halfcell-folded,kitty]

Builds a project (64 distinct 512 px scenes shared by all grids, a lexicon, a tiled-l2
score with a heat map, a region and near-identical groups, and a proposal with reasons on
every grid; thumbnails precomputed as `memgrid annotate` leaves them), then:
- seed sizes: the app (headless) at 100 x 30, 160 x 50 and 220 x 60, side panel shown and
  folded, for 8 and 16 seeds: the layout, and each seed's size in half-cell pixels and in
  real pixels at a 10 x 20 pixel cell (Kitty, Sixel, iTerm2);
- for each run (half-cell with the panel shown, half-cell folded, Kitty graphics), the app
  at 160 x 50 in a pty without COLORTERM (as over ssh), as a person at a terminal would:
  launch -> first grid; label key -> next grid fully drawn, p50/p95/max over `--keys`
  keys (from writing the key to the end of the last frame before the terminal goes
  quiet, so every frame of the change counts); bytes of those frames per grid change;
  and bytes written outside frames (Kitty images sent ahead for the grids to come).
Keys are paced like a fast annotator: `--pause` seconds between them, and every
`--think-every` keys a longer pause (`--think` seconds), as people stop to look; the
app prefetches in the short pauses and runs full garbage collections in the long ones,
as it does in real use. Aims: p95 <= 50 ms, first grid <= 1 s, <= 200 KB a grid change
in half-cell. Every label is checked in the database afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
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
from memgrid.tui.app.grid_layout import plan_layout  # noqa: E402
from memgrid.tui.app.thumbnails import ThumbnailCache  # noqa: E402
from memgrid.tui.services.project import create_project, open_project  # noqa: E402
from tests.app.pty_terminal import SYNC_END, SYNC_START, PtyTerminal  # noqa: E402

DISTINCT_IMAGES = 64
IMAGE_SIZE = 512
GRAPHICS_CELL = (10, 20)  # a common terminal cell in pixels
SIZES = ((100, 30), (160, 50), (220, 60))
RUNS = {  # name -> (image protocol, keys pressed before timing)
    "halfcell": ("halfcell", b""),
    "halfcell-folded": ("halfcell", b"p"),
    "kitty": ("kitty", b""),
}
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
                region = [r * 8 + c for r in range(8) for c in range(8) if heatmap[r][c] > 0.7]
                group = sorted(rng.sample(range(seeds), k=rng.randint(0, seeds // 2)))
                store.scores.add(
                    Score(
                        grid_id,
                        "tiled-l2",
                        {"delta": 0.15},
                        "1",
                        {
                            "clique_share": score,
                            "median_distance": 0.2,
                            "extent": 0.5,
                            "region_tiles": region,
                            "region_grid": 8,
                            "cliques": [group] if len(group) > 1 else [],
                        },
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


def frames_in(output: bytes) -> tuple[int, int]:
    """(end of the last complete frame, bytes inside frames) in a slice of the output."""
    end = inside = position = 0
    while (begin := output.find(SYNC_START, position)) >= 0:
        stop = output.find(SYNC_END, begin)
        if stop < 0:
            break
        stop += len(SYNC_END)
        inside += stop - begin
        end = position = stop
    return end, inside


def run(
    root: Path,
    protocol: str,
    before: bytes,
    keys: int,
    pause: float,
    think: float,
    think_every: int,
    quiet: float,
) -> dict[str, float]:
    annotator = f"bench-{time.time_ns()}"  # a new annotator: a reused project starts afresh
    env = {k: v for k, v in os.environ.items() if k not in ("COLORTERM", "TMUX")}
    env["TERM"] = "xterm-256color"  # as over ssh: no COLORTERM, 24-bit colour all the same
    memgrid = Path(sys.executable).with_name("memgrid")
    argv = [str(memgrid), "annotate", "-p", str(root), "--annotator", annotator]
    argv += ["--image-protocol", protocol]
    terminal = PtyTerminal(argv, env, columns=160, rows=50, cell_pixels=GRAPHICS_CELL)
    try:
        first, found = terminal.frame_with(GRID_HEADER, timeout=60)
        launch = first.arrived - terminal.started
        shown = int(found.group(1))
        if before:
            terminal.quiet(quiet)
            terminal.send(before)
        terminal.quiet(max(quiet, 1.0), timeout=30)
        cpu_before = cpu_seconds(terminal.process.pid)
        latencies, sizes, ahead = [], [], []
        for index in range(keys):
            time.sleep(think if think_every and index % think_every == think_every - 1 else pause)
            offset, sent = terminal.send(b"1234"[index % 4 : index % 4 + 1])
            _frame, found = terminal.frame_with(GRID_HEADER, start=offset, timeout=10)
            if int(found.group(1)) == shown:
                raise RuntimeError(f"grid {shown} still on screen after a label key")
            shown = int(found.group(1))
            quiet_end = terminal.quiet(quiet)
            end, inside = frames_in(bytes(terminal.output[offset:quiet_end]))
            latencies.append((terminal.arrival_of(offset + end) - sent) * 1000)
            sizes.append(inside)
            ahead.append(quiet_end - offset - inside)
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
        "ahead_mean": statistics.fmean(ahead),
    }


def seed_sizes(root: Path) -> list[str]:
    """Each seed's size at the three screen sizes, panel shown and folded (headless app)."""
    from memgrid.tui.app import make_app
    from memgrid.tui.app.config import AppSettings
    from tests.app.pilot_helpers import press, settle

    async def measure(size: tuple[int, int], fold: bool) -> tuple[int, int]:
        with open_project(root) as project:
            app = make_app(project, AppSettings(annotator=f"sizes-{time.time_ns()}"))
            async with app.run_test(size=size) as pilot:
                await settle(pilot)
                if fold:
                    await press(pilot, "p")
                area = app.screen.query_one("#seeds").area
                return area.width, area.height

    lines = []
    for width, height in SIZES:
        for fold in (False, True):
            area = asyncio.run(measure((width, height), fold))
            for seeds in (8, 16):
                half = plan_layout(seeds, *area)
                real = plan_layout(seeds, *area, cell_pixels=GRAPHICS_CELL)
                lines.append(
                    f"{width:>3} x {height:<3} panel {'folded' if fold else 'shown '}  "
                    f"{seeds:>2} seeds: grid area {area[0]:>3} x {area[1]:<2}  "
                    f"half-cell {half.columns} x {half.rows}, seed "
                    f"{'x'.join(map(str, half.fitted_pixels(1.0)))} px "
                    f"({half.cells_for(half.fitted_pixels(1.0))[0]} cells wide)  "
                    f"| real pixels {real.columns} x {real.rows}, seed "
                    f"{'x'.join(map(str, real.fitted_pixels(1.0)))} px"
                )
    return lines


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
    parser.add_argument(
        "--runs", default=",".join(RUNS), help="comma-separated, of: " + ", ".join(RUNS)
    )
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="memgrid-bench-tui-")) / "project"
    if not (root / "memgrid.db").exists():
        started = time.perf_counter()
        thumbs = build_project(root, args.grids, args.seeds)
        print(
            f"built {args.grids} grids x {args.seeds} seeds in "
            f"{time.perf_counter() - started:.1f} s (thumbnails {thumbs:.2f} s)"
        )
    print("seed sizes (each seed's picture; a cell is 1 x 2 half-cell pixels, or 10 x 20 px):")
    for line in seed_sizes(root):
        print(f"  {line}")
    print(
        f"project: {root} ({args.grids} grids x {args.seeds} seeds), terminal 160x50, no COLORTERM"
    )
    for name in args.runs.split(","):
        protocol, before = RUNS[name]
        results = run(
            root, protocol, before, args.keys, args.pause, args.think, args.think_every, args.quiet
        )
        print(f"[{name}]")
        print(
            f"  launch -> first grid:          {results['launch_s'] * 1000:7.0f} ms   (aim <= 1000)"
        )
        print(
            f"  label key -> next grid drawn:  p50 {results['p50_ms']:5.1f} ms  "
            f"p95 {results['p95_ms']:5.1f} ms  max {results['max_ms']:5.1f} ms  "
            f"over {args.keys} keys   (aim p95 <= 50)"
        )
        print(
            f"  app CPU per grid change:       {results['cpu_ms_per_key']:5.1f} ms   (all "
            f"threads: commit, draw, prefetch, idle collection; load average "
            f"{os.getloadavg()[0]:.1f})"
        )
        print(
            f"  bytes per grid change:         mean {results['bytes_mean'] / 1024:5.1f} KB  "
            f"p95 {results['bytes_p95'] / 1024:5.1f} KB  max {results['bytes_max'] / 1024:5.1f} KB"
            f"   (aim <= 200 KB; {results['bytes_p95'] * 8 / 10e6:.2f} s at 10 Mbit/s)"
        )
        if results["ahead_mean"] > 1024:
            print(
                f"  sent ahead, outside frames:    mean {results['ahead_mean'] / 1024:7.1f} KB "
                "a grid change (the next grids' images, while this one is looked at)"
            )


if __name__ == "__main__":
    main()
