"""Readers for prompt files: .txt (one a line), .csv and .jsonl (a `prompt` field)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memgrid.core.errors import InputError
from memgrid.core.text_files import csv_table, parse_json, read_text

PROMPT_FILE_SUFFIXES = (".txt", ".csv", ".jsonl")
MAX_PROMPT_CHARS = 10_000


@dataclass
class PromptFile:
    """Prompts read from one file, with what was dropped on the way."""

    prompts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    empty_skipped: int = 0
    duplicates_in_file: int = 0


def checked_prompt(text: str, source: str | Path, location: str | None = None) -> str:
    """The one rule for a prompt from any file (prompt lists, grid folders, manifests).

    Outer whitespace is trimmed and the inner text kept exactly (control characters too:
    they are data, shown escaped); a NUL or more than MAX_PROMPT_CHARS is refused. An
    empty result is the caller's to skip or refuse.
    """
    prompt = text.strip()
    if "\x00" in prompt:
        raise InputError(source, "prompt contains a NUL character", location)
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InputError(source, f"prompt longer than {MAX_PROMPT_CHARS} characters", location)
    return prompt


def read_prompt_file(path: Path) -> PromptFile:
    suffix = path.suffix.lower()
    if suffix not in PROMPT_FILE_SUFFIXES:
        raise InputError(
            path, f"unknown prompt file type {suffix or '(none)'}; use .txt, .csv or .jsonl"
        )
    text = read_text(path)
    result = PromptFile()
    seen: set[str] = set()
    for location, raw, metadata in _records(path, suffix, text):
        prompt = checked_prompt(raw, path, location)
        if not prompt:
            result.empty_skipped += 1
            continue
        if prompt in seen:
            result.duplicates_in_file += 1
            continue
        seen.add(prompt)
        result.prompts.append((prompt, metadata))
    return result


def _records(path: Path, suffix: str, text: str):
    if suffix == ".txt":
        for number, line in enumerate(text.splitlines(), start=1):
            yield f"line {number}", line, {}
    elif suffix == ".jsonl":
        yield from _jsonl_records(path, text)
    else:
        yield from _csv_records(path, text)


def _jsonl_records(path: Path, text: str):
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            yield f"line {number}", "", {}
            continue
        record = parse_json(line, path, f"line {number}")
        if not isinstance(record, dict):
            raise InputError(path, "each line must be a JSON object", f"line {number}")
        prompt = record.pop("prompt", None)
        if not isinstance(prompt, str):
            raise InputError(path, 'no "prompt" string in this record', f"line {number}")
        yield f"line {number}", prompt, record


def _csv_records(path: Path, text: str):
    fields, rows = csv_table(path, text)
    if "prompt" not in fields:
        raise InputError(path, 'no "prompt" column in the header', "line 1")
    for line, row in rows:
        if None in row:
            raise InputError(path, "more fields than the header has", line)
        prompt = row.pop("prompt") or ""
        yield line, prompt, {k: v for k, v in row.items() if v not in (None, "")}
