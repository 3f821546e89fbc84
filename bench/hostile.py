"""Throw hostile inputs at memgrid and count what reaches the terminal (the hostile-input issue).

Run: .venv/bin/python bench/hostile.py [--keep DIR]

The corpus (tests/hostile/corpus.py): OSC 52/0/2/8, CSI 2J and SGR, DCS, APC, 8-bit C1,
BEL/backspace/DEL, RIS, bidi overrides and isolates, zero-width and tag characters, Rich
markup and emoji codes, newlines and NULs; plus 100,000-deep nesting, huge seeds, odd file
and folder names, a symbolic link loop and a damaged database. It goes through:

- the CLI (import of grid folders and manifests, prompts add, entities add, propose -t,
  show on every grid, status, agreement, calibrate, export, merge), each command run in
  its own pseudo-terminal as a person would run it, so nothing is stripped on the way;
- the annotation app through Textual's Pilot (half-cell images forced, as the tests do):
  every grid and every screen, each frame rendered to the bytes a terminal would get;
- `show` into a closed pipe (`| head`);
- import sources whose `prompt.txt`, `meta.json`, images, manifest rows and grid folders
  are links out of the source, named pipes, link loops, dangling links and devices
  (tests/hostile/hostile_files.py), then an export of what went in. Every memgrid process
  records each file it opens (a Python audit hook, set through `sitecustomize`), so a file
  read from outside the source is counted however it was reached.

It prints the inputs tried, the tracebacks seen (aim: 0), the raw escape and control
characters that reached the terminal from the data (aim: 0; the app's own cursor moves
and colours are not counted), the files opened outside the source (aim: 0) and the
commands that hung (aim: 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from memgrid.tui.app import make_app  # noqa: E402
from memgrid.tui.services.project import open_project  # noqa: E402
from tests.app.conftest import settings_for  # noqa: E402
from tests.app.pilot_helpers import SIZE, press, settle  # noqa: E402
from tests.app.pty_terminal import PtyTerminal  # noqa: E402
from tests.hostile.corpus import HOSTILE_STRINGS, into_closed_pipe, raw_escapes  # noqa: E402
from tests.hostile.hostile_files import KINDS, place  # noqa: E402
from tests.hostile.project import HOSTILE_ANNOTATOR, build_hostile_project  # noqa: E402

DEEP = "[" * 100_000
HUGE_SEEDS = ("99999999999999999999999", str(2**63), "-1", "1e999", "9" * 5000, "NaN")
APP_KEYS = ("r", "S", "F", "A", "C", "?", "z", "n", "m")
COMMAND_SECONDS = 300  # a command still running after this has hung (a pipe read, say)
IMPORT_SECONDS = 60  # the same for the import of a few tiny grids
OPEN_LOG = "MEMGRID_BENCH_OPEN_LOG"
# Loaded by every Python process of the bench's commands (their PYTHONPATH leads with it):
# each path opened goes to the log, links not yet followed, before the open happens.
SITECUSTOMIZE = f"""
import os, sys
if os.environ.get({OPEN_LOG!r}):
    _log = open(os.environ[{OPEN_LOG!r}], "a", buffering=1, encoding="utf-8", errors="replace")
    def _record(event, args):
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            _log.write(os.path.abspath(os.fsdecode(args[0])).replace("\\n", " ") + "\\n")
    sys.addaudithook(_record)
"""


class Tally:
    """Inputs tried, tracebacks and raw escapes seen, per surface."""

    def __init__(self) -> None:
        self.inputs: Counter[str] = Counter()
        self.tracebacks: Counter[str] = Counter()
        self.escapes: Counter[str] = Counter()
        self.examples: list[str] = []
        self.hangs: Counter[str] = Counter()

    def saw(self, surface: str, output: str, inputs: int = 1, *, app_frame: bool = False) -> None:
        self.inputs[surface] += inputs
        tracebacks = output.count("Traceback (most recent call last)")
        tracebacks += output.count("Exception ignored")
        escapes = raw_escapes(output, app_frame=app_frame)
        self.tracebacks[surface] += tracebacks
        self.escapes[surface] += escapes
        if (tracebacks or escapes) and len(self.examples) < 5:
            self.examples.append(f"{surface}: {output[-300:]!r}")


def cli(
    tally: Tally,
    surface: str,
    *args: str | Path,
    inputs: int = 1,
    env: dict[str, str] | None = None,
    seconds: float = COMMAND_SECONDS,
) -> str:
    """Run `memgrid ARGS` in a pseudo-terminal; count what it wrote, and whether it hung."""
    argv = [sys.executable, "-m", "memgrid.tui", *map(str, args)]
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", **(env or {})}
    terminal = PtyTerminal(argv, env)
    try:
        try:
            terminal.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            tally.hangs[surface] += 1
            terminal.kill()
        terminal.quiet(0.1, timeout=5)
        output = bytes(terminal.output).decode("utf-8", errors="replace")
    finally:
        terminal.close()
    # The pty turns each newline into CR LF; the CR is the terminal's, not the data's.
    tally.saw(surface, output.replace("\r\n", "\n"), inputs, app_frame=True)
    return output


def image(path: Path, shade: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (24, 24), (shade % 256, 80, 160)).save(path)


def hostile_sources(root: Path) -> dict[str, Path]:
    """Every hostile file the CLI is given, by what it is."""
    files: dict[str, Path] = {}
    grids = root / "grids"
    for index, text in enumerate(HOSTILE_STRINGS):
        name = "".join(c for c in text if c not in "/\x00")[:40] or "empty"
        folder = grids / f"{index:02d}-{name}"
        (folder).mkdir(parents=True)
        (folder / "prompt.txt").write_text(f"grid {index} {text}", encoding="utf-8")
        (folder / "meta.json").write_text(json.dumps({"model": text, "settings": {text: text}}))
        for seed in range(2):
            image(folder / f"{seed:04d}.png", index * 9 + seed)
    deep = grids / "zz-deep-meta"
    deep.mkdir()
    (deep / "prompt.txt").write_text("deep meta", encoding="utf-8")
    (deep / "meta.json").write_text(DEEP)
    image(deep / "0000.png", 1)
    odd = grids / "odd \x1b]0;x\x07 [bold] \u202eevil"
    odd.mkdir()
    (odd / "prompt.txt").write_text("odd names", encoding="utf-8")
    image(odd / "0000.png", 2)
    (odd / "0009.png").symlink_to("0009.png")  # a link loop
    (odd / "0008.png").write_bytes(b"not an image")

    manifests = root / "manifests"
    image(manifests / "a.png", 7)
    rows = [{"prompt": text, "seed": 0, "path": "a.png", "model": text} for text in HOSTILE_STRINGS]
    rows += [{"prompt": f"seed {s[:12]}", "seed": s, "path": "a.png"} for s in HUGE_SEEDS]
    rows += [{"prompt": "good after the bad rows", "seed": 1, "path": "a.png"}]
    files["manifest rows"] = manifests / "hostile.jsonl"
    files["manifest rows"].write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    files["deep manifest"] = manifests / "deep.jsonl"
    files["deep manifest"].write_text(DEEP)

    prompts = root / "prompts"
    prompts.mkdir()
    files["prompts jsonl"] = prompts / "p.jsonl"
    files["prompts jsonl"].write_text(
        "\n".join(json.dumps({"prompt": f"add {t}", "note": t}) for t in HOSTILE_STRINGS)
    )
    files["prompts deep"] = prompts / "deep.jsonl"
    files["prompts deep"].write_text(DEEP)
    files["prompts nul"] = prompts / "nul\x1b]0;t\x07.txt"
    files["prompts nul"].write_text("fine\nwith \x00 nul\n")
    files["lexicon"] = prompts / "entities.txt"
    files["lexicon"].write_text(
        "\n".join(
            f"name {i} {t.replace('|', '')} | work | alias {i}"
            for i, t in enumerate(HOSTILE_STRINGS)
            if "\n" not in t and "\r" not in t
        )
    )
    for suffix, text in ((".json", DEEP), (".toml", "tau_mem = " + DEEP)):
        files[f"thresholds deep {suffix}"] = prompts / f"deep{suffix}"
        files[f"thresholds deep {suffix}"].write_text(text)
    files["thresholds named"] = prompts / "named.toml"
    files["thresholds named"].write_text(
        f"name = {json.dumps('set ' + HOSTILE_STRINGS[0] + ' [/x]')}\ntau_mem = 0.4\n"
    )
    files["grids"] = grids
    return files


def run_cli(tally: Tally, work: Path) -> Path:
    files = hostile_sources(work / "sources")
    project = work / "project [/x] \x1b]0;t\x07"
    cli(tally, "init", "init", project)
    cli(
        tally,
        "import folders",
        "import",
        files["grids"],
        "-p",
        project,
        inputs=len(HOSTILE_STRINGS) + 3,
    )
    cli(
        tally,
        "import manifest",
        "import",
        files["manifest rows"],
        "-p",
        project,
        inputs=len(HOSTILE_STRINGS) + len(HUGE_SEEDS) + 1,
    )
    cli(tally, "import manifest", "import", files["deep manifest"], "-p", project)
    for key in ("prompts jsonl", "prompts deep", "prompts nul"):
        cli(
            tally,
            "prompts add",
            "prompts",
            "add",
            files[key],
            "-p",
            project,
            inputs=len(HOSTILE_STRINGS) if key == "prompts jsonl" else 1,
        )
    cli(
        tally,
        "entities add",
        "entities",
        "add",
        files["lexicon"],
        "-p",
        project,
        inputs=len(HOSTILE_STRINGS),
    )
    cli(tally, "score", "score", "--metric", "tiled-l2,phash", "--json", "-p", project)
    for key in ("thresholds deep .json", "thresholds deep .toml", "thresholds named"):
        cli(tally, "propose -t", "propose", "-t", files[key], "-p", project)
    with open_project(project) as opened:
        grid_ids = opened.store.grids.ids_all()
    for grid_id in grid_ids:
        cli(tally, "show", "show", str(grid_id), "-p", project)
    cli(tally, "status", "status", "-p", project)
    loop = work / "loop"
    loop.symlink_to(loop)
    cli(tally, "merge", "merge", project, "--into", loop)
    for fmt in ("jsonl", "csv"):
        cli(tally, "export", "export", "-f", fmt, "-o", work / f"out-{fmt} [/x]", "-p", project)
    damaged = work / "damaged"
    shutil.copytree(project, damaged)
    with sqlite3.connect(damaged / "memgrid.db") as connection:
        connection.execute("UPDATE grids SET settings = x'c3' WHERE id = 1")
        connection.execute("UPDATE prompts SET text = CAST(x'ff1b5b324a' AS TEXT) WHERE id = 2")
    for grid_id in (1, 2):
        cli(tally, "damaged database", "show", str(grid_id), "-p", damaged)
    cli(
        tally,
        "damaged database",
        "export",
        "-f",
        "jsonl",
        "-o",
        work / "out-damaged",
        "-p",
        damaged,
    )
    return project


def run_labelled_cli(tally: Tally, work: Path) -> Path:
    """Labels, notes, threshold-set and model names, a calibration run: all hostile."""
    root = build_hostile_project(work / "labelled")
    cli(tally, "status", "status", "-p", root)
    cli(tally, "agreement", "agreement", "-p", root)
    cli(tally, "calibrate", "calibrate", "--by-model", "-p", root)
    cli(tally, "report", "report", "--by", "source", "-p", root)
    cli(tally, "export", "export", "-f", "jsonl", "-o", work / "out-labelled", "-p", root)
    return root


def leaky_sources(source: Path, outside: Path) -> int:
    """Grid folders and a manifest whose every file may be a link out, a pipe, a loop...

    Returns the number of hostile entries placed. `outside` holds the files they lead to: a
    text file (tests/hostile/hostile_files.py's secret), an image and a whole grid folder.
    """
    image(outside / "secret.png", 250)
    image(outside / "grid" / "0000.png", 251)
    (outside / "grid" / "prompt.txt").write_text("a grid outside the source", encoding="utf-8")
    contents = {"prompt.txt": b"a leaky grid", "meta.json": b'{"model": "m"}'}
    placed = 0
    for kind in KINDS:
        for name in ("prompt.txt", "meta.json", "0001.png"):
            folder = source / kind / name.replace(".", "-")
            for plain, content in contents.items():
                (folder / plain).parent.mkdir(parents=True, exist_ok=True)
                (folder / plain).write_bytes(content)
            image(folder / "0000.png", placed)
            (folder / name).unlink(missing_ok=True)
            if kind == "link_outside" and name.endswith(".png"):
                (folder / name).symlink_to(outside / "secret.png")  # an image, not the text
            else:
                payload = contents.get(name) or (folder / "0000.png").read_bytes()
                place(folder / name, kind, payload, outside)
            placed += 1
    (source / "linked_folder").mkdir()
    (source / "linked_folder" / "grid").symlink_to(outside / "grid", target_is_directory=True)
    manifest = source / "manifests" / "rows.jsonl"
    image(manifest.parent / "good.png", 252)
    (manifest.parent / "inside-link.png").symlink_to(outside / "secret.png")
    os.mkfifo(manifest.parent / "pipe.png")
    paths = [
        os.path.relpath(outside / "secret.png", manifest.parent),
        str(outside / "secret.png"),
        "inside-link.png",
        "pipe.png",
        "/dev/zero",
        "good.png",
    ]
    rows = [{"prompt": "manifest row", "seed": seed, "path": p} for seed, p in enumerate(paths)]
    manifest.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    return placed + 1 + len(paths) - 1


def run_leaky_import(tally: Tally, work: Path) -> int:
    """Import and export the leaky sources; the files opened outside the source."""
    outside, source = work / "outside", work / "leaky"
    hostile_entries = leaky_sources(source, outside)
    hook = work / "audit-hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = work / "opened.log"
    paths = [str(hook), os.environ.get("PYTHONPATH", "")]
    env = {OPEN_LOG: str(log), "PYTHONPATH": os.pathsep.join(filter(None, paths))}
    project = work / "leaky-project"
    cli(tally, "init", "init", project, env=env)
    # One import per kind of entry, so that a hang on one (a pipe) hides nothing else.
    for kind in [*KINDS, "linked_folder", "manifests/rows.jsonl"]:
        cli(
            tally,
            "import links",
            "import",
            source / kind,
            "-p",
            project,
            env=env,
            inputs=0,
            seconds=IMPORT_SECONDS,
        )
    tally.inputs["import links"] += hostile_entries
    cli(tally, "export", "export", "-f", "jsonl", "-o", work / "out-leaky", "-p", project, env=env)
    cli(
        tally, "export", "export", "-f", "csv", "-o", work / "out-leaky-csv", "-p", project, env=env
    )
    opened = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    with open_project(project) as imported:
        prompts = {grid.prompt for grid in imported.store.grids.all()}
    # The plain grids and those linked inside went in: the readers did read this source.
    if not opened or "a leaky grid" not in prompts:
        raise SystemExit("nothing was read from the leaky source: the count would mean nothing")
    outside_root = outside.resolve()
    return sum(Path(os.path.realpath(path)).is_relative_to(outside_root) for path in opened)


def closed_pipe(tally: Tally, root: Path) -> None:
    done = into_closed_pipe("show", "1", "-p", root)
    tally.saw("show | head", done.stderr.decode("utf-8", errors="replace"))


async def drive_app(tally: Tally, root: Path) -> None:
    """Every grid and every screen, through Pilot; each frame as the terminal would get it."""
    with open_project(root) as project:
        app = make_app(project, settings_for(HOSTILE_ANNOTATOR))
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            for key in APP_KEYS:
                await press(pilot, key)
                await settle(pilot)
                tally.saw("app screens", frame(app), app_frame=True)
                await press(pilot, "escape")
            for _ in project.store.grids.ids_all():
                tally.saw("app grids", frame(app), app_frame=True)
                await press(pilot, "s")
            crashed = app.return_code not in (None, 0)
    tally.saw("app exit", "Traceback (most recent call last)" if crashed else "", inputs=0)


def frame(app: object) -> str:
    update = app.screen._compositor.render_update(full=True)  # type: ignore[attr-defined]
    return update.render_segments(app.console)  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="Build in this folder and keep it.")
    options = parser.parse_args()
    work = options.keep or Path(tempfile.mkdtemp(prefix="memgrid-hostile-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tally = Tally()
    try:
        read_outside = run_leaky_import(tally, work)
        run_cli(tally, work)
        labelled = run_labelled_cli(tally, work)
        closed_pipe(tally, labelled)
        try:
            asyncio.run(drive_app(tally, labelled))
        except Exception:  # the app crashed on the data: that is a traceback on screen
            tally.saw("app exit", traceback.format_exc(), inputs=0)
    finally:
        if options.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"# {time.strftime('%Y-%m-%d')}, {time.perf_counter() - started:.0f} s")
    print(f"{'surface':<20} {'inputs':>7} {'tracebacks':>11} {'raw escapes':>12}")
    for surface in tally.inputs:
        print(
            f"{surface:<20} {tally.inputs[surface]:>7} {tally.tracebacks[surface]:>11} "
            f"{tally.escapes[surface]:>12}"
        )
    print(f"inputs tried: {sum(tally.inputs.values())}")
    print(f"tracebacks: {sum(tally.tracebacks.values())}")
    print(f"raw escape bytes written to the terminal: {sum(tally.escapes.values())}")
    print(f"files read outside the source: {read_outside}")
    print(f"commands that hung: {sum(tally.hangs.values())}")
    for example in tally.examples:
        print(f"  e.g. {example}")


if __name__ == "__main__":
    main()
