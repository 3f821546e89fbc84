"""Reading reference images: a folder, a JSONL/CSV manifest, or img2dataset's output.

img2dataset (the tool researchers fetch LAION subsets with) writes three layouts, all read
here: `files` (NNNNN/KEY.jpg with KEY.json and KEY.txt beside it), `webdataset` (NNNNN.tar
holding the same three per sample) and `parquet` (NNNNN.parquet with the image bytes in a
`jpg` column). Every layout also leaves metadata-only parquet and `_stats.json` files,
which hold no images and are passed over. A reference's key is `laion_key` when the
source carries one (img2dataset keeps it with `--save_additional_columns`), else `key`.

Hostile input is refused item by item, each one line naming the file (and member or row):
files outside the source (links out of it), anything not a regular file, tar members that
are links or devices, images over the size cap or that do not decode. Items are yielded
lazily, so a tar of many thousand samples is never held in memory whole.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from memgrid.core.errors import InputError
from memgrid.core.extras import require_extra
from memgrid.core.images import IMAGE_SUFFIXES, CheckedImage, check_image_bytes, read_image_file
from memgrid.core.importing import manifest_rows
from memgrid.core.prompt_files import checked_prompt
from memgrid.core.text_files import parse_json, read_text
from memgrid.core.user_files import is_inside

MANIFEST_SUFFIXES = (".jsonl", ".csv")
KEY_FIELDS = ("laion_key", "key")
URL_FIELDS = ("url", "URL")
CAPTION_FIELDS = ("caption", "TEXT", "text")
PARQUET_IMAGE_COLUMNS = ("jpg", "png", "webp", "image")
MAX_IMAGE_BYTES = 64 * 1024 * 1024
MAX_FIELD_CHARS = 4_000  # a key or url; captions follow the prompt rule (10,000)


@dataclass(frozen=True)
class ReferenceItem:
    """One reference image found in a source; `load` reads and fully decodes it."""

    origin: str  # the file (and tar member or parquet row) it came from, for messages
    key: str
    url: str
    caption: str
    load: Callable[[], CheckedImage]


Found = ReferenceItem | InputError


def iter_references(source: Path) -> Iterator[Found]:
    """Every reference under `source` (an item each), and every bad one (an error each)."""
    if not source.exists():
        raise InputError(source, "no such file or folder")
    if source.is_dir():
        yield from _folder(source)
        return
    suffix = source.suffix.lower()
    if suffix in MANIFEST_SUFFIXES:
        yield from _manifest(source)
    elif suffix == ".tar":
        yield from _tar(source)
    elif suffix == ".parquet":
        yield from _parquet(source)
    else:
        raise InputError(
            source, "expected a folder, a .jsonl/.csv manifest, a .tar shard or a .parquet file"
        )


def describe(fields: dict[str, Any], source: str, location: str | None = None) -> dict[str, str]:
    """key, url and caption from a record's fields, checked (a NUL or absurd length refused)."""
    found = {}
    for name, candidates in (("key", KEY_FIELDS), ("url", URL_FIELDS)):
        value = next((fields[c] for c in candidates if fields.get(c) not in (None, "")), "")
        text = str(value).strip()
        if "\x00" in text or len(text) > MAX_FIELD_CHARS:
            raise InputError(
                source, f"{name} has a NUL or is over {MAX_FIELD_CHARS} characters", location
            )
        found[name] = text
    caption = next((fields[c] for c in CAPTION_FIELDS if fields.get(c) not in (None, "")), "")
    found["caption"] = checked_prompt(str(caption), source, location)
    return found


# ---------------------------------------------------------------- folders (files layout)


def _folder(root: Path) -> Iterator[Found]:
    for folder, folders, files in os.walk(root, followlinks=False):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in list(folders):
            if (Path(folder) / name).is_symlink():
                yield InputError(Path(folder) / name, "a link to a folder; not followed")
                folders.remove(name)
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            suffix = path.suffix.lower()
            if suffix not in (*IMAGE_SUFFIXES, ".tar", ".parquet"):
                continue  # sidecars (.json, .txt), img2dataset's _stats.json, anything else
            try:
                _check_regular_inside(path, root)
            except InputError as error:
                yield error
                continue
            if suffix == ".tar":
                yield from _tar(path)
            elif suffix == ".parquet":
                yield from _parquet(path)
            else:
                yield _file_item(path, root)


def _check_regular_inside(path: Path, root: Path) -> None:
    if not is_inside(path, root):
        raise InputError(path, f"points outside the reference source {root}")
    try:
        status = path.stat()
    except OSError as error:
        raise InputError(path, f"cannot read ({error.strerror or error})") from None
    if not stat.S_ISREG(status.st_mode):
        raise InputError(path, "not a regular file")
    if status.st_size > MAX_IMAGE_BYTES:
        raise InputError(path, f"larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MiB")


def _file_item(path: Path, root: Path) -> Found:
    """An image file with img2dataset's sidecars: KEY.json (url, caption, key), KEY.txt."""
    fields: dict[str, Any] = {}
    sidecar = path.with_suffix(".json")
    caption_file = path.with_suffix(".txt")
    try:
        if sidecar.is_file():
            meta = parse_json(read_text(sidecar, inside=root), sidecar)
            if not isinstance(meta, dict):
                raise InputError(sidecar, "must be a JSON object")
            fields.update(meta)
        if caption_file.is_file() and not fields.get("caption"):
            fields["caption"] = read_text(caption_file, inside=root)
        described = describe(fields, str(sidecar if sidecar.is_file() else path))
    except InputError as error:
        return error
    return ReferenceItem(
        origin=str(path), load=lambda: read_image_file(path, inside=root), **described
    )


# ---------------------------------------------------------------- manifests


def _manifest(manifest: Path) -> Iterator[Found]:
    root = manifest.parent
    bad_lines: list[InputError] = []  # each reference stands alone: a bad line is skipped
    for location, row in manifest_rows(manifest, bad_lines=bad_lines):
        yield from bad_lines
        bad_lines.clear()
        try:
            raw_path = str(row.get("path") or "").strip()
            if not raw_path:
                raise InputError(manifest, 'row has no "path"', location)
            path = Path(raw_path) if Path(raw_path).is_absolute() else root / raw_path
            try:
                _check_regular_inside(path, root)
            except InputError as error:
                raise InputError(manifest, f"path {raw_path}: {error.problem}", location) from None
            described = describe(row, str(manifest), location)
        except InputError as error:
            yield error
            continue
        yield ReferenceItem(
            origin=f"{manifest}:{location}",
            load=lambda path=path: read_image_file(path, inside=root),
            **described,
        )
    yield from bad_lines


# ---------------------------------------------------------------- img2dataset shards


def _tar(shard: Path) -> Iterator[Found]:
    """A webdataset shard: samples grouped by key (the member name up to its first dot)."""
    try:
        with tarfile.open(shard, mode="r:*") as archive:
            yield from _tar_samples(archive, shard)
    except (tarfile.TarError, OSError, EOFError) as error:
        yield InputError(shard, f"not a readable tar ({error})")


def _tar_samples(archive: tarfile.TarFile, shard: Path) -> Iterator[Found]:
    samples: dict[str, dict[str, tarfile.TarInfo]] = {}
    for member in archive.getmembers():
        name = PurePosixPath(member.name)
        if member.isdir() or name.name.startswith("."):
            continue
        if not member.isfile():
            yield InputError(shard, "a link or device, not a regular file", member.name)
            continue
        key, _, extension = name.name.partition(".")
        samples.setdefault(f"{name.parent}/{key}", {})[f".{extension.lower()}"] = member
    for sample_key, parts in samples.items():
        yield from _tar_sample(archive, shard, sample_key, parts)


def _tar_sample(
    archive: tarfile.TarFile, shard: Path, sample_key: str, parts: dict[str, tarfile.TarInfo]
) -> Iterator[Found]:
    image_member = next((parts[s] for s in IMAGE_SUFFIXES if s in parts), None)
    if image_member is None:
        return  # a sample that failed to download keeps only its .json
    location = image_member.name
    try:
        fields: dict[str, Any] = {}
        if ".json" in parts:
            meta = parse_json(
                _member_text(archive, shard, parts[".json"]), shard, parts[".json"].name
            )
            if not isinstance(meta, dict):
                raise InputError(shard, "must be a JSON object", parts[".json"].name)
            fields.update(meta)
        if ".txt" in parts and not fields.get("caption"):
            fields["caption"] = _member_text(archive, shard, parts[".txt"])
        described = describe(fields, str(shard), location)
        data = _member_bytes(archive, shard, image_member)
    except InputError as error:
        yield error
        return
    origin = f"{shard}:{location}"
    yield ReferenceItem(origin=origin, load=lambda: check_image_bytes(data, origin), **described)


def _member_bytes(archive: tarfile.TarFile, shard: Path, member: tarfile.TarInfo) -> bytes:
    if member.size > MAX_IMAGE_BYTES:
        raise InputError(shard, f"larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MiB", member.name)
    try:
        handle = archive.extractfile(member)
        if handle is None:
            raise InputError(shard, "not a regular file", member.name)
        return handle.read()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise InputError(shard, f"cannot read ({error})", member.name) from None


def _member_text(archive: tarfile.TarFile, shard: Path, member: tarfile.TarInfo) -> str:
    try:
        return _member_bytes(archive, shard, member).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(shard, "not UTF-8 text", member.name) from None


def _parquet(path: Path) -> Iterator[Found]:
    """img2dataset's parquet layout (image bytes in `jpg`); metadata-only files hold none."""
    require_extra("export", "parquet reference sources")
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError... by cause
        yield InputError(path, f"not a readable Parquet file ({error})")
        return
    columns = set(parquet.schema_arrow.names)
    image_column = next((c for c in PARQUET_IMAGE_COLUMNS if c in columns), None)
    if image_column is None:
        return
    row_number = 0
    for batch in parquet.iter_batches(batch_size=256):
        for row in batch.to_pylist():
            row_number += 1
            location = f"row {row_number}"
            data = row.get(image_column)
            if not data:
                continue  # a failed download: the row keeps its url, not an image
            try:
                if not isinstance(data, bytes) or len(data) > MAX_IMAGE_BYTES:
                    raise InputError(
                        path, f"{image_column} is not image bytes under the cap", location
                    )
                described = describe(row, str(path), location)
            except InputError as error:
                yield error
                continue
            origin = f"{path}:{location}"
            yield ReferenceItem(
                origin=origin,
                load=lambda data=data, origin=origin: check_image_bytes(data, origin),
                **described,
            )
