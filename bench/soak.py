"""Soak memgrid: scale to 1M images, 8 annotators at once, and SIGKILLs at random moments.

Run: .venv/bin/python bench/soak.py [--grids 62500] [--seeds 16] [--annotators 8]
     [--seconds 20] [--kills 4] [--shared-grids 400] [--shared-seconds 20] [--only-shared]
     [--out bench/results/soak.txt]

Prints its figures and stops by itself (about 3 to 6 minutes on a 2-core machine):
- shared: 8 annotator processes through the app's session, at overlap 1 then 2, that skip,
  undo, quit and resume, and are stopped (SIGSTOP) past their lease now and then; keys
  sent, labels acknowledged and stored, refusals by the overlap rule, grids with more votes
  than the overlap (must be 0) and acknowledged labels lost (must be 0);
- scale: a project of grids x seeds image rows (rows point at 16 shared tiny files), its
  database size, `memgrid status` time, the next-open-grid query and a label write
  (p50/p95), and the app's launch to the first grid drawn, in a real pseudo-terminal;
- concurrency: N annotator processes label the same project for a fixed time through
  the app's own session code (AnnotationSession, with leases), counting labels
  acknowledged vs stored, "database is locked" errors and grids labelled twice;
- faults: SIGKILL of an import, a scoring run, an export and an annotation session at
  random moments, each restarted, counting lost acknowledged labels, duplicate rows and
  partial files.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from memgrid.core.demo import scene  # noqa: E402
from memgrid.core.errors import DatabaseError  # noqa: E402
from memgrid.core.records import Proposal, QueueOrder  # noqa: E402
from memgrid.core.taxonomy import Category  # noqa: E402
from memgrid.db.queue import AnnotationQueue  # noqa: E402
from memgrid.db.rows import canonical_json, content_key, now_text  # noqa: E402
from memgrid.tui.app.session import AnnotationSession, SessionOptions  # noqa: E402
from memgrid.tui.services.project import create_project, open_project  # noqa: E402

MEMGRID = str(Path(sys.executable).with_name("memgrid"))
SHARED_FILES = 16
CATEGORIES = (Category.EXPLICIT, Category.IMPLICIT, Category.UNINTENDED, Category.NONE)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def timed_ms(action, repeats: int) -> list[float]:
    times = []
    for index in range(repeats):
        started = time.perf_counter()
        action(index)
        times.append((time.perf_counter() - started) * 1000)
    return times


# ---- scale -------------------------------------------------------------------------------


def build_scale_project(root: Path, grids: int, seeds: int) -> float:
    """Bulk-insert grids x seeds image rows with proposals; returns seconds taken."""
    started = time.perf_counter()
    rng = random.Random(0)
    with create_project(root) as project:
        shared = [
            project.images.put_image(scene(("soak", k)).resize((32, 32)), k)
            for k in range(SHARED_FILES)
        ]
        store = project.store
        thresholds = store.thresholds.add("default", {"tau_mem": 0.02}, activate=True)
        created = now_text()
        connection = store.db.conn
        with store.atomic():
            connection.executemany(
                "INSERT INTO prompts (id, text, metadata, created_at) VALUES (?, ?, '{}', ?)",
                ((g + 1, f"soak prompt number {g}", created) for g in range(grids)),
            )
            settings = canonical_json({"steps": 50})
            connection.executemany(
                """INSERT INTO grids (id, prompt_id, model, settings, settings_key, provenance,
                source, created_at) VALUES (?, ?, 'sd-soak', ?, ?, '{}', 'soak', ?)""",
                (
                    (g + 1, g + 1, settings, content_key({"steps": 50}), created)
                    for g in range(grids)
                ),
            )
            connection.executemany(
                "INSERT INTO images (grid_id, seed, path, sha256, width, height) VALUES (?, ?, ?, ?, 32, 32)",
                (
                    (
                        g + 1,
                        s,
                        shared[(g + s) % SHARED_FILES].path,
                        shared[(g + s) % SHARED_FILES].sha256,
                    )
                    for g in range(grids)
                    for s in range(seeds)
                ),
            )
        proposals = []
        for g in range(grids):
            score = rng.random()
            proposals.append(
                Proposal(
                    g + 1, thresholds.id, rng.choice(CATEGORIES), score=score, margin=score - 0.5
                )
            )
        store.proposals.add_many(proposals)
        store.db.execute("ANALYZE")
    return time.perf_counter() - started


def database_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.glob("memgrid.db*"))


def measure_scale(root: Path, grids: int, seeds: int) -> dict[str, float]:
    build_seconds = build_scale_project(root, grids, seeds)
    figures: dict[str, float] = {"build_s": build_seconds, "images": grids * seeds}
    figures["db_mb"] = database_bytes(root) / 1e6
    started = time.perf_counter()
    subprocess.run([MEMGRID, "status", "-p", str(root), "--json"], check=True, capture_output=True)
    figures["status_cli_s"] = time.perf_counter() - started
    with open_project(root) as project:
        store = project.store
        from memgrid.tui.commands.project import project_status

        figures["status_query_ms"] = statistics.median(
            timed_ms(lambda _: project_status(project), 5)
        )
        by_threshold = AnnotationQueue(store, "soak", order=QueueOrder.THRESHOLD)
        by_chance = AnnotationQueue(store, "soak", order=QueueOrder.RANDOM)
        queue_ms = timed_ms(lambda _: by_threshold.next_open(limit=4), 200)
        label_ms = []
        for _ in range(200):
            (grid_id,) = by_threshold.next_open(limit=1)
            started = time.perf_counter()
            store.labels.label(grid_id, "soak", Category.NONE)
            label_ms.append((time.perf_counter() - started) * 1000)
        random_ms = timed_ms(lambda _: by_chance.next_open(limit=4), 100)
    figures.update(
        queue_p50_ms=statistics.median(queue_ms),
        queue_p95_ms=percentile(queue_ms, 0.95),
        random_queue_p95_ms=percentile(random_ms, 0.95),
        label_p50_ms=statistics.median(label_ms),
        label_p95_ms=percentile(label_ms, 0.95),
        launch_s=app_launch_seconds(root),
    )
    return figures


def app_launch_seconds(root: Path) -> float:
    """Spawn `memgrid annotate` in a 160x50 pty; seconds until a frame shows a grid."""
    import re

    from tests.app.pty_terminal import PtyTerminal

    env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor"}
    argv = [
        MEMGRID,
        "annotate",
        "-p",
        str(root),
        "--annotator",
        "launch",
        "--image-protocol",
        "halfcell",
    ]
    terminal = PtyTerminal(argv, env, columns=160, rows=50)
    try:
        first, _ = terminal.frame_with(re.compile(rb"grid (\d+)  "), timeout=120)
        return first.arrived - terminal.started
    finally:
        terminal.kill()
        terminal.close()


# ---- concurrency --------------------------------------------------------------------------


def annotator_process(root: str, name: str, seconds: float, results: multiprocessing.Queue) -> None:
    acknowledged: list[int] = []
    locked = 0
    with open_project(Path(root)) as project:
        session = AnnotationSession(project.store, SessionOptions(annotator=name, lease_seconds=30))
        outcome = session.start()
        rng = random.Random(name)
        deadline = time.monotonic() + seconds
        while outcome.view is not None and time.monotonic() < deadline:
            try:
                outcome = session.label(rng.choice(CATEGORIES))
            except DatabaseError as error:
                if "locked" in str(error) or "busy" in str(error):
                    locked += 1
                    continue
                raise
            if outcome.event is not None:
                acknowledged.append(outcome.event.id)
        session.release_all()
    results.put((name, acknowledged, locked))


def measure_concurrency(root: Path, annotators: int, seconds: float) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [
        context.Process(
            target=annotator_process, args=(str(root), f"annotator-{k}", seconds, results)
        )
        for k in range(annotators)
    ]
    for worker in workers:
        worker.start()
    collected = [results.get(timeout=seconds + 300) for _ in workers]
    for worker in workers:
        worker.join()
    acknowledged = {event_id for _, ids, _ in collected for event_id in ids}
    with open_project(root) as project:
        rows = project.store.db.execute(
            "SELECT id, grid_id FROM label_events WHERE annotator LIKE 'annotator-%' AND action = 'label'"
        ).fetchall()
        twice = project.store.db.execute(
            """SELECT count(*) FROM (SELECT grid_id FROM label_events WHERE annotator LIKE 'annotator-%'
            AND action = 'label' GROUP BY grid_id HAVING count(DISTINCT annotator) > 1)"""
        ).fetchone()[0]
    stored = {row[0] for row in rows}
    return {
        "annotators": annotators,
        "seconds": seconds,
        "acknowledged": len(acknowledged),
        "stored": len(stored),
        "acknowledged_not_stored": len(acknowledged - stored),
        "locked_errors": sum(locked for _, _, locked in collected),
        "labelled_twice": twice,
        "labels_per_second": len(stored) / seconds,
    }


# ---- shared annotation: skip, undo, quit-and-resume, stalled annotators, overlap 1 and 2 ----

# What each of the 8 annotators does besides labelling (issue 13): the mix the plain
# concurrency run above never tried. "stall" is a steady annotator the soak stops with
# SIGSTOP for longer than its lease, then lets go on: its next key lands on a stale grid.
SHARED_BEHAVIOURS = ("steady", "skip", "skip", "undo", "undo", "quit", "stall", "stall")
SHARED_LEASE_SECONDS = 2.0


def shared_annotator(
    root: str,
    name: str,
    behaviour: str,
    overlap: int,
    seconds: float,
    results: multiprocessing.Queue,
) -> None:
    """Label through the app's session for `seconds`, pressing skip, undo and quit as
    `behaviour` says; reports keys sent, the label/flag events acknowledged, refusals."""
    from memgrid.core.taxonomy import LabelAction

    rng = random.Random(name)
    keys = refused = dropped = locked = 0
    acknowledged: list[int] = []
    options = SessionOptions(
        annotator=name, lease_seconds=SHARED_LEASE_SECONDS, overlap=overlap, blind_share=0.0
    )
    deadline = time.monotonic() + seconds
    with open_project(Path(root)) as project:
        session = AnnotationSession(project.store, options)
        outcome = session.start()
        while time.monotonic() < deadline:
            if outcome.view is None:  # nothing open now: others hold the rest; look again
                time.sleep(0.2)
                outcome = session.start()
                continue
            on_grid = outcome.view.grid_id
            roll = rng.random()
            keys += 1
            try:
                if behaviour == "skip" and roll < 0.3:
                    outcome = session.skip(on_grid=on_grid)
                elif behaviour == "undo" and roll < 0.25:
                    outcome = session.undo()
                elif behaviour == "quit" and roll < 0.1:
                    session.release_all()  # q, then the app is opened again
                    session = AnnotationSession(project.store, options)
                    outcome = session.start()
                    continue
                elif roll < 0.05:
                    outcome = session.flag("soak: unsure", on_grid=on_grid)
                else:
                    outcome = session.label(rng.choice(CATEGORIES), on_grid=on_grid)
            except DatabaseError as error:
                if "locked" in str(error) or "busy" in str(error):
                    locked += 1
                    outcome = session.start()
                    continue
                raise
            event = outcome.event
            acted = event is not None and event.action in (LabelAction.LABEL, LabelAction.FLAG)
            if acted and not outcome.message.startswith("Undid"):
                acknowledged.append(event.id)  # type: ignore[union-attr]
            refused += "was not stored" in outcome.message
            dropped += "dropped" in outcome.message
        session.release_all()
    results.put((name, keys, acknowledged, refused, dropped, locked))


def stall_now_and_then(pids: list[int], seconds: float, rng: random.Random) -> int:
    """SIGSTOP each process in turn for longer than its lease, then SIGCONT; returns stalls."""
    stalls = 0
    deadline = time.monotonic() + seconds - SHARED_LEASE_SECONDS * 2
    while time.monotonic() < deadline:
        time.sleep(rng.uniform(0.5, 1.5))
        pid = rng.choice(pids)
        try:
            os.kill(pid, signal.SIGSTOP)
            time.sleep(SHARED_LEASE_SECONDS * 1.5)
        finally:
            os.kill(pid, signal.SIGCONT)
        stalls += 1
    return stalls


def measure_shared(work: Path, grids: int, overlap: int, seconds: float) -> dict[str, float]:
    root = work / f"shared-{overlap}"
    build_scale_project(root, grids, 4)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [
        context.Process(
            target=shared_annotator,
            args=(str(root), f"{behaviour}-{k}", behaviour, overlap, seconds, results),
        )
        for k, behaviour in enumerate(SHARED_BEHAVIOURS)
    ]
    for worker in workers:
        worker.start()
    stallers = [w.pid for w, b in zip(workers, SHARED_BEHAVIOURS, strict=True) if b == "stall"]
    time.sleep(3.0)  # let every process open the project before stopping any
    stalls = stall_now_and_then(
        [pid for pid in stallers if pid], seconds - 3.0, random.Random(overlap)
    )
    collected = [results.get(timeout=seconds + 300) for _ in workers]
    for worker in workers:
        worker.join()
    acknowledged = {event_id for _, _, ids, *_ in collected for event_id in ids}
    with open_project(root) as project:
        database = project.store.db
        stored = {
            row[0]
            for row in database.execute(
                "SELECT id FROM label_events WHERE action IN ('label', 'flag')"
            ).fetchall()
        }
        over = database.execute(
            """SELECT count(*) FROM (SELECT grid_id FROM votes
            WHERE state IN ('labelled', 'flagged') GROUP BY grid_id HAVING count(*) > ?)""",
            (overlap,),
        ).fetchone()[0]
        with_all_votes = database.execute(
            "SELECT count(*) FROM grid_progress WHERE done >= ?", (overlap,)
        ).fetchone()[0]
    return {
        "overlap": overlap,
        "annotators": len(workers),
        "grids": grids,
        "seconds": seconds,
        "stalls": stalls,
        "keys_sent": sum(keys for _, keys, *_ in collected),
        "acknowledged": len(acknowledged),
        "labels_stored": len(stored),
        "refused": sum(row[3] for row in collected),
        "dropped_stale_keys": sum(row[4] for row in collected),
        "locked_errors": sum(row[5] for row in collected),
        "grids_over_overlap": over,
        "grids_with_all_votes": with_all_votes,
        "lost_acknowledged": len(acknowledged - stored),
    }


def describe_shared(figures: dict[str, float]) -> str:
    return (
        f"shared: overlap {figures['overlap']}, {figures['annotators']} annotators "
        f"(steady, skip, undo, quit-and-resume, stalled) on {figures['grids']} grids for "
        f"{figures['seconds']:.0f} s, {figures['stalls']} SIGSTOP stalls past the lease: "
        f"{figures['keys_sent']} keys sent, {figures['acknowledged']} labels acknowledged, "
        f"{figures['labels_stored']} stored, {figures['refused']} refused by the overlap rule, "
        f"{figures['locked_errors']} 'database is locked', "
        f"{figures['grids_over_overlap']} grids with more votes than the overlap, "
        f"{figures['lost_acknowledged']} acknowledged labels lost "
        f"({figures['grids_with_all_votes']} grids with all their votes)"
    )


# ---- faults --------------------------------------------------------------------------------


def make_import_source(folder: Path, grids: int, seeds: int) -> None:
    for g in range(grids):
        grid = folder / f"grid{g:03d}"
        grid.mkdir(parents=True)
        (grid / "prompt.txt").write_text(f"fault prompt {g}")
        for s in range(seeds):
            image = scene(("fault", g if g % 3 else 0, s if g % 3 else 0)).resize((128, 128))
            image.save(grid / f"{s:04d}.png")


def run_and_kill(argv: list[str], delay: float) -> bool:
    """Start a command, SIGKILL it after `delay` seconds; True if it was still running."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    alive = process.poll() is None
    if alive:
        process.send_signal(signal.SIGKILL)
    process.wait()
    return alive


def project_integrity(root: Path) -> dict[str, int]:
    """Duplicate rows, partial (temporary) files and rows whose file is missing or wrong."""
    import hashlib

    with open_project(root) as project:
        database = project.store.db
        duplicates = database.execute(
            "SELECT count(*) - count(DISTINCT grid_id || ':' || seed) FROM images"
        ).fetchone()[0]
        duplicates += database.execute(
            "SELECT count(*) - count(DISTINCT grid_id || ':' || metric || ':' || params_key) FROM scores"
        ).fetchone()[0]
        broken = 0
        for path, sha256 in database.execute("SELECT DISTINCT path, sha256 FROM images"):
            file = root / path
            if not file.exists() or hashlib.sha256(file.read_bytes()).hexdigest() != sha256:
                broken += 1
        grids = project.store.grids.count
    partial = len(list((root / "images").rglob(".tmp-*")))
    return {
        "duplicate_rows": duplicates,
        "partial_files": partial,
        "broken_rows": broken,
        "grids": grids,
    }


def annotation_victim(root: str, annotator: str) -> None:
    """Label as fast as possible, printing each acknowledged event id (the app's code path)."""
    with open_project(Path(root)) as project:
        session = AnnotationSession(
            # Overlap on: every victim has the whole queue ahead, whatever earlier ones did.
            project.store,
            SessionOptions(annotator=annotator, lease_seconds=30, overlap=1000),
        )
        outcome = session.start()
        while outcome.view is not None:
            outcome = session.label(Category.NONE)
            if outcome.event is not None:
                print(outcome.event.id, flush=True)


def kill_annotation(root: Path, annotator: str, after_labels: int) -> tuple[int, int]:
    """SIGKILL a labelling session once it acknowledged `after_labels` labels (mid-run);
    returns (acknowledged, acknowledged but lost)."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); from bench.soak import annotation_victim; "
        f"annotation_victim({str(root)!r}, {annotator!r})"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    acknowledged = set()
    for line in process.stdout:
        acknowledged.add(int(line))
        if len(acknowledged) >= after_labels:
            process.send_signal(signal.SIGKILL)
            break
    rest, _ = process.communicate()
    acknowledged |= {int(line) for line in rest.split()}
    with open_project(root) as project:
        stored = {row[0] for row in project.store.db.execute("SELECT id FROM label_events")}
    return len(acknowledged), len(acknowledged - stored)


def measure_faults(work: Path, kills: int, rng: random.Random) -> dict[str, object]:
    source = work / "source"
    make_import_source(source, grids=400, seeds=8)
    project = work / "faults"
    subprocess.run([MEMGRID, "init", str(project)], check=True, capture_output=True)
    report: dict[str, object] = {}

    import_command = [MEMGRID, "import", str(source), "-p", str(project)]
    scratch = work / "timing"
    subprocess.run([MEMGRID, "init", str(scratch)], check=True, capture_output=True)
    started = time.perf_counter()
    subprocess.run([*import_command[:-1], str(scratch)], check=True, capture_output=True)
    import_seconds = time.perf_counter() - started
    killed = 0
    for _ in range(kills):
        # Somewhere after start-up and before the end of a full run.
        killed += run_and_kill(import_command, rng.uniform(0.35, 0.8) * import_seconds)
    subprocess.run(import_command, check=True, capture_output=True)
    report["import"] = {"kills": killed, **project_integrity(project)}

    killed = 0
    score = [MEMGRID, "score", "-p", str(project), "--metric", "tiled-l2,phash"]
    for _ in range(kills):
        killed += run_and_kill(score, rng.uniform(1.0, 3.0))
    subprocess.run(score, check=True, capture_output=True)
    subprocess.run([MEMGRID, "propose", "-p", str(project)], check=True, capture_output=True)
    with open_project(project) as opened:
        missing = opened.store.db.execute(
            """SELECT count(*) FROM grids g WHERE (SELECT count(*) FROM scores s WHERE s.grid_id = g.id) != 2"""
        ).fetchone()[0]
    report["score"] = {
        "kills": killed,
        "grids_without_both_scores": missing,
        **project_integrity(project),
    }

    acknowledged = lost = 0
    for index in range(kills):
        # Each victim is a new annotator with the whole queue ahead: the kill lands mid-run.
        ack, gone = kill_annotation(project, f"victim-{index}", rng.randint(1, 300))
        acknowledged += ack
        lost += gone
    report["annotate"] = {"kills": kills, "acknowledged": acknowledged, "lost": lost}

    killed = partial = 0
    out = work / "export.d"
    export = [
        MEMGRID,
        "export",
        "-p",
        str(project),
        "--format",
        "imagefolder",
        "--out",
        str(out),
        "--overwrite",
    ]
    for _ in range(kills):
        killed += run_and_kill(export, rng.uniform(0.6, 1.6))
        if out.exists() and not (out / "export.json").exists():
            partial += 1
    subprocess.run(export, check=True, capture_output=True)
    leftovers = [p.name for p in work.iterdir() if p.name.startswith(".") and "export" in p.name]
    report["export"] = {
        "kills": killed,
        "partial_outputs_seen": partial,
        "complete_after_rerun": (out / "export.json").exists(),
        "leftover_temporaries": len(leftovers),
    }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, default=62_500)
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--annotators", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shared-grids", type=int, default=400)
    parser.add_argument("--shared-seconds", type=float, default=20.0)
    parser.add_argument(
        "--only-shared", action="store_true", help="only the shared-annotation part"
    )
    parser.add_argument("--out", type=Path, help="also write the figures here (text)")
    arguments = parser.parse_args()
    rng = random.Random(arguments.seed)
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="memgrid-soak-") as folder:
        work = Path(folder)
        shared = {}
        for overlap in (1, 2):
            shared[overlap] = measure_shared(
                work, arguments.shared_grids, overlap, arguments.shared_seconds
            )
            say(describe_shared(shared[overlap]))
        if arguments.only_shared:
            scale = concurrency = faults = {}
        else:
            scale, concurrency, faults = measure_the_rest(work, arguments, rng, say)
    say(f"soak finished in {time.perf_counter() - started:.0f} s")
    # Timings on a shared machine mean little without the load they were taken under.
    say("load average at the end (1, 5, 15 min): " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    if arguments.out:
        arguments.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"shared": shared, "scale": scale, "concurrency": concurrency, "faults": faults}
        arguments.out.write_text(
            "\n".join(lines) + "\n\n" + json.dumps(payload, indent=2, default=str) + "\n"
        )


def measure_the_rest(work: Path, arguments: argparse.Namespace, rng: random.Random, say):
    """Scale, the plain concurrency run and the faults; returns their figures."""
    scale = measure_scale(work / "scale", arguments.grids, arguments.seeds)
    say(
        f"scale: {arguments.grids:,} grids x {arguments.seeds} seeds = {int(scale['images']):,} images"
    )
    say(f"  built in {scale['build_s']:.1f} s; database {scale['db_mb']:.1f} MB")
    say(
        f"  memgrid status: {scale['status_cli_s']:.2f} s as a command, {scale['status_query_ms']:.0f} ms of queries"
    )
    say(
        f"  next open grid (threshold order): p50 {scale['queue_p50_ms']:.3f} ms, p95 {scale['queue_p95_ms']:.3f} ms; random order p95 {scale['random_queue_p95_ms']:.1f} ms"
    )
    say(f"  label write: p50 {scale['label_p50_ms']:.3f} ms, p95 {scale['label_p95_ms']:.3f} ms")
    say(f"  app launch to first grid: {scale['launch_s']:.2f} s")
    concurrency = measure_concurrency(work / "scale", arguments.annotators, arguments.seconds)
    say(
        f"concurrency: {concurrency['annotators']} annotators for {concurrency['seconds']:.0f} s: "
        f"{concurrency['acknowledged']} labels acknowledged, {concurrency['stored']} stored, "
        f"{concurrency['acknowledged_not_stored']} lost, {concurrency['locked_errors']} 'database is locked', "
        f"{concurrency['labelled_twice']} grids labelled twice ({concurrency['labels_per_second']:.0f} labels/s)"
    )
    faults = measure_faults(work, arguments.kills, rng)
    for name, figures in faults.items():
        say(f"faults: {name}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    return scale, concurrency, faults


if __name__ == "__main__":
    main()
