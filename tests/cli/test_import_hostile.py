"""`memgrid import` against a hostile source: links out of it, named pipes, huge images."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from memgrid.core.images import check_image_bytes, png_bytes
from memgrid.tui.services.merging import merge_projects
from memgrid.tui.services.project import create_project
from tests.cli.test_import import counts, invoke, make_folder_source, stored_files
from tests.hostile.hostile_files import SECRET, fifos_under, secret_file, within


@pytest.fixture
def project_dir(tmp_path: Path, runner: CliRunner) -> Path:
    target = tmp_path / "proj"
    assert invoke(runner, "init", str(target)).exit_code == 0
    return target


def assert_only_the_good_grid(project_dir: Path) -> None:
    assert counts(project_dir) == (1, 3)
    database = (project_dir / "memgrid.db").read_bytes()
    assert SECRET.strip() not in database


@pytest.mark.parametrize("name", ["prompt.txt", "meta.json"])
def test_a_link_out_of_the_source_is_refused_for_every_file_read(
    tmp_path: Path, runner: CliRunner, project_dir: Path, name: str
) -> None:
    source = make_folder_source(tmp_path / "src")
    secret = secret_file(tmp_path / "elsewhere")
    if name == "meta.json":
        secret.write_text(json.dumps({"model": "m", "token": SECRET.decode()}))
    link = source / "grid1" / name
    link.unlink(missing_ok=True)
    link.symlink_to(secret)
    result = invoke(runner, "import", str(source), "-p", str(project_dir))
    assert result.exit_code == 1
    assert f"grid1/{name}: points outside the import folder" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert_only_the_good_grid(project_dir)


def test_a_link_inside_the_source_is_followed(
    tmp_path: Path, runner: CliRunner, project_dir: Path
) -> None:
    source = make_folder_source(tmp_path / "src")
    shared = source / "shared-prompt.txt"
    shared.write_text("a prompt kept once")
    (source / "grid1" / "prompt.txt").unlink()
    (source / "grid1" / "prompt.txt").symlink_to(Path("..") / shared.name)
    result = invoke(runner, "import", str(source), "-p", str(project_dir))
    assert result.exit_code == 0, result.output
    assert counts(project_dir) == (2, 6)


@pytest.mark.parametrize("name", ["0001.png", "prompt.txt", "meta.json"])
def test_a_named_pipe_in_a_grid_folder_is_refused_at_once(
    tmp_path: Path, runner: CliRunner, project_dir: Path, name: str
) -> None:
    source = make_folder_source(tmp_path / "src")
    (source / "grid1" / name).unlink(missing_ok=True)
    os.mkfifo(source / "grid1" / name)
    pipes = fifos_under(source)
    result = within(
        30, lambda: invoke(runner, "import", str(source), "-p", str(project_dir)), pipes
    )
    assert result.exit_code == 1
    assert f"grid1/{name}: is a named pipe (FIFO), not a regular file" in result.stderr
    assert_only_the_good_grid(project_dir)
    with_files = stored_files(project_dir)
    assert len(with_files) == 3


def test_a_named_pipe_as_the_manifest_is_refused_at_once(
    tmp_path: Path, runner: CliRunner, project_dir: Path
) -> None:
    manifest = tmp_path / "src" / "m.jsonl"
    manifest.parent.mkdir()
    os.mkfifo(manifest)
    result = within(
        30, lambda: invoke(runner, "import", str(manifest), "-p", str(project_dir)), [manifest]
    )
    assert result.exit_code == 1
    assert "m.jsonl: is a named pipe (FIFO), not a regular file" in result.stderr


def test_a_shard_whose_database_points_out_of_it_merges_nothing_from_outside(
    tmp_path: Path,
) -> None:
    shard = tmp_path / "shard"
    with create_project(shard) as project:
        image = project.images.put(check_image_bytes(png_bytes(Image.new("RGB", (8, 8))), "x"), 0)
        project.store.grids.add("a prompt", [image], model="m")
    secret = secret_file(tmp_path / "elsewhere")
    connection = sqlite3.connect(shard / "memgrid.db")
    connection.execute("UPDATE images SET path = ?", (str(secret),))
    connection.commit()
    connection.close()
    report = merge_projects([shard], tmp_path / "merged")
    [problem] = report.errors  # that grid is named and left out
    assert "points outside the import folder" in problem and "not merged" in problem
    assert report.grids_added == 0
    merged = [p for p in (tmp_path / "merged" / "images").rglob("*") if p.is_file()]
    assert not any(SECRET in path.read_bytes() for path in merged)


@pytest.mark.parametrize(
    ("meta", "problem"),
    [
        ('{"model": "m", "aesthetic": NaN}', "NaN is not a JSON number"),
        ('{"model": "m", "score": -Infinity}', "-Infinity is not a JSON number"),
        ('{"model": "m\\ud800"}', "text 'm\\ud800' holds a lone surrogate escape: not Unicode"),
        ('{"x\\udc80": 1}', "text 'x\\udc80' holds a lone surrogate escape: not Unicode"),
        ('{"n": ' + "9" * 5000 + "}", "a number with too many digits"),
        ('{"model": "m", "extra": 1e999}', "1e999 is too large for a number"),
    ],
    ids=["NaN", "Infinity", "surrogate value", "surrogate key", "5000 digits", "1e999"],
)
def test_metadata_the_store_could_not_read_back_is_refused_by_its_file(
    tmp_path: Path, runner: CliRunner, project_dir: Path, meta: str, problem: str
) -> None:
    # NaN was stored, and SQLite's JSON functions then refused every `status` and `export`.
    source = make_folder_source(tmp_path / "src")
    (source / "grid0" / "meta.json").write_text(meta)
    result = invoke(runner, "import", str(source), "-p", str(project_dir))
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.endswith(f"grid0/meta.json: {problem}")
    assert_only_the_good_grid(project_dir)
    assert invoke(runner, "status", "-p", str(project_dir)).exit_code == 0


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({"prompt": ["a list"], "seed": 0, "path": "a.png"}, '"prompt" must be text, not a list'),
        (
            {"prompt": "p", "model": {"a": 1}, "seed": 0, "path": "a.png"},
            '"model" must be text, not an object',
        ),
        ({"prompt": "p", "seed": 0, "path": "a\u0000.png"}, '"path" holds a NUL character'),
    ],
    ids=["list prompt", "object model", "NUL in path"],
)
def test_a_manifest_row_of_the_wrong_kind_is_one_line(
    tmp_path: Path, runner: CliRunner, project_dir: Path, row: dict, problem: str
) -> None:
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text(json.dumps(row) + "\n")
    result = invoke(runner, "import", str(manifest), "-p", str(project_dir))
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line == f"memgrid: error: {manifest}:line 1: {problem}"


def test_a_grid_folder_named_in_bytes_that_are_not_utf8_is_skipped_and_the_rest_import(
    tmp_path: Path, runner: CliRunner, project_dir: Path
) -> None:
    source = make_folder_source(tmp_path / "src", grids=3)
    bad = os.fsencode(source / "grid1").replace(b"grid1", b"grid\xff")
    os.rename(os.fsencode(source / "grid1"), bad)
    result = invoke(runner, "import", str(source), "-p", str(project_dir))
    assert result.exit_code == 1
    assert "name is not UTF-8 (rename it)" in result.stderr
    assert counts(project_dir) == (2, 6)


def test_an_unreadable_grid_folder_is_skipped_and_the_rest_import(
    tmp_path: Path, runner: CliRunner, project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_folder_source(tmp_path / "src", grids=3)
    listing = Path.iterdir

    def refuse_grid1(folder: Path):  # chmod 000 is no obstacle to root, who runs CI here
        if folder.name == "grid1":
            raise PermissionError(13, "Permission denied", str(folder))
        return listing(folder)

    monkeypatch.setattr(Path, "iterdir", refuse_grid1)
    result = invoke(runner, "import", str(source), "-p", str(project_dir))
    assert result.exit_code == 1
    assert f"{source / 'grid1'}: cannot read this folder (Permission denied)" in result.stderr
    assert counts(project_dir) == (2, 6)


def test_a_seed_name_with_a_line_break_is_no_seed(
    tmp_path: Path, runner: CliRunner, project_dir: Path
) -> None:
    source = make_folder_source(tmp_path / "src", grids=1)
    (source / "grid0" / "0002.png").rename(source / "grid0" / "0002\n.png")
    result = invoke(runner, "import", str(source), "-p", str(project_dir))
    assert result.exit_code == 1
    assert "image name is not a seed number" in result.stderr


def test_a_png_whose_pixel_data_fails_its_checksum_is_refused(
    tmp_path: Path, runner: CliRunner, project_dir: Path
) -> None:
    # Pillow decodes it (it checks no IDAT checksum), so it was stored as good.
    source = make_folder_source(tmp_path / "src")
    seed = source / "grid0" / "0001.png"
    data = bytearray(seed.read_bytes())
    idat = data.index(b"IDAT")
    length = int.from_bytes(data[idat - 4 : idat], "big")
    data[idat + 4 + length] ^= 0xFF  # the first byte of IDAT's CRC
    seed.write_bytes(bytes(data))
    Image.open(seed).load()  # still decodes
    result = invoke(runner, "import", str(source), "-p", str(project_dir))
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.endswith(
        "grid0/0001.png: a PNG chunk's checksum does not match: the file is damaged"
    )
    assert_only_the_good_grid(project_dir)
