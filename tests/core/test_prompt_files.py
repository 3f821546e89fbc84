"""Prompt files: the three formats and their bad inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from memgrid.core.errors import InputError
from memgrid.core.prompt_files import read_prompt_file


def test_txt_one_prompt_a_line_skips_and_counts_empty_lines(tmp_path: Path) -> None:
    path = tmp_path / "p.txt"
    path.write_text("a cat\n\n  \na dog\na cat\n", encoding="utf-8")
    result = read_prompt_file(path)
    assert [p for p, _ in result.prompts] == ["a cat", "a dog"]
    assert result.empty_skipped == 2
    assert result.duplicates_in_file == 1


def test_csv_keeps_other_columns_as_metadata(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text('prompt,source\n"a cat, sitting",laion\n,empty\n', encoding="utf-8")
    result = read_prompt_file(path)
    assert result.prompts == [("a cat, sitting", {"source": "laion"})]
    assert result.empty_skipped == 1


def test_jsonl_keeps_other_keys_as_metadata(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a cat", "id": 7}\n\n{"prompt": "a dog"}\n', encoding="utf-8")
    result = read_prompt_file(path)
    assert result.prompts == [("a cat", {"id": 7}), ("a dog", {})]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("p.txt", b"fine\n\xff\xfe bad\n", "p.txt:line 2: not UTF-8 text (byte 0xff)"),
        ("p.jsonl", b'{"prompt": "ok"}\n{"prompt": \n', "p.jsonl:line 2: invalid JSON"),
        ("p.jsonl", b'{"text": "no prompt key"}\n', 'p.jsonl:line 1: no "prompt" string'),
        ("p.jsonl", b'["a list"]\n', "p.jsonl:line 1: each line must be a JSON object"),
        ("p.csv", b"text\nhello\n", 'p.csv:line 1: no "prompt" column'),
        ("p.csv", b"prompt\nhello,extra\n", "p.csv:line 2: more fields than the header has"),
        (
            "p.csv",
            b'prompt,set\nfine,a\n"a prompt, with comma,s1\nsecond prompt,s2\n',
            "p.csv:line 3: malformed CSV (a quoted field opened here is never closed)",
        ),
        ("p.pdf", b"whatever", "unknown prompt file type .pdf"),
    ],
)
def test_bad_prompt_files_give_one_line_naming_file_and_place(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as raised:
        read_prompt_file(path)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_missing_prompt_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_prompt_file(tmp_path / "nope.txt")


def test_an_error_naming_a_file_with_a_newline_stays_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError) as raised:
        read_prompt_file(tmp_path / "bad\nname.txt")
    assert "\n" not in str(raised.value)
    assert "bad\\nname.txt" in str(raised.value)
