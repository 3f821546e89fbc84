"""`memgrid export` end to end: golden rows, every format read back by its own reader,
each filter, hostile prompts, the manifest, and exports that stop half-way."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import sys
import tarfile
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from memgrid.core.export.jsonl import JsonlWriter
from memgrid.core.export.options import ExportFormat, ExportOptions
from memgrid.core.export.rows import ROW_FIELDS
from memgrid.core.records import GridImage, Proposal, Reason, Score
from memgrid.core.taxonomy import Category, Feature, Webster
from memgrid.db.store import Store
from memgrid.tui.cli import app
from memgrid.tui.errors import ERROR_LINE
from memgrid.tui.services.export import export_project
from memgrid.tui.services.project import Project
from tests.conftest import interrupt_at_call

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
UPDATE_GOLDEN = os.environ.get("MEMGRID_UPDATE_GOLDEN") == "1"
SEEDS = (0, 1)
MODEL = "test-model"
HOSTILE_PROMPT = (
    "../../etc/passwd \"quoted\" 'single'\nsecond line\r\n..\\..\\windows, a; b\u2028end"
)
WATERMARK = Feature(Category.UNINTENDED, "photographer's watermark", (0, 1, 8))
# Every label time is "now"; golden files compare everything else byte for byte.
LABEL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00")


# ---- a project with one grid per labelling situation ----------------------------------------

PROMPTS = {
    "agreed": "Mona Lisa by Leonardo da Vinci",
    "adjudicated": "a stock photo of a kitchen",
    "tie": "the smiling woman painted by da Vinci",
    "flagged": "a red kite over green hills",
    "skipped": "a forest path in autumn",
    "untouched": "a mountain lake at sunrise",
    "split": "a poster of Orbital Sunrise",
    "undone": "a lighthouse at dusk",
}


def label_grids(store: Store, ids: dict[str, int]) -> None:
    store.labels.label(ids["agreed"], "ana", Category.EXPLICIT)
    store.labels.label(ids["agreed"], "bo", Category.EXPLICIT, webster=Webster.MATCHING_VERBATIM)
    store.labels.label(ids["adjudicated"], "ana", Category.UNINTENDED, features=(WATERMARK,))
    store.labels.label(ids["adjudicated"], "bo", Category.NONE, note="looks varied to me")
    store.labels.adjudicate(
        ids["adjudicated"],
        "judge",
        Category.UNINTENDED,
        features=(WATERMARK,),
        webster=Webster.TEMPLATE_VERBATIM,
    )
    store.labels.label(ids["tie"], "ana", Category.IMPLICIT, proposal_shown=False)
    store.labels.label(ids["tie"], "bo", Category.NONE)
    store.labels.flag(ids["flagged"], "ana", note="unsure")
    store.labels.skip(ids["skipped"], "bo")
    store.labels.label(ids["split"], "ana", Category.NONE)
    store.labels.label(ids["split"], "bo", Category.NONE)
    store.labels.label(ids["split"], "chen", Category.EXPLICIT)
    store.labels.label(ids["undone"], "ana", Category.NONE)
    store.labels.undo_last("ana")
    store.labels.label(ids["undone"], "ana", Category.EXPLICIT)


def propose_and_score(store: Store, ids: dict[str, int]) -> None:
    thresholds = store.thresholds.add("test", {"tau_mem": 0.15}, activate=True)
    reason = Reason("tiled-l2", "2 of 2 seeds near-identical", value=1.0, threshold=0.6)
    store.proposals.add_many(
        [
            Proposal(
                ids["agreed"],
                thresholds.id,
                Category.EXPLICIT,
                reasons=(reason,),
                score=1.0,
                margin=0.4,
            ),
            Proposal(
                ids["adjudicated"],
                thresholds.id,
                Category.UNINTENDED,
                features=(WATERMARK,),
                webster=Webster.TEMPLATE_VERBATIM,
                score=0.5,
                margin=-0.1,
            ),
            Proposal(ids["tie"], thresholds.id, Category.NONE, score=0.0, margin=-0.6),
        ]
    )
    store.scores.add(
        Score(
            ids["agreed"],
            "tiled-l2",
            {"threshold": 0.15},
            "1",
            {"clique_share": 1.0, "extent": 0.9},
            heatmap=[[1.0, 0.5], [0.25, 0.0]],
        )
    )
    store.scores.add(
        Score(
            ids["adjudicated"],
            "clip",
            {"model": "none"},
            "1",
            {},
            available=False,
            note="no weights",
        )
    )


def synthetic_images(name: str) -> list[GridImage]:
    """Image records with fixed hashes and no files: enough for exports without images."""
    images = []
    for seed in SEEDS:
        sha = hashlib.sha256(f"{name}-{seed}".encode()).hexdigest()
        images.append(GridImage(seed, f"images/{sha[:2]}/{sha}.png", sha, 8, 8))
    return images


def real_images(project: Project, index: int) -> list[GridImage]:
    return [
        project.images.put_image(Image.new("RGB", (8, 8), (index * 30, seed * 90, 200)), seed)
        for seed in SEEDS
    ]


def prompt_fields(index: int) -> dict[str, Any]:
    """What `prompts add` keeps of a Webster-style prompt list; the last prompts came bare."""
    if index >= 6:
        return {}
    return {
        "source_id": f"sd-{index:03d}",
        "laion_key": f"{index * 7919:09d}",
        "url": f"https://example.org/{index}.jpg",
        "webster_type": "MV" if index % 2 else "TV",
        "rank": index,
    }


def build_labelled_project(project: Project, *, with_files: bool) -> dict[str, int]:
    """The grids of PROMPTS, labelled as their names say; returns name -> grid id."""
    ids = {}
    for index, (name, prompt) in enumerate(PROMPTS.items()):
        images = real_images(project, index) if with_files else synthetic_images(name)
        ids[name], _ = project.store.grids.add(
            prompt,
            images,
            model=MODEL,
            settings={"steps": 50, "guidance": 7.5},
            provenance={"imported_from": f"grids/{index}"},
            source="test",
            prompt_metadata=prompt_fields(index),
        )
    label_grids(project.store, ids)
    propose_and_score(project.store, ids)
    return ids


@pytest.fixture
def labelled(project: Project) -> tuple[Project, dict[str, int]]:
    return project, build_labelled_project(project, with_files=False)


@pytest.fixture
def labelled_with_files(project: Project) -> tuple[Project, dict[str, int]]:
    return project, build_labelled_project(project, with_files=True)


def run_export(
    runner: CliRunner, project: Project, out: Path, export_format: str, *extra: str
) -> Any:
    result = runner.invoke(
        app, ["export", "-p", str(project.root), "-f", export_format, "-o", str(out), *extra]
    )
    assert result.exit_code == 0, result.output
    return result


def jsonl_rows(out: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in (out / "grids.jsonl").read_text(encoding="utf-8").splitlines()
    ]


# ---- golden files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("export_format", "file_name"), [("jsonl", "grids.jsonl"), ("csv", "grids.csv")]
)
def test_rows_match_the_golden_file(
    labelled: tuple[Project, dict[str, int]],
    runner: CliRunner,
    tmp_path: Path,
    export_format: str,
    file_name: str,
) -> None:
    project, _ = labelled
    run_export(runner, project, tmp_path / "out", export_format)
    written = LABEL_TIME.sub("<label time>", (tmp_path / "out" / file_name).read_text("utf-8"))
    golden = GOLDEN / f"export.{export_format}"
    if UPDATE_GOLDEN:
        golden.write_text(written, encoding="utf-8", newline="")
    assert written == golden.read_text(encoding="utf-8")


def test_rows_say_how_each_label_was_reached(
    labelled: tuple[Project, dict[str, int]], runner: CliRunner, tmp_path: Path
) -> None:
    project, ids = labelled
    run_export(runner, project, tmp_path / "out", "jsonl")
    rows = {row["grid_id"]: row for row in jsonl_rows(tmp_path / "out")}
    assert all(list(row) == list(ROW_FIELDS) for row in rows.values())  # documented fields
    facts = {
        name: (rows[grid_id]["category"], rows[grid_id]["state"], rows[grid_id]["agreement"]["how"])
        for name, grid_id in ids.items()
    }
    assert facts == {
        "agreed": ("explicit", "labelled", "majority"),
        "adjudicated": ("unintended", "labelled", "adjudicated"),
        "tie": (None, "labelled", "tie"),
        "flagged": (None, "flagged", "unlabelled"),
        "skipped": (None, "skipped", "unlabelled"),
        "untouched": (None, "unlabelled", "unlabelled"),
        "split": ("none", "labelled", "majority"),
        "undone": ("explicit", "labelled", "majority"),
    }
    adjudicated = rows[ids["adjudicated"]]
    assert adjudicated["webster"] == "TV"
    assert adjudicated["features"] == [WATERMARK.to_dict()]
    assert [(label["annotator"], label["action"]) for label in adjudicated["labels"]] == [
        ("ana", "label"),
        ("bo", "label"),
        ("judge", "adjudicate"),
    ]
    assert adjudicated["proposal"]["threshold_set"] == {"id": 1, "name": "test", "version": 0}
    assert adjudicated["scores"]["clip"]["available"] is False
    assert rows[ids["tie"]]["agreement"]["tied"] == ["implicit", "none"]
    assert [label["category"] for label in rows[ids["undone"]]["labels"]] == ["explicit"]


# ---- every format, read back by the tools researchers use ----------------------------------------


def test_parquet_holds_every_row_and_label_of_the_jsonl(
    labelled: tuple[Project, dict[str, int]], runner: CliRunner, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    project, ids = labelled
    run_export(runner, project, tmp_path / "jsonl", "jsonl")
    run_export(runner, project, tmp_path / "parquet", "parquet")
    table = pq.read_table(tmp_path / "parquet" / "grids.parquet")
    assert table.num_rows == len(ids)
    parquet_rows = table.to_pylist()
    for row in parquet_rows:
        for column in ("scores", "settings", "provenance"):
            row[column] = json.loads(row[column])
        # The prompt's fields come flat; put them back as the JSONL nests them.
        meta = {k.split(".", 1)[1]: row.pop(k) for k in list(row) if k.startswith("prompt_meta.")}
        row["prompt_meta"] = {k: v for k, v in meta.items() if v is not None}
        for key in [k for k in row if k.startswith("score.")]:
            del row[key]
    expected = jsonl_rows(tmp_path / "jsonl")
    for row in expected:  # the order of the columns aside
        row.update({key: row.pop(key) for key in ("prompt_meta", "contact_sheet")})
    assert [dict(sorted(r.items())) for r in parquet_rows] == [
        dict(sorted(r.items())) for r in expected
    ]
    assert table.schema.field("labels").type.value_type.field("category").type == "string"


def test_parquet_has_typed_flat_score_columns_beside_the_json(
    labelled: tuple[Project, dict[str, int]], runner: CliRunner, tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    project, ids = labelled
    run_export(runner, project, tmp_path / "parquet", "parquet")
    table = pq.read_table(tmp_path / "parquet" / "grids.parquet")
    names = table.column_names
    assert names.index("score.tiled-l2.clique_share") == names.index("scores") + 1
    assert table.schema.field("score.tiled-l2.clique_share").type == pa.float64()
    by_grid = dict(
        zip(
            table.column("grid_id").to_pylist(),
            table.column("score.tiled-l2.clique_share").to_pylist(),
            strict=True,
        )
    )
    assert by_grid[ids["agreed"]] == 1.0  # the value stored with the score
    assert by_grid[ids["tie"]] is None  # no tiled-l2 score: null, not zero
    assert table.schema.field("prompt_meta.rank").type == pa.int64()
    assert table.schema.field("prompt_meta.source_id").type == pa.string()
    manifest = json.loads((tmp_path / "parquet" / "export.json").read_text())
    assert manifest["data_columns"]["scores"] == {
        "score.tiled-l2.clique_share": "real",
        "score.tiled-l2.extent": "real",
    }


def read_prompt_meta(out: Path, export_format: str) -> dict[int, dict[str, Any]]:
    """grid id -> the prompt's fields, as each format holds them (flat ones put back)."""
    if export_format in ("jsonl", "webdataset"):
        rows = jsonl_rows(out) if export_format == "jsonl" else webdataset_rows(out)
        return {row["grid_id"]: row["prompt_meta"] for row in rows}
    if export_format == "csv":
        with open(out / "grids.csv", encoding="utf-8", newline="") as handle:
            flat = list(csv.DictReader(handle))
    else:
        import pyarrow.parquet as pq

        name = "grids.parquet" if export_format == "parquet" else "metadata.parquet"
        flat = pq.read_table(out / name).to_pylist()
    return {
        int(row["grid_id"]): {
            key.split(".", 1)[1]: value
            for key, value in row.items()
            if key.startswith("prompt_meta.") and value not in (None, "")
        }
        for row in flat
    }


def webdataset_rows(out: Path) -> list[dict[str, Any]]:
    rows = []
    for shard in sorted(out.glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".json"):
                    rows.append(json.loads(tar.extractfile(member).read()))  # type: ignore[union-attr]
    return rows


@pytest.mark.parametrize("export_format", [f.value for f in ExportFormat])
def test_every_format_carries_the_fields_that_came_with_the_prompt(
    labelled_with_files: tuple[Project, dict[str, int]],
    runner: CliRunner,
    tmp_path: Path,
    export_format: str,
) -> None:
    project, ids = labelled_with_files
    run_export(runner, project, tmp_path / "out", export_format)
    found = read_prompt_meta(tmp_path / "out", export_format)
    assert set(found) == set(ids.values())
    for index, name in enumerate(PROMPTS):
        expected = prompt_fields(index)
        if export_format == "csv":  # CSV cells are text
            expected = {key: str(value) for key, value in expected.items()}
        assert found[ids[name]] == expected, name
    assert found[ids["agreed"]]["laion_key"] == "000000000"  # leading zeros kept: a join key


def test_imagefolder_loads_with_datasets_with_every_image_and_label(
    labelled_with_files: tuple[Project, dict[str, int]],
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    import datasets

    project, ids = labelled_with_files
    run_export(runner, project, tmp_path / "jsonl", "jsonl")
    run_export(runner, project, tmp_path / "imagefolder", "imagefolder", "--contact-sheet")
    expected = {row["grid_id"]: row for row in jsonl_rows(tmp_path / "jsonl")}
    loaded = datasets.load_dataset(
        "imagefolder",
        data_dir=str(tmp_path / "imagefolder"),
        split="train",
        cache_dir=str(tmp_path / "hf-cache"),
    )
    category = loaded.features["category"]
    assert isinstance(category, datasets.ClassLabel)
    assert category.names == ["explicit", "implicit", "unintended", "none"]
    assert loaded.num_rows == len(ids) * len(SEEDS)  # contact sheets are not examples
    seen = set()
    for example in loaded:
        row = expected[example["grid_id"]]
        seen.add((example["grid_id"], example["seed"]))
        if row["category"] is None:
            assert example["category"] is None
        else:
            assert category.int2str(example["category"]) == row["category"]
        assert example["agreement_how"] == row["agreement"]["how"]
        assert example["agreement_share"] == row["agreement"]["share"]
        assert json.loads(example["labels"]) == row["labels"]
        assert example["prompt"] == row["prompt"]
        assert example["prompt_meta.source_id"] == row["prompt_meta"].get("source_id")
        [image] = [i for i in row["images"] if i["seed"] == example["seed"]]
        assert example["sha256"] == image["sha256"]
        assert example["image"].size == (8, 8)
        copied = tmp_path / "imagefolder" / f"images/{example['grid_id']}/seed{example['seed']}.png"
        assert hashlib.sha256(copied.read_bytes()).hexdigest() == image["sha256"]
    assert seen == {(grid_id, seed) for grid_id in ids.values() for seed in SEEDS}


def test_webdataset_shards_read_back_with_tarfile(
    labelled_with_files: tuple[Project, dict[str, int]], runner: CliRunner, tmp_path: Path
) -> None:
    project, ids = labelled_with_files
    out = tmp_path / "wds"
    run_export(runner, project, out, "webdataset", "--shard-size", "3")
    shards = sorted(out.glob("shard-*.tar"))
    assert [s.name for s in shards] == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    samples_per_shard = []
    grid_ids = []
    for shard in shards:
        with tarfile.open(shard) as tar:
            members: dict[str, dict[str, bytes]] = defaultdict(dict)
            for member in tar.getmembers():
                assert member.isfile()
                assert re.fullmatch(r"grid\d{8}\.(json|seed\d+\.png)", member.name)
                key, extension = member.name.split(".", 1)
                data = tar.extractfile(member)
                assert data is not None
                members[key][extension] = data.read()
        samples_per_shard.append(len(members))
        for key, files in members.items():
            row = json.loads(files["json"])
            assert key == f"grid{row['grid_id']:08d}"
            grid_ids.append(row["grid_id"])
            for image in row["images"]:
                assert image["path"] == f"{key}.seed{image['seed']}.png"
                assert (
                    hashlib.sha256(files[f"seed{image['seed']}.png"]).hexdigest() == image["sha256"]
                )
    assert samples_per_shard == [3, 3, 2]
    assert grid_ids == sorted(ids.values())
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["shard_size"] == 3 and manifest["files"] == [s.name for s in shards]


def test_linked_images_share_the_project_files(
    labelled_with_files: tuple[Project, dict[str, int]], runner: CliRunner, tmp_path: Path
) -> None:
    project, _ = labelled_with_files
    run_export(runner, project, tmp_path / "out", "jsonl", "--with-images", "link")
    for row in jsonl_rows(tmp_path / "out"):
        for image in row["images"]:
            assert image["path"] == f"images/{row['grid_id']}/seed{image['seed']}.png"
            assert os.path.samefile(
                tmp_path / "out" / image["path"], project.root / image["project_path"]
            )


# ---- filters -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ((), set(PROMPTS)),
        (("--category", "explicit"), {"agreed", "undone"}),
        (("--category", "none", "--category", "unintended"), {"split", "adjudicated"}),
        (("--state", "labelled"), {"agreed", "adjudicated", "tie", "split", "undone"}),
        (("--state", "flagged", "--state", "skipped"), {"flagged", "skipped"}),
        (("--state", "unlabelled"), {"untouched"}),
        (("--annotator", "bo"), {"agreed", "adjudicated", "tie", "skipped", "split"}),
        (("--annotator", "ana", "--state", "flagged"), {"flagged"}),
        (("--min-agreement", "0.6"), {"agreed", "split", "undone"}),
        (("--adjudicated-only",), {"adjudicated"}),
        (("--category", "explicit", "--min-agreement", "1"), {"agreed", "undone"}),
    ],
)
def test_each_filter_keeps_the_grids_it_names(
    labelled: tuple[Project, dict[str, int]],
    runner: CliRunner,
    tmp_path: Path,
    arguments: tuple[str, ...],
    expected: set[str],
) -> None:
    project, ids = labelled
    run_export(runner, project, tmp_path / "out", "jsonl", *arguments)
    names = {grid_id: name for name, grid_id in ids.items()}
    assert {names[row["grid_id"]] for row in jsonl_rows(tmp_path / "out")} == expected
    manifest = json.loads((tmp_path / "out" / "export.json").read_text())
    assert manifest["counts"]["rows"] == len(expected)


def test_the_manifest_traces_the_export(
    labelled: tuple[Project, dict[str, int]], runner: CliRunner, tmp_path: Path
) -> None:
    project, _ = labelled
    result = run_export(
        runner,
        project,
        tmp_path / "out",
        "csv",
        "--category",
        "explicit",
        "--annotator",
        "ana",
        "--json",
    )
    manifest = json.loads((tmp_path / "out" / "export.json").read_text())
    assert json.loads(result.output) == manifest
    assert manifest["format"] == "csv"
    assert manifest["project_id"] == project.store.project_id
    assert manifest["schema_version"] == project.store.schema_version
    assert manifest["memgrid_version"] == "0.1.0"
    assert manifest["filters"] == {
        "categories": ["explicit"],
        "states": [],
        "annotator": "ana",
        "min_agreement": None,
        "adjudicated_only": False,
    }
    assert manifest["counts"] == {
        "grids_in_project": 8,
        "rows": 2,
        "images": 4,
        "categories": {"explicit": 2},
        "agreement": {"majority": 2},
        "states": {"labelled": 2},
    }
    assert manifest["files"] == ["grids.csv"] and manifest["with_images"] == "none"
    assert manifest["fields"] == ROW_FIELDS
    assert manifest["columns"][:3] == ["grid_id", "prompt_id", "prompt"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["export.json", "grids.csv"]


# ---- hostile prompts ---------------------------------------------------------------------------


@pytest.mark.parametrize("export_format", [f.value for f in ExportFormat])
def test_a_hostile_prompt_exports_safely(
    project: Project, runner: CliRunner, tmp_path: Path, export_format: str
) -> None:
    project.store.grids.add(HOSTILE_PROMPT, real_images(project, 1), model=MODEL)
    out = tmp_path / "exports" / "out"
    out.parent.mkdir()
    extra = () if export_format in ("imagefolder", "webdataset") else ("--with-images", "copy")
    run_export(runner, project, out, export_format, *extra)
    assert sorted(p.name for p in (tmp_path / "exports").iterdir()) == ["out"]
    for path in out.rglob("*"):
        assert path.resolve().is_relative_to(out.resolve())
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", path.name), path.name
    assert read_prompts(out, export_format) == [HOSTILE_PROMPT]


FORMULA_PROMPT = "=cmd|' /C calc'!A0"


def test_a_formula_prompt_reaches_the_csv_as_text_and_the_manifest_says_so(
    project: Project, runner: CliRunner, tmp_path: Path
) -> None:
    project.store.grids.add(FORMULA_PROMPT, synthetic_images("formula"), model="@evil-model")
    run_export(runner, project, tmp_path / "csv", "csv")
    with open(tmp_path / "csv" / "grids.csv", encoding="utf-8", newline="") as handle:
        [row] = list(csv.DictReader(handle))
    assert row["prompt"] == "'" + FORMULA_PROMPT
    assert row["model"] == "'@evil-model"
    manifest = json.loads((tmp_path / "csv" / "export.json").read_text())
    escaping = manifest["csv_formula_escaping"]
    assert "single quote" in escaping and "OWASP" in escaping
    run_export(runner, project, tmp_path / "jsonl", "jsonl")
    assert [row["prompt"] for row in jsonl_rows(tmp_path / "jsonl")] == [FORMULA_PROMPT]
    manifest = json.loads((tmp_path / "jsonl" / "export.json").read_text())
    assert manifest["csv_formula_escaping"] is None


def read_prompts(out: Path, export_format: str) -> list[str]:
    if export_format == "jsonl":
        return [row["prompt"] for row in jsonl_rows(out)]
    if export_format == "csv":
        with open(out / "grids.csv", encoding="utf-8", newline="") as handle:
            return [row["prompt"] for row in csv.DictReader(handle)]
    if export_format == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(out / "grids.parquet").column("prompt").to_pylist()
    if export_format == "imagefolder":
        import pyarrow.parquet as pq

        return sorted(set(pq.read_table(out / "metadata.parquet").column("prompt").to_pylist()))
    return [row["prompt"] for row in webdataset_rows(out)]


# ---- the destination ---------------------------------------------------------------------------


def test_an_earlier_export_is_refused_then_replaced_with_overwrite(
    labelled: tuple[Project, dict[str, int]], runner: CliRunner, tmp_path: Path
) -> None:
    project, ids = labelled
    out = tmp_path / "out"
    run_export(runner, project, out, "csv")
    refused = runner.invoke(app, ["export", "-p", str(project.root), "-f", "jsonl", "-o", str(out)])
    assert refused.exit_code == 1
    assert "already exists; pass --overwrite to replace it" in refused.output
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "grids.csv"]
    run_export(runner, project, out, "jsonl", "--overwrite")
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "grids.jsonl"]
    assert len(jsonl_rows(out)) == len(ids)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("overwrite", [(), ("--overwrite",)])
def test_overwrite_never_replaces_what_is_not_an_export(
    labelled: tuple[Project, dict[str, int]],
    runner: CliRunner,
    tmp_path: Path,
    overwrite: tuple[str, ...],
) -> None:
    project, _ = labelled
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "thesis.tex").write_text("three years of work")
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    for out in (thesis, notes):
        result = runner.invoke(
            app, ["export", "-p", str(project.root), "-f", "jsonl", "-o", str(out), *overwrite]
        )
        assert result.exit_code == 1
        assert result.output.startswith(f"memgrid: error: {out}: ")
        assert "not a memgrid export" in result.output
        assert result.output.count("\n") == 1
    assert [p.name for p in thesis.iterdir()] == ["thesis.tex"]
    assert (thesis / "thesis.tex").read_text() == "three years of work"
    assert notes.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "project", "thesis"]


def test_out_in_a_missing_folder_is_an_error_not_a_new_tree(
    labelled: tuple[Project, dict[str, int]], runner: CliRunner, tmp_path: Path
) -> None:
    project, _ = labelled
    out = tmp_path / "typo" / "exports" / "out"
    result = runner.invoke(app, ["export", "-p", str(project.root), "-f", "csv", "-o", str(out)])
    assert result.exit_code == 1
    assert result.output == (
        f"memgrid: error: {out}: folder {out.parent} does not exist; create it first\n"
    )
    assert not (tmp_path / "typo").exists()


def test_an_export_never_replaces_the_projects_images(
    labelled_with_files: tuple[Project, dict[str, int]], runner: CliRunner
) -> None:
    project, _ = labelled_with_files
    images_before = sorted(project.images.root.rglob("*"))
    result = runner.invoke(
        app,
        [
            "export",
            "-p",
            str(project.root),
            "-f",
            "jsonl",
            "-o",
            str(project.images.root),
            "--overwrite",
        ],
    )
    assert result.exit_code == 1
    assert "is part of the project" in result.output
    assert sorted(project.images.root.rglob("*")) == images_before


def interrupt_on_second_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    interrupt_at_call(monkeypatch, JsonlWriter, "_write_payload", call=2)


def test_an_interrupted_export_leaves_nothing_at_the_destination(
    labelled: tuple[Project, dict[str, int]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, _ = labelled
    interrupt_on_second_batch(monkeypatch)
    exports = tmp_path / "exports"
    exports.mkdir()
    with pytest.raises(KeyboardInterrupt):
        export_project(project, ExportOptions(ExportFormat.JSONL, exports / "out"), batch_size=3)
    assert list(exports.iterdir()) == []


def test_an_interrupted_overwrite_keeps_the_previous_export(
    labelled: tuple[Project, dict[str, int]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, _ = labelled
    out = tmp_path / "exports" / "out"
    out.parent.mkdir()
    export_project(project, ExportOptions(ExportFormat.JSONL, out))
    before = (out / "grids.jsonl").read_bytes()
    interrupt_on_second_batch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        export_project(
            project, ExportOptions(ExportFormat.JSONL, out, overwrite=True), batch_size=3
        )
    assert [p.name for p in (tmp_path / "exports").iterdir()] == ["out"]
    assert (out / "grids.jsonl").read_bytes() == before


@pytest.mark.parametrize("earlier_export", [False, True])
def test_ctrl_c_in_export_says_nothing_was_written(
    labelled: tuple[Project, dict[str, int]],
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    earlier_export: bool,
) -> None:
    from memgrid.tui.commands import export as export_command

    project, _ = labelled
    out = tmp_path / "out"
    if earlier_export:
        run_export(runner, project, out, "jsonl")
    before = (out / "grids.jsonl").read_bytes() if earlier_export else None
    monkeypatch.setattr(export_command, "export_project", partial(export_project, batch_size=3))
    interrupt_on_second_batch(monkeypatch)
    args = ["export", "-p", str(project.root), "-f", "jsonl", "-o", str(out), "--overwrite"]
    result = runner.invoke(app, args)
    assert result.exit_code == 130
    (line,) = result.stderr.strip().splitlines()
    assert ERROR_LINE.match(line)["where"] == "memgrid export", line
    if earlier_export:
        assert line.endswith(f"nothing was written; the earlier export at {out} is kept")
        assert (out / "grids.jsonl").read_bytes() == before
    else:
        assert line.endswith(f"nothing was written; {out} was not made")
        assert not out.exists()


def test_ctrl_c_after_the_export_moved_in_says_it_finished(
    labelled: tuple[Project, dict[str, int]],
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Interrupted while tidying up after the move (the earlier export is being removed): the
    new export is in place, and the line must not claim the earlier one was kept."""
    from memgrid.core.export import staging

    project, _ = labelled
    out = tmp_path / "out"
    run_export(runner, project, out, "jsonl")

    interrupt_at_call(monkeypatch, staging, "_fsync_folder")
    args = ["export", "-p", str(project.root), "-f", "csv", "-o", str(out), "--overwrite"]
    result = runner.invoke(app, args)
    assert result.exit_code == 130
    assert result.stderr.strip().endswith(f"interrupted: the export had finished and is at {out}")
    assert (out / "grids.csv").is_file() and not (out / "grids.jsonl").exists()


@pytest.mark.parametrize("export_format", ["parquet", "imagefolder"])
def test_parquet_without_pyarrow_says_which_extra_to_install(
    labelled: tuple[Project, dict[str, int]],
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    export_format: str,
) -> None:
    project, _ = labelled
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    result = runner.invoke(
        app, ["export", "-p", str(project.root), "-f", export_format, "-o", str(tmp_path / "out")]
    )
    assert result.exit_code == 1
    assert f"--format {export_format}: needs the `export` extra" in result.output
    assert "pip install 'memgrid[export]'" in result.output
    assert not (tmp_path / "out").exists()


# ---- worker processes ----------------------------------------------------------------------------


def folder_contents(out: Path) -> dict[str, Any]:
    """Every file's bytes (a tar's members, since its timestamps differ), manifest aside."""
    contents: dict[str, Any] = {}
    for path in sorted(out.rglob("*")):
        if path.is_dir() or path.name == "export.json":
            continue
        if path.suffix == ".tar":
            with tarfile.open(path) as tar:
                contents[path.name] = [
                    (m.name, tar.extractfile(m).read())  # type: ignore[union-attr]
                    for m in tar.getmembers()
                ]
        else:
            contents[str(path.relative_to(out))] = path.read_bytes()
    return contents


@pytest.mark.parametrize("export_format", [f.value for f in ExportFormat])
def test_worker_processes_write_the_same_export_as_one_process(
    labelled_with_files: tuple[Project, dict[str, int]], tmp_path: Path, export_format: str
) -> None:
    project, _ = labelled_with_files
    exports = {}
    for workers in (0, 2):
        out = tmp_path / f"out-{workers}"
        options = ExportOptions(ExportFormat(export_format), out, shard_size=3)
        report = export_project(project, options, workers=workers, batch_size=3)
        assert report.rows == len(PROMPTS)
        exports[workers] = folder_contents(out)
    assert exports[0] == exports[2]
    assert exports[0]


# ---- the bulk reads behind export --------------------------------------------------------------


def test_label_events_for_keeps_an_adjudicators_own_vote_and_honours_undo() -> None:
    store = Store.memory()
    grid_id, _ = store.grids.add("p", synthetic_images("p"), model=MODEL)
    store.labels.label(grid_id, "judge", Category.NONE)
    store.labels.adjudicate(grid_id, "judge", Category.EXPLICIT)
    store.labels.label(grid_id, "ana", Category.IMPLICIT)
    store.labels.label(grid_id, "ana", Category.NONE)
    store.labels.undo_last("ana")
    events = store.labels.current_where(grid_ids=[grid_id])
    assert [(e.annotator, e.action, e.category) for e in events] == [
        ("judge", "label", Category.NONE),
        ("judge", "adjudicate", Category.EXPLICIT),
        ("ana", "label", Category.IMPLICIT),
    ]
    assert store.labels.current_where(grid_ids=[]) == []


def test_active_proposals_for_uses_the_set_active_for_each_grids_model() -> None:
    store = Store.memory()
    ours, _ = store.grids.add("ours", synthetic_images("ours"), model=MODEL)
    other, _ = store.grids.add("other", synthetic_images("other"), model="other-model")
    everywhere = store.thresholds.add("global", {"tau_mem": 0.1}, activate=True)
    specific = store.thresholds.add("ours", {"tau_mem": 0.2}, model=MODEL, activate=True)
    store.proposals.add_many(
        [
            Proposal(ours, everywhere.id, Category.NONE),
            Proposal(ours, specific.id, Category.EXPLICIT),
            Proposal(other, everywhere.id, Category.IMPLICIT),
            Proposal(other, specific.id, Category.UNINTENDED),
        ]
    )
    found = store.proposals.active_where(grid_ids=[ours, other])
    assert [(p.grid_id, p.threshold_set_id, p.category) for p in found] == [
        (ours, specific.id, Category.EXPLICIT),
        (other, everywhere.id, Category.IMPLICIT),
    ]


def test_scores_for_returns_every_metric_of_the_asked_grids_only() -> None:
    store = Store.memory()
    first, _ = store.grids.add("a", synthetic_images("a"), model=MODEL)
    second, _ = store.grids.add("b", synthetic_images("b"), model=MODEL)
    for grid_id in (first, second):
        for metric in ("tiled-l2", "phash"):
            store.scores.add(Score(grid_id, metric, {}, "1", {"clique_share": grid_id / 10}))
    assert [(s.grid_id, s.metric) for s in store.scores.where(grid_ids=[second])] == [
        (second, "phash"),
        (second, "tiled-l2"),
    ]


def test_a_killed_exports_leftovers_are_cleaned_and_a_half_swap_is_undone(tmp_path: Path) -> None:
    from memgrid.core.export.staging import recover_stale_exports

    destination = tmp_path / "out"
    dead_pid = 2**22 + 12345  # above Linux's default pid_max: no such process
    half_written = tmp_path / f".out.{dead_pid}-abcd1234.partial"
    half_written.mkdir()
    (half_written / "rows.jsonl").write_text("{}")
    previous = tmp_path / f".out.{dead_pid}-abcd1234.old"
    previous.mkdir()
    (previous / "export.json").write_text("{}")
    recover_stale_exports(destination)
    assert not half_written.exists()
    assert (destination / "export.json").exists()  # the killed --overwrite is rolled back
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


# ---- contact sheets ------------------------------------------------------------------------------


def test_contact_sheets_tile_the_seeds_and_outline_the_regions(
    labelled_with_files: tuple[Project, dict[str, int]], runner: CliRunner, tmp_path: Path
) -> None:
    from memgrid.core.export.contact_sheet import (
        DETECTED_COLOUR,
        GAP,
        LABELLED_COLOUR,
        SEED_SIZE,
    )

    project, ids = labelled_with_files
    # The region map found the top-left quarter; the annotators put the watermark on tile 63.
    project.store.scores.add(
        Score(
            ids["adjudicated"],
            "tiled-l2",
            {},
            "1",
            {"region_bbox": [0, 0, 3, 3], "region_grid": 8, "clique_share": 0.5},
        )
    )
    run_export(runner, project, tmp_path / "out", "jsonl", "--contact-sheet")
    rows = {row["grid_id"]: row for row in jsonl_rows(tmp_path / "out")}
    for grid_id, row in rows.items():
        assert row["contact_sheet"] == f"contact_sheets/{grid_id}.png"
        assert row["images"][0]["path"] is None  # the seeds themselves stay out
    sheet = Image.open(tmp_path / "out" / rows[ids["adjudicated"]]["contact_sheet"]).convert("RGB")
    assert sheet.size == (2 * (SEED_SIZE + GAP) + GAP, SEED_SIZE + 2 * GAP)  # 2 seeds, one row
    half = SEED_SIZE // 2
    for left in (GAP, 2 * GAP + SEED_SIZE):  # on each seed
        assert sheet.getpixel((left + half - 2, GAP + half // 2)) == DETECTED_COLOUR
        # WATERMARK covers tiles 0, 1 and 8: its box is the top-left 2 x 2 tiles.
        assert sheet.getpixel((left + SEED_SIZE // 4 - 2, GAP + SEED_SIZE // 8)) == LABELLED_COLOUR
    seed_pixel = sheet.getpixel((GAP + half + 20, GAP + half + 20))
    assert seed_pixel == (30, 0, 200)  # seed 0 of grid 1 (real_images), not a box
    manifest = json.loads((tmp_path / "out" / "export.json").read_text())
    assert manifest["contact_sheets"] is True


def test_webdataset_samples_carry_their_contact_sheet(
    labelled_with_files: tuple[Project, dict[str, int]], runner: CliRunner, tmp_path: Path
) -> None:
    project, ids = labelled_with_files
    run_export(runner, project, tmp_path / "wds", "webdataset", "--contact-sheet")
    with tarfile.open(tmp_path / "wds" / "shard-000000.tar") as tar:
        names = tar.getnames()
    key = f"grid{ids['agreed']:08d}"
    assert [n for n in names if n.startswith(key)] == [
        f"{key}.seed0.png",
        f"{key}.seed1.png",
        f"{key}.contact.png",
        f"{key}.json",
    ]


def test_an_annotator_filter_naming_nobody_here_is_refused(
    demo_project_dir: Path, tmp_path: Path
) -> None:
    """A typo exported nothing and said nothing; now it names who has labelled."""
    from memgrid.tui.cli import app as cli
    from memgrid.tui.services.project import open_project as opened

    with opened(demo_project_dir) as project:
        project.store.labels.label(1, "ana", Category.NONE)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        [
            "export",
            "-p",
            str(demo_project_dir),
            "-f",
            "jsonl",
            "-o",
            str(out),
            "--annotator",
            "anna",
        ],
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "memgrid: error: --annotator: no label by 'anna' here (annotators: 'ana')\n"
    )
    assert not out.exists()


def test_an_export_that_keeps_no_grid_says_why(
    project: Project, runner: CliRunner, tmp_path: Path
) -> None:
    project.store.grids.add("a prompt nobody adjudicated", synthetic_images("a"))
    result = run_export(runner, project, tmp_path / "out", "jsonl", "--adjudicated-only")
    assert "Exported 0 of 1 grids" in result.stdout
    assert "note: no grid passed the filters (none is adjudicated yet" in result.stderr
