"""Reference pools: indexing throughput, query latency per 16-seed grid, index memory.

Run: .venv/bin/python bench/refs.py [--images N] [--queries Q] [--sizes 10000,100000,1000000]
     [--out bench/results/refs.txt]

1. Indexing: `memgrid refs add` on a folder of N synthetic 256 px PNGs (core.demo scenes;
   decode in full, pHash, content-addressed store, rows in batches): images/s on this
   machine's cores.
2. Query: pools of 10k, 100k and 1M references with synthetic 64-bit hashes (random, with
   near-duplicates of the queries planted at 0..14 bits), stored in a project's
   memgrid.db like real ones. Timed: loading the pool's hashes from memgrid.db, building the
   multi-index (HashIndex), and Q grids of 16 seed hashes each through `query` (p50/p95 per
   grid) against a scan of every hash (`scan`). Memory: the index's arrays.
3. Embeddings (VectorIndex, exact cosine by one matrix product) at 10k and 100k for 512-d
   SSCD-sized vectors; 1M x 512 float32 is 2 GB, where an approximate index (faiss) is the
   path (docs/design.md, "Reference images").
4. The whole match of one grid (decode seeds, pHash, index, tiled-l2 against candidates) on
   the demo project, per grid.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from memgrid.core.demo import scene
from memgrid.core.references.index import HashIndex, VectorIndex
from memgrid.db.rows import now_text
from memgrid.tui.services.ingest import build_demo
from memgrid.tui.services.project import Project, create_project
from memgrid.tui.services.references import add_references, match_grids

SEEDS_PER_GRID = 16
INSERT_BATCH = 50_000


def indexing(scratch: Path, count: int) -> str:
    source = scratch / "pool"
    source.mkdir()
    for index in range(count):
        scene(("bench-ref", index)).save(source / f"{index:06d}.png")
    with create_project(scratch / "indexing") as project:
        started = time.perf_counter()
        report = add_references(project, source)
        seconds = time.perf_counter() - started
    assert report.added == count and not report.errors
    return f"indexing: {count} PNGs (256 px) in {seconds:.1f} s = {count / seconds:.0f} images/s"


def planted_pool(size: int, grids: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random hashes, and each query grid's 16 seed hashes with copies planted in the pool."""
    pool = rng.integers(-(2**63), 2**63 - 1, size=size, dtype=np.int64)
    queries = rng.integers(-(2**63), 2**63 - 1, size=(grids, SEEDS_PER_GRID), dtype=np.int64)
    planted = min(size // 4, grids * SEEDS_PER_GRID)
    flat = queries.reshape(-1)[:planted].view(np.uint64)
    bits = rng.integers(0, 15, size=planted)
    masks = np.array(
        [sum(1 << int(b) for b in rng.choice(64, size=k, replace=False)) for k in bits],
        dtype=np.uint64,
    )
    pool[:planted] = (flat ^ masks).view(np.int64)
    return pool, queries


def store_pool(project: Project, hashes: np.ndarray) -> None:
    """Rows as `refs add` writes them (the hash index lives in memgrid.db), in bulk."""
    created = now_text()
    for start in range(0, len(hashes), INSERT_BATCH):
        chunk = hashes[start : start + INSERT_BATCH]
        project.store.write_many(
            """INSERT INTO reference_images (path, sha256, width, height, phash, created_at)
            VALUES (?, ?, 256, 256, ?, ?)""",
            (
                (f"images/{i:064x}.png", f"{i:064x}", int(h), created)
                for i, h in enumerate(chunk.tolist(), start=start)
            ),
        )


def percentiles(seconds: list[float]) -> str:
    ms = np.array(seconds) * 1000
    return f"p50 {np.percentile(ms, 50):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms"


def query_point(scratch: Path, size: int, grids: int, rng: np.random.Generator) -> list[str]:
    pool, queries = planted_pool(size, grids, rng)
    with create_project(scratch / f"pool-{size}") as project:
        store_pool(project, pool)
        started = time.perf_counter()
        ids, hashes = project.store.references.hashes_all()
        loaded = time.perf_counter() - started
    started = time.perf_counter()
    index = HashIndex(ids, hashes)
    built = time.perf_counter() - started
    timed, scanned, found = [], [], 0
    for grid in queries:
        started = time.perf_counter()
        answer = index.query(grid.tolist())
        timed.append(time.perf_counter() - started)
        found += sum(bool(row) for row in answer)
    for grid in queries[: max(5, grids // 10)]:
        started = time.perf_counter()
        index.scan(grid.tolist())
        scanned.append(time.perf_counter() - started)
    return [
        f"pool {size:>9,}: load from memgrid.db {loaded:.2f} s, build {built:.2f} s, "
        f"index {index.nbytes / 2**20:.0f} MiB",
        f"   query, 16 seeds per grid ({grids} grids): {percentiles(timed)}; "
        f"{found} of {grids * SEEDS_PER_GRID} seeds found a neighbour within 11 bits",
        f"   scan of every hash, same grids: {percentiles(scanned)}",
    ]


def embedding_point(size: int, rng: np.random.Generator, grids: int) -> str:
    vectors = rng.standard_normal((size, 512), dtype=np.float32)
    index = VectorIndex(np.arange(size), vectors)
    timed = []
    for _ in range(grids):
        queries = rng.standard_normal((SEEDS_PER_GRID, 512), dtype=np.float32)
        started = time.perf_counter()
        index.query(queries)
        timed.append(time.perf_counter() - started)
    return (
        f"embeddings {size:>9,} x 512: {percentiles(timed)} per 16-seed grid, "
        f"index {index.nbytes / 2**20:.0f} MiB"
    )


def whole_match(scratch: Path) -> str:
    with create_project(scratch / "demo") as project:
        build_demo(project)
        started = time.perf_counter()
        report = match_grids(project)
        seconds = time.perf_counter() - started
    return (
        f"whole match on the demo (8 seeds a grid, {report.pool} references): "
        f"{seconds / report.grids * 1000:.0f} ms per grid over {report.grids} grids"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--out", type=Path, default=Path("bench/results/refs.txt"))
    arguments = parser.parse_args()
    rng = np.random.default_rng(0)
    scratch = Path(tempfile.mkdtemp(prefix="memgrid-bench-refs-"))
    lines = [f"bench/refs.py on {platform.machine()}, {platform.python_version()}, {now_text()}"]
    try:
        lines.append(indexing(scratch, arguments.images))
        print(lines[-1], flush=True)
        for size in (int(s) for s in arguments.sizes.split(",")):
            lines += query_point(scratch, size, arguments.queries, rng)
            print("\n".join(lines[-3:]), flush=True)
        for size in (10_000, 100_000):
            lines.append(embedding_point(size, rng, max(10, arguments.queries // 10)))
            print(lines[-1], flush=True)
        lines.append(whole_match(scratch))
        print(lines[-1], flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    arguments.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
