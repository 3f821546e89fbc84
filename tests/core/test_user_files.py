"""Opening a user's file inside a source: links out are refused, even ones made mid-open."""

from __future__ import annotations

from pathlib import Path

import pytest

from memgrid.core import user_files
from memgrid.core.errors import InputError
from memgrid.core.user_files import open_user_file


def source_with_outside(tmp_path: Path) -> tuple[Path, Path]:
    source, outside = tmp_path / "source", tmp_path / "outside"
    (source / "grid").mkdir(parents=True)
    outside.mkdir()
    (source / "grid" / "prompt.txt").write_text("a prompt")
    (outside / "prompt.txt").write_text("SECRET from outside")
    return source, outside


def test_a_link_inside_the_source_is_followed(tmp_path: Path) -> None:
    source, _ = source_with_outside(tmp_path)
    (source / "alias").symlink_to(source / "grid")
    with open_user_file(source / "alias" / "prompt.txt", inside=source) as handle:
        assert handle.read() == b"a prompt"


def test_a_folder_swapped_for_a_link_between_check_and_open_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another account on a shared server replaces a folder of the source with a link to
    elsewhere just after memgrid resolved and checked the path: the open must not follow it."""
    source, outside = source_with_outside(tmp_path)
    checked = user_files.check_inside

    def check_then_swap(path: Path, root: Path) -> None:
        checked(path, root)
        (source / "grid").rename(source / "moved")
        (source / "grid").symlink_to(outside, target_is_directory=True)

    monkeypatch.setattr(user_files, "check_inside", check_then_swap)
    with (
        pytest.raises(InputError, match="replaced by a link") as raised,
        open_user_file(source / "grid" / "prompt.txt", inside=source) as handle,
    ):
        handle.read()
    assert "SECRET" not in str(raised.value)


def test_the_file_itself_swapped_for_a_link_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, outside = source_with_outside(tmp_path)
    checked = user_files.check_inside

    def check_then_swap(path: Path, root: Path) -> None:
        checked(path, root)
        (source / "grid" / "prompt.txt").unlink()
        (source / "grid" / "prompt.txt").symlink_to(outside / "prompt.txt")

    monkeypatch.setattr(user_files, "check_inside", check_then_swap)
    with (
        pytest.raises(InputError, match="replaced by a link"),
        open_user_file(source / "grid" / "prompt.txt", inside=source) as handle,
    ):
        handle.read()


def test_a_file_used_as_a_folder_is_a_plain_read_error(tmp_path: Path) -> None:
    source, _ = source_with_outside(tmp_path)
    with (
        pytest.raises(InputError, match="cannot read") as raised,
        open_user_file(source / "grid" / "prompt.txt" / "more.txt", inside=source),
    ):
        pass
    assert "replaced" not in str(raised.value)


def test_a_folder_that_is_searchable_but_not_readable_still_opens(tmp_path: Path) -> None:
    """A shared source may be mode 0711 above the files: a path lookup needs no more."""
    source, _ = source_with_outside(tmp_path)
    (source / "grid").chmod(0o311)
    try:
        with open_user_file(source / "grid" / "prompt.txt", inside=source) as handle:
            assert handle.read() == b"a prompt"
    finally:
        (source / "grid").chmod(0o755)


def test_a_named_output_file_is_written_new_and_replaced_whole_only_when_asked(
    tmp_path: Path,
) -> None:
    report = tmp_path / "report.html"
    user_files.write_user_file(report, b"first")
    with pytest.raises(InputError, match="already exists; pass --overwrite to replace it"):
        user_files.write_user_file(report, b"second")
    user_files.write_user_file(report, b"second", overwrite=True)
    assert report.read_bytes() == b"second"
    assert [path.name for path in tmp_path.iterdir()] == ["report.html"]


def test_a_write_that_fails_leaves_the_earlier_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = tmp_path / "report.html"
    report.write_bytes(b"the earlier report")

    def disk_full(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("memgrid.core.atomic_files.os.fsync", disk_full)
    with pytest.raises(InputError, match=r"cannot write \(No space left on device\)"):
        user_files.write_user_file(report, b"a new report" * 1000, overwrite=True)
    assert report.read_bytes() == b"the earlier report"
    assert [path.name for path in tmp_path.iterdir()] == ["report.html"]


def test_a_link_to_a_file_is_refused_and_the_file_left_alone(tmp_path: Path) -> None:
    """In a shared folder, a link planted at the output's name would redirect the write."""
    target = tmp_path / "someone-elses.txt"
    target.write_bytes(b"theirs")
    link = tmp_path / "report.html"
    link.symlink_to(target)
    with pytest.raises(InputError, match="is a link; name the file itself"):
        user_files.write_user_file(link, b"new", overwrite=True)
    dangling = tmp_path / "dangling.html"
    dangling.symlink_to(tmp_path / "nothing-yet")
    with pytest.raises(InputError, match="is a link"):
        user_files.write_user_file(dangling, b"new")
    assert target.read_bytes() == b"theirs" and not (tmp_path / "nothing-yet").exists()


def test_a_projects_own_files_are_never_an_output(tmp_path: Path) -> None:
    project = tmp_path / "project"
    elsewhere = tmp_path / "image-store"  # images/ may be a link to another disk
    elsewhere.mkdir()
    (project / "thumbs").mkdir(parents=True)
    (project / "images").symlink_to(elsewhere)
    own = [project / "images", project / "thumbs", project / "memgrid.db"]
    (project / "memgrid.db").write_bytes(b"SQLite format 3\x00")
    with pytest.raises(InputError, match="is part of the project"):
        user_files.write_user_file(project / "memgrid.db", b"<html>", overwrite=True, protected=own)
    assert (project / "memgrid.db").read_bytes() == b"SQLite format 3\x00"
    for inside in (project / "images" / "r.html", elsewhere / "r.html", project / "thumbs" / "t"):
        with pytest.raises(InputError, match="is part of the project"):
            user_files.write_user_file(inside, b"", protected=own)
    assert list(elsewhere.iterdir()) == []
    for beside in ("report.html", "memgrid.db.html"):
        user_files.write_user_file(project / beside, b"<html>", protected=own)
        assert (project / beside).read_bytes() == b"<html>"


def test_a_standard_stream_is_written_through_wherever_it_points(tmp_path: Path) -> None:
    """`--html /dev/stdout > out.html`: the shell's file, through the stream's link."""
    import subprocess
    import sys

    out = tmp_path / "out.html"
    code = (
        "from pathlib import Path; from memgrid.core.user_files import write_user_file; "
        "write_user_file(Path('/dev/stdout'), b'<html>')"
    )
    with open(out, "wb") as stdout:
        subprocess.run([sys.executable, "-c", code], stdout=stdout, check=True)
    assert out.read_bytes() == b"<html>"


def test_a_pipe_is_written_straight_through(tmp_path: Path) -> None:
    import os
    import threading

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()))
    reader.start()
    user_files.write_user_file(pipe, b"to whoever reads")
    reader.join(timeout=10)
    assert received == [b"to whoever reads"]
    assert pipe.is_fifo()  # not replaced by a regular file


def test_a_folder_or_a_missing_folder_is_refused_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a folder; name a file"):
        user_files.write_user_file(tmp_path, b"x")
    missing = tmp_path / "no-such-folder" / "report.html"
    with pytest.raises(InputError, match="does not exist; create it first") as raised:
        user_files.write_user_file(missing, b"x")
    assert str(missing) in str(raised.value)
