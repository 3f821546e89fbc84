"""Reading reference sources: every layout img2dataset writes, manifests, and hostile input."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from memgrid.core.errors import InputError
from memgrid.core.references.sources import ReferenceItem, iter_references
from tests.references.helpers import training_image, write_files_layout


def split(source: Path) -> tuple[list[ReferenceItem], list[InputError]]:
    found = list(iter_references(source))
    return (
        [f for f in found if isinstance(f, ReferenceItem)],
        [f for f in found if isinstance(f, InputError)],
    )


def png_bytes(key: str) -> bytes:
    buffer = io.BytesIO()
    training_image(key).save(buffer, format="PNG")
    return buffer.getvalue()


def add_member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def test_files_layout_reads_sidecars_and_skips_stats(tmp_path: Path) -> None:
    source = write_files_layout(
        tmp_path / "out", {"L1": ("a red barn", "barn"), "L2": ("a pier", "pier")}
    )
    items, errors = split(source)
    assert errors == []
    assert [(i.key, i.caption) for i in items] == [("L1", "a red barn"), ("L2", "a pier")]
    assert items[0].url == "http://x/000000000"
    assert items[0].load().width == 256


def test_manifest_rows_and_a_path_outside_are_one_error_each(tmp_path: Path) -> None:
    (tmp_path / "refs").mkdir()
    training_image("barn").save(tmp_path / "refs" / "barn.png")
    training_image("pier").save(tmp_path / "outside.png")
    manifest = tmp_path / "refs" / "list.jsonl"
    rows = [
        {"path": "barn.png", "key": "K1", "caption": "a barn", "url": "http://x/1"},
        {"path": "../outside.png", "key": "K2"},
        {"key": "K3"},
    ]
    manifest.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    items, errors = split(manifest)
    assert [(i.key, i.url, i.caption) for i in items] == [("K1", "http://x/1", "a barn")]
    assert [str(e) for e in errors] == [
        f"{manifest}:line 2: path ../outside.png: points outside the reference source "
        f"{tmp_path / 'refs'}",
        f'{manifest}:line 3: row has no "path"',
    ]


def test_a_manifest_line_that_is_no_json_object_is_skipped_like_any_bad_row(
    tmp_path: Path,
) -> None:
    """References stand alone: one broken line must not cost the good rows after it."""
    training_image("barn").save(tmp_path / "barn.png")
    training_image("pier").save(tmp_path / "pier.png")
    manifest = tmp_path / "list.jsonl"
    manifest.write_text(
        '{"path": "barn.png", "key": "K1"}\n"just a string"\n{not json\n'
        '{"path": "pier.png", "key": "K2"}\n',
        encoding="utf-8",
    )
    items, errors = split(manifest)
    assert [i.key for i in items] == ["K1", "K2"]
    assert [str(e).split(": ", 1)[0] for e in errors] == [
        f"{manifest}:line 2",
        f"{manifest}:line 3",
    ]
    assert "each line must be a JSON object" in str(errors[0])


def test_csv_manifest(tmp_path: Path) -> None:
    training_image("barn").save(tmp_path / "barn.png")
    manifest = tmp_path / "list.csv"
    manifest.write_text("path,laion_key,caption\nbarn.png,99,a barn\n", encoding="utf-8")
    items, errors = split(manifest)
    assert errors == [] and [(i.key, i.caption) for i in items] == [("99", "a barn")]


def test_webdataset_shard_groups_samples_and_refuses_links(tmp_path: Path) -> None:
    shard = tmp_path / "00000.tar"
    with tarfile.open(shard, "w") as archive:
        add_member(archive, "000000000.jpg", png_bytes("barn"))
        add_member(archive, "000000000.txt", b"a barn")
        meta = {"key": "000000000", "laion_key": "L9", "url": "http://x/9", "caption": "a barn"}
        add_member(archive, "000000000.json", json.dumps(meta).encode())
        add_member(archive, "000000001.json", b'{"status": "failed_to_download"}')
        link = tarfile.TarInfo("000000002.jpg")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        archive.addfile(link)
    items, errors = split(shard)
    assert [(i.key, i.url, i.caption) for i in items] == [("L9", "http://x/9", "a barn")]
    assert items[0].load().height == 256
    assert [str(e) for e in errors] == [
        f"{shard}:000000002.jpg: a link or device, not a regular file"
    ]


def test_parquet_with_image_bytes_and_metadata_only_parquet(tmp_path: Path) -> None:
    table = pa.table(
        {
            "key": ["000000000", "000000001"],
            "laion_key": ["P1", "P2"],
            "caption": ["a barn", "gone"],
            "url": ["http://x/a", "http://x/b"],
            "jpg": [png_bytes("barn"), None],
        }
    )
    pq.write_table(table, tmp_path / "00000.parquet")
    (tmp_path / "meta").mkdir()
    pq.write_table(table.drop(["jpg"]), tmp_path / "meta" / "00000.parquet")
    items, errors = split(tmp_path)
    assert errors == [] and [(i.key, i.caption) for i in items] == [("P1", "a barn")]


def test_hostile_folder_entries_are_refused_by_name(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    training_image("barn").save(source / "good.png")
    (source / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    training_image("pier").save(tmp_path / "secret.png")
    (source / "escape.png").symlink_to(tmp_path / "secret.png")
    os.mkfifo(source / "pipe.png")
    (source / "linked-folder").symlink_to(tmp_path)
    items, errors = split(source)
    messages = sorted(str(e) for e in errors)
    assert [Path(i.origin).name for i in items] == ["broken.png", "good.png"]
    with pytest.raises(InputError, match=r"broken\.png: not a readable image"):
        items[0].load()
    assert messages == sorted(
        [
            f"{source / 'escape.png'}: points outside the reference source {source}",
            f"{source / 'pipe.png'}: not a regular file",
            f"{source / 'linked-folder'}: a link to a folder; not followed",
        ]
    )


def test_unknown_source_kind_and_missing_source(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        list(iter_references(tmp_path / "nothing"))
    other = tmp_path / "notes.md"
    other.write_text("hi", encoding="utf-8")
    with pytest.raises(InputError, match="expected a folder"):
        list(iter_references(other))
