"""Property tests: every reader of user files either works or raises the one-line InputError."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from memgrid.core.errors import InputError
from memgrid.core.importing import load_images, plan_import
from memgrid.core.label_files import COLUMNS, read_label_file
from memgrid.core.prompt_files import read_prompt_file
from tests.hostile.corpus import hostile_text, raw_escapes
from tests.hostile.hostile_files import REFUSED_KINDS, SECRET, fifos_under, kinds, place, within

odd_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), min_codepoint=0), max_size=400
)
huge_line = st.integers(min_value=10_001, max_value=40_000).map(lambda n: "x" * n)
payloads = st.one_of(
    st.binary(max_size=600),
    # Escape sequences, markup and bidi characters, raw and inside JSON records.
    st.lists(hostile_text, max_size=4).map(lambda lines: "\n".join(lines).encode()),
    st.lists(
        st.dictionaries(st.sampled_from(["prompt", "seed", "path", "model"]), hostile_text),
        max_size=4,
    ).map(lambda rows: "\n".join(json.dumps(r) for r in rows).encode()),
    odd_text.map(lambda t: t.encode("utf-8")),
    odd_text.map(lambda t: t.encode("utf-16")),
    huge_line.map(str.encode),
    st.lists(
        st.dictionaries(
            st.sampled_from(["prompt", "seed", "path", "x"]),
            st.one_of(st.none(), st.integers(), odd_text, st.lists(st.integers(), max_size=3)),
            max_size=4,
        ),
        max_size=6,
    ).map(lambda rows: "\n".join(json.dumps(r) for r in rows).encode()),
)


label_rows = st.lists(
    st.dictionaries(
        st.sampled_from([*COLUMNS, "x"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(allow_nan=True),
            odd_text,
            st.sampled_from(["label", "skip", "none", "MV", "2024-05-01T12:00:00Z", "[]"]),
            st.lists(
                st.dictionaries(
                    st.sampled_from(["category", "name", "tiles", "box", "grid"]),
                    st.one_of(st.integers(-2, 70), st.lists(st.integers(-1, 65), max_size=5)),
                    max_size=4,
                ),
                max_size=2,
            ),
        ),
        max_size=8,
    ),
    max_size=5,
)


def assert_one_line(error: InputError, path: Path) -> None:
    message = str(error)
    assert message.startswith(str(path)) or str(path) in message
    assert "\n" not in message and "Traceback" not in message
    assert raw_escapes(message) == 0


@given(payload=payloads, suffix=st.sampled_from([".txt", ".csv", ".jsonl"]))
def test_prompt_files_never_crash(payload: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"prompts{suffix}"
        path.write_bytes(payload)
        try:
            result = read_prompt_file(path)
        except InputError as error:
            assert_one_line(error, path)
            return
        for prompt, metadata in result.prompts:
            assert prompt == prompt.strip() and prompt
            assert isinstance(metadata, dict)


@given(payload=payloads, suffix=st.sampled_from([".jsonl", ".csv"]))
def test_manifests_never_crash_or_reach_outside(payload: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "src"
        root.mkdir()
        manifest = root / f"manifest{suffix}"
        manifest.write_bytes(payload)
        try:
            plan = plan_import(manifest)
        except InputError as error:
            assert_one_line(error, manifest)
            return
        for error in plan.errors:
            assert "\n" not in str(error) and raw_escapes(str(error)) == 0
        for grid in plan.grids:
            for image in grid.images:
                assert image.path.resolve().is_relative_to(root.resolve())
            try:
                load_images(grid)
            except InputError as error:
                assert "\n" not in str(error)


@given(
    prompt=st.binary(max_size=300),
    names=st.lists(
        st.text(alphabet="0123456789abcdefseed_-.", min_size=1, max_size=12), max_size=5
    ),
    image_bytes=st.binary(max_size=200),
)
def test_grid_folders_never_crash(prompt: bytes, names: list[str], image_bytes: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        grid = Path(folder) / "src" / "g"
        grid.mkdir(parents=True)
        (grid / "prompt.txt").write_bytes(prompt)
        for name in names:
            (grid / f"{name}.png").write_bytes(image_bytes)
        try:
            plan = plan_import(grid.parent)
        except InputError as error:
            assert "\n" not in str(error)
            return
        for error in plan.errors:
            assert "\n" not in str(error) and raw_escapes(str(error)) == 0
        for planned in plan.grids:
            try:
                load_images(planned)
            except InputError as error:
                assert "\n" not in str(error)


def png(color: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (color, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


@given(kind=kinds, suffix=st.sampled_from([".txt", ".csv", ".jsonl"]))
def test_prompt_files_of_every_kind_are_read_or_refused_at_once(kind: str, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in" / f"prompts{suffix}"
        place(path, kind, b'prompt\n{"prompt": "p"}\n', Path(folder) / "out")
        try:
            within(10, lambda: read_prompt_file(path), fifos_under(Path(folder)))
        except InputError as error:
            assert_one_line(error, path)
            return
        # A file the user names directly may be a link anywhere; only files are read.
        assert kind in ("regular", "link_inside", "link_outside")


@given(prompt_kind=kinds, meta_kind=kinds, image_kind=kinds)
def test_grid_folder_links_stay_inside_and_pipes_never_block(
    prompt_kind: str, meta_kind: str, image_kind: str
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        source, outside = Path(folder) / "src", Path(folder) / "out"
        grid = source / "g"
        place(grid / "prompt.txt", prompt_kind, b"a prompt", outside)
        place(grid / "meta.json", meta_kind, b'{"model": "m", "k": "v"}', outside)
        place(grid / "0000.png", image_kind, png(1), outside)
        (grid / "0001.png").write_bytes(png(2))
        pipes = fifos_under(Path(folder))
        plan = within(10, lambda: plan_import(source), pipes)
        for error in plan.errors:
            assert "\n" not in str(error)
        for planned in plan.grids:
            assert SECRET.decode().strip() not in json.dumps([planned.prompt, planned.metadata])
            assert prompt_kind not in REFUSED_KINDS and meta_kind not in REFUSED_KINDS
            try:
                loaded = within(10, lambda planned=planned: load_images(planned), pipes)
            except InputError as error:
                assert "\n" not in str(error)
                assert image_kind in REFUSED_KINDS
                continue
            assert sorted(seed for seed, _ in loaded) == [0, 1]
            assert image_kind not in REFUSED_KINDS


@given(manifest_kind=kinds, image_kind=kinds)
def test_manifest_and_its_images_of_every_kind(manifest_kind: str, image_kind: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        source, outside = Path(folder) / "src", Path(folder) / "out"
        rows = [{"prompt": "p", "seed": seed, "path": f"{seed}.png"} for seed in (0, 1)]
        manifest = source / "m.jsonl"
        place(manifest, manifest_kind, "\n".join(map(json.dumps, rows)).encode(), outside)
        place(source / "0.png", image_kind, png(1), outside)
        (source / "1.png").write_bytes(png(2))
        pipes = fifos_under(Path(folder))
        try:
            plan = within(10, lambda: plan_import(manifest), pipes)
        except InputError as error:
            assert_one_line(error, manifest)
            assert manifest_kind not in ("regular", "link_inside")
            return
        for planned in plan.grids:
            try:
                within(10, lambda planned=planned: load_images(planned), pipes)
            except InputError as error:
                assert "\n" not in str(error)
                assert image_kind in REFUSED_KINDS
            else:
                assert image_kind not in REFUSED_KINDS


@given(
    payload=st.one_of(
        payloads, label_rows.map(lambda rows: "\n".join(json.dumps(r) for r in rows).encode())
    ),
    suffix=st.sampled_from([".jsonl", ".csv"]),
)
def test_label_files_never_crash(payload: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"labels{suffix}"
        path.write_bytes(payload)
        try:
            read = read_label_file(path, default_annotator="fuzz")
        except InputError as error:
            assert_one_line(error, path)
            return
        for record in read.records:
            assert record.grid.grid_id is not None or record.grid.prompt
            assert record.event_id and record.annotator
