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
