"""Reading grids made elsewhere: a folder per prompt, or a manifest of prompt, seed, path."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memgrid.core.errors import InputError
from memgrid.core.images import IMAGE_SUFFIXES, CheckedImage, read_image_file
from memgrid.core.prompt_files import clean_prompt
from memgrid.core.text_files import read_text
from memgrid.core.user_files import check_inside, is_inside

MANIFEST_SUFFIXES = (".jsonl", ".csv")
PROMPT_FILE_NAME = "prompt.txt"
META_FILE_NAME = "meta.json"
UNKNOWN_MODEL = "unknown"
_SEED_NAME = re.compile(r"^(?:seed[-_]?)?(\d{1,9})$", re.IGNORECASE)


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
    origin: str
    images: list[PlannedImage] = field(default_factory=list)
    model: str = UNKNOWN_MODEL
    settings: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


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
    if (source / PROMPT_FILE_NAME).exists():
        folders = [source]
    else:
        folders = sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise InputError(source, f"no grid folders (each with a {PROMPT_FILE_NAME}) found")
    plan = ImportPlan(grids=[], errors=[])
    for folder in folders:
        try:
            plan.grids.append(_plan_folder(folder, source))
        except InputError as error:
            plan.errors.append(error)
    return plan


def load_images(grid: PlannedGrid) -> list[tuple[int, CheckedImage]]:
    """Read and fully decode every image of a grid; the first bad one raises InputError."""
    return [(image.seed, read_image_file(image.path, inside=image.root)) for image in grid.images]


def _plan_folder(folder: Path, source_root: Path) -> PlannedGrid:
    # Every file read from here on is checked to stay inside `source_root` (links followed):
    # a prompt.txt or meta.json link could otherwise pull any readable file into the project.
    prompt_path = folder / PROMPT_FILE_NAME
    if not os.path.lexists(prompt_path):  # a broken link is read, and named as one
        raise InputError(folder, f"no {PROMPT_FILE_NAME} in this grid folder")
    prompt = clean_prompt(read_text(prompt_path, inside=source_root))
    if not prompt:
        raise InputError(prompt_path, "prompt is empty")
    grid = PlannedGrid(prompt=prompt, origin=str(folder))
    meta_path = folder / META_FILE_NAME
    if os.path.lexists(meta_path):
        _apply_meta(grid, meta_path, source_root)
    seen: dict[int, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith("."):
            continue
        match = _SEED_NAME.match(path.stem)
        if match is None:
            raise InputError(path, "image name is not a seed number (expected e.g. 0003.png)")
        check_inside(path, source_root)
        seed = int(match.group(1))
        if seed in seen:
            raise InputError(path, f"seed {seed} appears twice (also {seen[seed].name})")
        seen[seed] = path
        grid.images.append(PlannedImage(seed=seed, path=path, origin=str(path), root=source_root))
    if not grid.images:
        raise InputError(folder, "no images named by seed in this grid folder")
    return grid


def _apply_meta(grid: PlannedGrid, meta_path: Path, source_root: Path) -> None:
    try:
        meta = json.loads(read_text(meta_path, inside=source_root))
    except json.JSONDecodeError as error:
        raise InputError(meta_path, f"invalid JSON ({error.msg})", f"line {error.lineno}") from None
    if not isinstance(meta, dict):
        raise InputError(meta_path, "must be a JSON object")
    model = meta.get("model", UNKNOWN_MODEL)
    settings = meta.get("settings", {})
    if not isinstance(model, str) or not isinstance(settings, dict):
        raise InputError(meta_path, '"model" must be a string and "settings" an object')
    grid.model, grid.settings = model or UNKNOWN_MODEL, settings
    grid.metadata = {k: v for k, v in meta.items() if k not in ("model", "settings")}


def _manifest_rows(manifest: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    text = read_text(manifest)
    if manifest.suffix.lower() == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(
                    manifest, f"invalid JSON ({error.msg})", f"line {number}"
                ) from None
            if not isinstance(row, dict):
                raise InputError(manifest, "each line must be a JSON object", f"line {number}")
            yield f"line {number}", row
        return
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for row in reader:
            yield f"line {reader.line_num}", {k: v for k, v in row.items() if k is not None}
    except csv.Error as error:
        raise InputError(manifest, f"malformed CSV ({error})") from None


def _plan_manifest(manifest: Path) -> ImportPlan:
    root = manifest.parent
    grids: dict[tuple[str, str], PlannedGrid] = {}
    errors: list[InputError] = []
    bad_keys: set[tuple[str, str]] = set()
    for location, row in _manifest_rows(manifest):
        prompt = clean_prompt(str(row.get("prompt") or ""))
        model = str(row.get("model") or UNKNOWN_MODEL)
        try:
            if not prompt:
                raise InputError(manifest, 'row has no "prompt"', location)
            try:
                seed = int(str(row.get("seed", "")).strip())
            except ValueError:
                raise InputError(
                    manifest, f'"seed" is not an integer: {row.get("seed")!r}', location
                ) from None
            raw_path = str(row.get("path") or "").strip()
            if not raw_path:
                raise InputError(manifest, 'row has no "path"', location)
            path = Path(raw_path)
            path = path if path.is_absolute() else root / path
            if not is_inside(path, root):
                raise InputError(
                    manifest, f"path {raw_path} is outside the manifest's folder {root}", location
                )
        except InputError as error:
            # A grid with a bad row is not imported at all: never a grid with holes.
            errors.append(error)
            bad_keys.add((prompt, model))
            continue
        key = (prompt, model)
        grid = grids.setdefault(key, PlannedGrid(prompt=prompt, origin=f"{manifest}", model=model))
        if any(image.seed == seed for image in grid.images):
            errors.append(
                InputError(manifest, f"seed {seed} of this prompt appears twice", location)
            )
            bad_keys.add(key)
            continue
        grid.images.append(
            PlannedImage(seed=seed, path=path, origin=f"{manifest}:{location}", root=root)
        )
    good = [grid for key, grid in grids.items() if key not in bad_keys]
    return ImportPlan(grids=good, errors=errors)
