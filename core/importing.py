"""Reading grids made elsewhere: a folder per grid, or a manifest of prompt, seed, path.

Each source folder, or each grid key of a manifest, is its own grid (its *origin*): two
folders with one prompt (an original model's grid and the same prompt after a mitigation)
stay apart. A folder without prompt.txt (figures often print none) imports with the prompt
unknown: the empty text, marked `prompt_unknown` in the prompt's metadata.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memgrid.core.errors import InputError
from memgrid.core.generation.settings import MAX_SEED
from memgrid.core.images import IMAGE_SUFFIXES, CheckedImage, read_image_file
from memgrid.core.prompt_files import checked_prompt
from memgrid.core.text_files import csv_table, is_unicode, parse_json, read_text
from memgrid.core.user_files import check_inside, is_inside

MANIFEST_SUFFIXES = (".jsonl", ".csv")
PROMPT_FILE_NAME = "prompt.txt"
META_FILE_NAME = "meta.json"
UNKNOWN_MODEL = "unknown"
UNKNOWN_PROMPT = ""  # a grid whose prompt the source does not give
PROMPT_UNKNOWN_METADATA = {"prompt_unknown": True}
GRID_KEY_COLUMNS = ("grid", "grid_id")  # a manifest's own grid key, when it has one
_SEED_NAME = re.compile(r"(?:seed[-_]?)?(\d{1,9})", re.IGNORECASE)  # the whole stem


@dataclass
class PlannedImage:
    seed: int
    path: Path
    origin: str  # where it was named: the file itself or a manifest line
    root: Path  # the import source's folder: the file, links followed, must stay inside it


@dataclass
class PlannedGrid:
    """One grid to import: found cheaply; images are decoded only by `load_images`."""

    prompt: str
    origin: str  # where it was found, for provenance and messages
    images: list[PlannedImage] = field(default_factory=list)
    model: str = UNKNOWN_MODEL
    settings: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    key: str = ""  # its identity among grids of one prompt: the folder or manifest grid key

    @property
    def prompt_known(self) -> bool:
        return self.prompt != UNKNOWN_PROMPT


@dataclass
class ImportPlan:
    grids: list[PlannedGrid]
    errors: list[InputError]


def plan_import(source: Path) -> ImportPlan:
    """Find the grids under `source` (a folder or a manifest file) without decoding images."""
    if not source.exists():
        raise InputError(source, "no such file or folder")
    if not source.is_dir():  # a manifest; its reader refuses anything but a regular file
        if source.suffix.lower() not in MANIFEST_SUFFIXES:
            raise InputError(source, "a manifest must be .jsonl or .csv")
        return _plan_manifest(source)
    if (source / PROMPT_FILE_NAME).exists() or _seed_images(source):
        folders = [source]
    else:
        folders = sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise InputError(source, "no grid folders (each with images named by seed) found")
    plan = ImportPlan(grids=[], errors=[])
    for folder in folders:
        try:
            plan.grids.append(_plan_folder(folder, source))
        except InputError as error:
            plan.errors.append(error)
        except OSError as error:  # an unreadable grid folder: the others still import
            problem = error.strerror or str(error)
            plan.errors.append(InputError(folder, f"cannot read this folder ({problem})"))
    return plan


def load_images(grid: PlannedGrid) -> list[tuple[int, CheckedImage]]:
    """Read and fully decode every image of a grid; the first bad one raises InputError."""
    return [(image.seed, read_image_file(image.path, inside=image.root)) for image in grid.images]


def _seed_images(folder: Path) -> bool:
    """True when the folder itself holds images named by seed (a grid, not a folder of grids)."""
    return any(
        path.suffix.lower() in IMAGE_SUFFIXES and _SEED_NAME.fullmatch(path.stem)
        for path in folder.iterdir()
        if path.is_file()
    )


def _plan_folder(folder: Path, source_root: Path) -> PlannedGrid:
    # Every file read from here on is checked to stay inside `source_root` (links followed):
    # a prompt.txt or meta.json link could otherwise pull any readable file into the project.
    _require_unicode_name(folder)
    prompt_path = folder / PROMPT_FILE_NAME
    # The folder's name is the grid's key: importing it again (from wherever) finds it.
    grid = PlannedGrid(prompt=UNKNOWN_PROMPT, origin=str(folder), key=folder.name)
    if os.path.lexists(prompt_path):  # a broken link is read, and named as one
        grid.prompt = checked_prompt(read_text(prompt_path, inside=source_root), prompt_path)
        if not grid.prompt:
            raise InputError(prompt_path, "prompt is empty (leave the file out if it is unknown)")
    else:
        grid.metadata = dict(PROMPT_UNKNOWN_METADATA)
    meta_path = folder / META_FILE_NAME
    if os.path.lexists(meta_path):
        _apply_meta(grid, meta_path, source_root)
    seen: dict[int, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith("."):
            continue
        match = _SEED_NAME.fullmatch(path.stem)
        if match is None:
            raise InputError(path, "image name is not a seed number (expected e.g. 0003.png)")
        check_inside(path, source_root)
        _require_unicode_name(path)
        seed = int(match.group(1))
        if seed in seen:
            raise InputError(path, f"seed {seed} appears twice (also {seen[seed].name})")
        seen[seed] = path
        grid.images.append(PlannedImage(seed=seed, path=path, origin=str(path), root=source_root))
    if not grid.images:
        raise InputError(folder, "no images named by seed in this grid folder")
    return grid


def _require_unicode_name(path: Path) -> None:
    """A name the store can keep: Python hands bytes that are not UTF-8 over as lone
    surrogates, which SQLite refuses."""
    if not is_unicode(path.name):
        raise InputError(path, "name is not UTF-8 (rename it)")


def _apply_meta(grid: PlannedGrid, meta_path: Path, source_root: Path) -> None:
    meta = parse_json(read_text(meta_path, inside=source_root), meta_path)
    if not isinstance(meta, dict):
        raise InputError(meta_path, "must be a JSON object")
    model = meta.get("model", UNKNOWN_MODEL)
    settings = meta.get("settings", {})
    if not isinstance(model, str) or not isinstance(settings, dict):
        raise InputError(meta_path, '"model" must be a string and "settings" an object')
    grid.model, grid.settings = model or UNKNOWN_MODEL, settings
    grid.metadata |= {k: v for k, v in meta.items() if k not in ("model", "settings")}


def manifest_rows(
    manifest: Path, *, bad_lines: list[InputError] | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each row of a .jsonl or .csv manifest with its location. A JSONL line that is not a
    JSON object ends the reading, unless `bad_lines` is given (rows that stand alone, as
    references do): it is then added there and the next line read."""
    text = read_text(manifest)
    if manifest.suffix.lower() == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = parse_json(line, manifest, f"line {number}")
                if not isinstance(row, dict):
                    raise InputError(manifest, "each line must be a JSON object", f"line {number}")
            except InputError as error:
                if bad_lines is None:
                    raise
                bad_lines.append(error)
                continue
            yield f"line {number}", row
        return
    _, rows = csv_table(manifest, text)
    for location, row in rows:
        yield location, {k: v for k, v in row.items() if k is not None}


def _manifest_seed(value: Any, manifest: Path, location: str) -> int:
    try:
        seed = int(str(value if value is not None else "").strip())
    except ValueError:
        seed = -1
    if not 0 <= seed <= MAX_SEED:
        shown = str(value)[:40] + ("…" if len(str(value)) > 40 else "")
        raise InputError(manifest, f'"seed" is not an integer in 0..2^63-1: {shown!r}', location)
    return seed


def _require_text(row: dict[str, Any], column: str, manifest: Path, location: str) -> None:
    """A manifest's text columns hold text (a grid key may be a number): a list or object
    would otherwise be stored as its Python repr."""
    value = row.get(column)
    if value is None or isinstance(value, str):
        return
    if column in GRID_KEY_COLUMNS and isinstance(value, int) and not isinstance(value, bool):
        return
    kind = {bool: "true/false", int: "a number", float: "a number", list: "a list"}.get(
        type(value), "an object"
    )
    raise InputError(manifest, f'"{column}" must be text, not {kind}', location)


def _plan_manifest(manifest: Path) -> ImportPlan:
    root = manifest.parent
    grids: dict[tuple[str, str], PlannedGrid] = {}
    errors: list[InputError] = []
    bad_keys: set[tuple[str, str]] = set()
    rows = list(manifest_rows(manifest))
    if rows and not any(row.get("path") for _, row in rows):
        # One line for the file, not one per row: a list of grids, not of images.
        raise InputError(
            manifest,
            'no row names an image ("path"): a grid manifest lists one seed image a line '
            "(prompt, seed, path); to import a folder of grid folders, give the folder",
        )
    for location, row in rows:
        prompt = str(row.get("prompt") or "").strip()
        model = str(row.get("model") or UNKNOWN_MODEL)
        grid_key = next((str(row[c]).strip() for c in GRID_KEY_COLUMNS if row.get(c)), "")
        key = (grid_key or prompt, model)
        try:
            for column in ("prompt", "model", "path", *GRID_KEY_COLUMNS):
                _require_text(row, column, manifest, location)
            if not prompt and not grid_key:
                raise InputError(
                    manifest, 'row has no "prompt" (give a "grid" key if it is unknown)', location
                )
            checked_prompt(prompt, manifest, location)
            seed = _manifest_seed(row.get("seed"), manifest, location)
            raw_path = str(row.get("path") or "").strip()
            if not raw_path:
                raise InputError(manifest, 'row has no "path"', location)
            if "\x00" in raw_path:
                raise InputError(manifest, '"path" holds a NUL character', location)
            path = Path(raw_path)
            path = path if path.is_absolute() else root / path
            if not is_inside(path, root):
                raise InputError(
                    manifest, f"path {raw_path} is outside the manifest's folder {root}", location
                )
        except InputError as error:
            # A grid with a bad row is not imported at all: never a grid with holes.
            errors.append(error)
            bad_keys.add(key)
            continue
        grid = grids.get(key)
        if grid is None:
            origin = f"{manifest.name}#{grid_key}" if grid_key else manifest.name
            grid = grids[key] = PlannedGrid(
                prompt=prompt,
                origin=f"{manifest}",
                model=model,
                key=origin,
                metadata={} if prompt else dict(PROMPT_UNKNOWN_METADATA),
            )
        elif grid.prompt != prompt:
            errors.append(InputError(manifest, f"grid {grid_key!r} has two prompts", location))
            bad_keys.add(key)
            continue
        if any(image.seed == seed for image in grid.images):
            errors.append(InputError(manifest, f"seed {seed} of this grid appears twice", location))
            bad_keys.add(key)
            continue
        grid.images.append(
            PlannedImage(seed=seed, path=path, origin=f"{manifest}:{location}", root=root)
        )
    good = [grid for key, grid in grids.items() if key not in bad_keys]
    return ImportPlan(grids=good, errors=errors)
