"""Property tests for the other user files: entity lexicons, threshold files, config files."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memgrid.core.annotators import read_annotator_table
from memgrid.core.attribution import read_lexicon
from memgrid.core.errors import InputError
from memgrid.core.thresholds import load_threshold_file
from memgrid.tui.app.config import load_config
from tests.hostile.corpus import raw_escapes
from tests.hostile.hostile_files import REFUSED_KINDS, fifos_under, kinds, place, within
from tests.hostile.test_readers_fuzz import payloads

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)
)
threshold_keys = st.sampled_from(
    [
        "tau_mem",
        "tau_global",
        "tau_region",
        "tau_sem",
        "tiled_l2_delta",
        "name",
        "notes",
        "model",
        "x",
    ]
)
mappings = st.dictionaries(
    threshold_keys, st.one_of(scalars, st.lists(scalars, max_size=3)), max_size=6
)


def toml_value(value: object) -> str:
    return json.dumps(value) if value is not None else '""'


def as_toml(mapping: dict) -> str:
    lines = []
    for key, value in mapping.items():
        if isinstance(value, float) and value != value:
            lines.append(f"{key} = nan")
        else:
            lines.append(f"{key} = {toml_value(value)}")
    return "\n".join(lines)


@given(payload=payloads)
def test_lexicon_files_never_crash(payload: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "entities.txt"
        path.write_bytes(payload)
        try:
            entities = read_lexicon(path)
        except InputError as error:
            assert "\n" not in str(error) and str(path) in str(error)
            assert raw_escapes(str(error)) == 0
            return
        for entity in entities:
            assert entity.name and entity.type in ("person", "work", "brand", "place")


@given(
    payload=st.one_of(payloads, mappings.map(lambda m: as_toml(m).encode())),
    suffix=st.sampled_from([".toml", ".json"]),
)
def test_threshold_files_never_crash(payload: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"set{suffix}"
        path.write_bytes(payload)
        try:
            loaded = load_threshold_file(path)
        except InputError as error:
            assert "\n" not in str(error) and str(path) in str(error)
            assert raw_escapes(str(error)) == 0
            return
        assert all(isinstance(v, float) and v == v for v in loaded.values.values() if v is not None)


@given(mapping=mappings)
def test_json_threshold_values_are_validated(mapping: dict) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "set.json"
        path.write_text(json.dumps(mapping))
        try:
            loaded = load_threshold_file(path)
        except InputError as error:
            assert "\n" not in str(error)
            return
        for key in ("tau_mem", "tau_global", "tau_region"):
            assert 0.0 <= loaded.values[key] <= 1.0


config_tables = st.dictionaries(
    st.sampled_from(["keys", "annotate", "other"]),
    st.dictionaries(
        st.sampled_from(
            ["explicit", "skip", "undo", "lease_seconds", "blind_share", "prefetch", "bogus"]
        ),
        scalars,
        max_size=4,
    ),
    max_size=3,
)


def config_text(tables: dict) -> str:
    out = []
    for table, entries in tables.items():
        out.append(f"[{table}]")
        out.extend(
            f"{k} = {toml_value(v)}"
            for k, v in entries.items()
            if not (isinstance(v, float) and v != v)
        )
    return "\n".join(out)


@given(payload=st.one_of(payloads, config_tables.map(lambda t: config_text(t).encode())))
def test_config_files_never_crash(payload: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "memgrid.toml"
        path.write_bytes(payload)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MEMGRID_CONFIG", str(path))
            try:
                config = load_config(None)
            except InputError as error:
                assert "\n" not in str(error) and str(path) in str(error)
                assert raw_escapes(str(error)) == 0
                return
        assert 0.0 <= config.annotate.blind_share <= 1.0
        assert 10 <= config.annotate.lease_seconds <= 86_400
        assert 1 <= config.annotate.prefetch <= 64


SETTINGS_READERS = {
    "entities.txt": read_lexicon,
    "set.toml": load_threshold_file,
    "memgrid.toml": lambda path: load_config(path.parent),
    # The project's [annotators] table, read when the project opens.
    "annotators.toml": lambda path: read_annotator_table(path, os.getuid()),
}


@given(name=st.sampled_from(sorted(SETTINGS_READERS)), kind=kinds)
def test_settings_files_of_every_kind_are_read_or_refused_at_once(name: str, kind: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in" / name
        place(path, kind, b"", Path(folder) / "out")
        try:
            within(10, lambda: SETTINGS_READERS[name](path), fifos_under(Path(folder)))
        except InputError as error:
            assert "\n" not in str(error) and str(path) in str(error)
            assert kind in REFUSED_KINDS
