"""`memgrid import`: both source layouts, and every bad input stores nothing partial."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memgrid.tui.cli import app
from memgrid.tui.errors import ERROR_LINE
from memgrid.tui.services.project import open_project
from tests.conftest import interrupt_at_call, write_image


def make_folder_source(root: Path, grids: int = 2, seeds: int = 3) -> Path:
    for index in range(grids):
        folder = root / f"grid{index}"
        folder.mkdir(parents=True)
        (folder / "prompt.txt").write_text(f"prompt number {index}\n", encoding="utf-8")
        for seed in range(seeds):
            write_image(folder / f"{seed:04d}.png", (index * 40, seed * 50, 100))
    return root


def stored_files(project_dir: Path) -> set[str]:
    return {
        str(p.relative_to(project_dir)) for p in (project_dir / "images").rglob("*") if p.is_file()
    }


def invoke(runner: CliRunner, *args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def project_dir(tmp_path: Path, runner: CliRunner) -> Path:
    target = tmp_path / "proj"
    assert invoke(runner, "init", str(target)).exit_code == 0
    return target


def counts(project_dir: Path) -> tuple[int, int]:
    with open_project(project_dir) as project:
        return project.store.grids.count, project.store.images.count


def test_folder_per_prompt_import_and_reimport_is_idempotent(
    tmp_path: Path, runner: CliRunner, project_dir: Path
) -> None:
    source = make_folder_source(tmp_path / "src")
    result = invoke(runner, "import", str(source), "--project", str(project_dir))
    assert result.exit_code == 0, result.output
    assert "2 grids added, 6 images added" in result.output
    assert counts(project_dir) == (2, 6)
    with open_project(project_dir) as project:
        grid = project.store.grids.get(project.store.grids.ids_all()[0])
        assert grid.prompt == "prompt number 0" and grid.seeds == [0, 1, 2]
        assert all(project.image_path(image).exists() for image in grid.images)
    again = invoke(runner, "import", str(source), "--project", str(project_dir))
    assert "0 grids added, 0 images added, 2 grids already present" in again.output
    assert counts(project_dir) == (2, 6)


def test_ctrl_c_mid_import_keeps_the_grids_in_and_says_so(
    tmp_path: Path, runner: CliRunner, project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memgrid.tui.services import ingest

    source = make_folder_source(tmp_path / "src", grids=3)
    interrupt_at_call(monkeypatch, ingest, "load_images", call=2)
    result = invoke(runner, "import", str(source), "--project", str(project_dir))
    assert result.exit_code == 130
    (line,) = result.stderr.strip().splitlines()
    assert ERROR_LINE.match(line)["where"] == "memgrid import", line
    assert line.endswith(
        "interrupted: 1 of 3 grids were imported and are stored; running it again goes on from there"
    )
    assert counts(project_dir) == (1, 3)
    monkeypatch.undo()
    again = invoke(runner, "import", str(source), "--project", str(project_dir))
    assert "2 grids added, 6 images added, 1 grid already present" in again.output
    assert counts(project_dir) == (3, 9)


def test_ctrl_c_counts_the_grids_already_present_as_stored(
    tmp_path: Path, runner: CliRunner, project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memgrid.tui.services import ingest

    invoke(
        runner,
        "import",
        str(make_folder_source(tmp_path / "first", grids=2)),
        "-p",
        str(project_dir),
    )
    source = make_folder_source(tmp_path / "src", grids=3)  # the same two grids and one more
    interrupt_at_call(monkeypatch, ingest, "load_images", call=3)
    result = invoke(runner, "import", str(source), "--project", str(project_dir))
    assert result.exit_code == 130
    assert result.stderr.strip().endswith(
        "interrupted: 2 of 3 grids were imported and are stored; running it again goes on from there"
    )


def test_ctrl_c_while_the_source_is_read_says_no_grid_went_in(
    tmp_path: Path, runner: CliRunner, project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memgrid.tui.services import ingest

    interrupt_at_call(monkeypatch, ingest, "plan_import")
    source = make_folder_source(tmp_path / "src")
    result = invoke(runner, "import", str(source), "--project", str(project_dir))
    assert result.exit_code == 130
    assert result.stderr.strip().endswith(
        "memgrid import: interrupted: no grid was imported yet; running it again goes on from there"
    )
    assert counts(project_dir) == (0, 0)


def test_single_grid_folder_with_meta(tmp_path: Path, runner: CliRunner, project_dir: Path) -> None:
    source = make_folder_source(tmp_path / "src", grids=1) / "grid0"
    (source / "meta.json").write_text(json.dumps({"model": "sd-1.5", "settings": {"steps": 50}}))
    assert invoke(runner, "import", str(source), "-p", str(project_dir)).exit_code == 0
    with open_project(project_dir) as project:
        grid = project.store.grids.get(project.store.grids.ids_all()[0])
        assert (grid.model, grid.settings) == ("sd-1.5", {"steps": 50})


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_manifest_import(tmp_path: Path, runner: CliRunner, project_dir: Path, suffix: str) -> None:
    source = tmp_path / "src"
    rows = []
    for seed in range(4):
        write_image(source / "imgs" / f"a{seed}.png", (seed * 60, 0, 0))
        rows.append({"prompt": "a red square", "seed": seed, "path": f"imgs/a{seed}.png"})
    manifest = source / f"manifest{suffix}"
    if suffix == ".jsonl":
        manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    else:
        manifest.write_text(
            "prompt,seed,path\n" + "".join(f"{r['prompt']},{r['seed']},{r['path']}\n" for r in rows)
        )
    result = invoke(runner, "import", str(manifest), "-p", str(project_dir))
    assert result.exit_code == 0, result.output
    assert counts(project_dir) == (1, 4)


def _corrupt(source: Path) -> str:
    (source / "grid1" / "0001.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not really a png")
    return "grid1/0001.png: not a readable image"


def _truncated(source: Path) -> str:
    path = source / "grid1" / "0001.png"
    path.write_bytes(path.read_bytes()[:60])
    return "grid1/0001.png: not a readable image"


def _bad_prompt_encoding(source: Path) -> str:
    (source / "grid1" / "prompt.txt").write_bytes(b"caf\xe9 au lait")
    return "grid1/prompt.txt:line 1: not UTF-8 text"


def _duplicate_seed(source: Path) -> str:
    write_image(source / "grid1" / "1.png", (1, 2, 3))
    return "seed 1 appears twice"


def _symlink_outside(source: Path) -> str:
    outside = write_image(source.parent / "outside.png", (9, 9, 9))
    (source / "grid1" / "0009.png").symlink_to(outside)
    return "grid1/0009.png: points outside the import folder"


def _not_a_seed_name(source: Path) -> str:
    write_image(source / "grid1" / "cover.png", (1, 2, 3))
    return "grid1/cover.png: image name is not a seed number"


@pytest.mark.parametrize(
    "break_source",
    [
        _corrupt,
        _truncated,
        _bad_prompt_encoding,
        _duplicate_seed,
        _symlink_outside,
        _not_a_seed_name,
    ],
)
def test_a_bad_grid_is_named_and_left_out_whole(
    tmp_path: Path, runner: CliRunner, project_dir: Path, break_source
) -> None:
    source = make_folder_source(tmp_path / "src")
    expected = break_source(source)
    result = invoke(runner, "import", str(source), "-p", str(project_dir))
    assert result.exit_code == 1
    assert expected in result.stderr
    assert "Traceback" not in result.output
    assert counts(project_dir) == (1, 3)  # only the good grid, complete
    with open_project(project_dir) as project:
        referenced = {image.path for grid in project.store.grids.all() for image in grid.images}
    assert stored_files(project_dir) == referenced  # no file of the bad grid


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"seed": 0, "path": "a.png"}, 'line 2: row has no "prompt"'),
        (
            {"prompt": "p", "seed": 0, "path": "../outside.png"},
            "line 2: path ../outside.png is outside",
        ),
        ({"prompt": "p", "seed": "x", "path": "a.png"}, 'line 2: "seed" is not an integer'),
        ({"prompt": "p", "seed": 0, "path": "missing.png"}, "missing.png: image file not found"),
        (
            {"prompt": "p", "seed": 1, "path": "a.png"},
            "line 2: seed 1 of this grid appears twice",
        ),
    ],
)
def test_bad_manifest_rows(
    tmp_path: Path, runner: CliRunner, project_dir: Path, row: dict, expected: str
) -> None:
    source = tmp_path / "src"
    write_image(source / "a.png", (0, 0, 0))
    write_image(tmp_path / "outside.png", (0, 0, 0))
    manifest = source / "m.jsonl"
    first = {"prompt": "p", "seed": 1, "path": "a.png"}
    manifest.write_text(json.dumps(first) + "\n" + json.dumps(row) + "\n")
    result = invoke(runner, "import", str(manifest), "-p", str(project_dir))
    assert result.exit_code == 1
    assert expected in result.stderr
    grids, _ = counts(project_dir)
    with open_project(project_dir) as project:
        assert all(len(g.images) == 1 for g in project.store.grids.all())
        if "prompt" in row and row.get("prompt") == "p":
            assert grids == 0  # the prompt's grid has a bad row: none of it is stored


def test_a_deeply_nested_source_imports(
    tmp_path: Path, runner: CliRunner, project_dir: Path
) -> None:
    deep = tmp_path / "src"
    for level in range(40):
        deep = deep / f"level{level:02d}"
    make_folder_source(deep, grids=1)
    result = invoke(runner, "import", str(deep), "-p", str(project_dir))
    assert result.exit_code == 0, result.output
    assert counts(project_dir) == (1, 3)


# ---------------------------------------------------------------- item 1: one grid per source


def test_two_folders_with_one_prompt_are_two_grids(
    tmp_path: Path, runner: CliRunner, project_dir: Path
) -> None:
    # An original model's grid and the same prompt after a mitigation: never merged.
    source = make_folder_source(tmp_path / "src", grids=2, seeds=3)
    (source / "grid1" / "prompt.txt").write_text("prompt number 0\n", encoding="utf-8")
    result = invoke(runner, "import", str(source), "-p", str(project_dir))
    assert result.exit_code == 0, result.output
    assert "2 grids added, 6 images added, 0 grids already present" in result.output
    with open_project(project_dir) as project:
        grids = project.store.grids.all()
        assert [g.prompt for g in grids] == ["prompt number 0", "prompt number 0"]
        assert [g.origin for g in grids] == ["grid0", "grid1"]
        for grid in grids:  # each grid's provenance names its own folder, and only it
            assert grid.provenance["imported_from"].endswith(grid.origin)
            assert grid.seeds == [0, 1, 2]
    again = invoke(runner, "import", str(source), "-p", str(project_dir))
    assert "0 grids added, 0 images added, 2 grids already present" in again.output
    assert counts(project_dir) == (2, 6)


def test_a_seed_colliding_with_different_bytes_is_an_error_naming_both_files(
    tmp_path: Path, runner: CliRunner, project_dir: Path
) -> None:
    source = make_folder_source(tmp_path / "src", grids=1, seeds=3)
    assert invoke(runner, "import", str(source), "-p", str(project_dir)).exit_code == 0
    changed = write_image(source / "grid0" / "0001.png", (250, 5, 5))
    write_image(source / "grid0" / "0003.png", (1, 1, 1))  # a new seed: not added either
    result = invoke(runner, "import", str(source), "-p", str(project_dir))
    assert result.exit_code == 1
    message = result.stderr
    assert str(changed) in message and "seed 1 is already stored for this grid" in message
    with open_project(project_dir) as project:
        (grid,) = project.store.grids.all()
        stored = project.image_path(grid.images[1])
        assert str(stored) in message  # both files named
        assert grid.seeds == [0, 1, 2]  # the grid went in whole or not at all
    assert "\n" not in message.strip()


def test_a_grid_without_a_prompt_imports_with_the_prompt_unknown(
    tmp_path: Path, runner: CliRunner, project_dir: Path
) -> None:
    source = make_folder_source(tmp_path / "src", grids=2, seeds=3)
    (source / "grid0" / "prompt.txt").unlink()
    (source / "grid1" / "prompt.txt").unlink()  # two unknown prompts: still two grids
    result = invoke(runner, "import", str(source), "-p", str(project_dir))
    assert result.exit_code == 0, result.output
    with open_project(project_dir) as project:
        grids = project.store.grids.all()
        assert [(g.prompt, g.origin) for g in grids] == [("", "grid0"), ("", "grid1")]
        (prompt,) = project.store.prompts.all()
        assert prompt.metadata == {"prompt_unknown": True}
    single = make_folder_source(tmp_path / "one", grids=1) / "grid0"
    (single / "prompt.txt").unlink()
    other = tmp_path / "proj2"
    assert invoke(runner, "init", str(other)).exit_code == 0
    assert invoke(runner, "import", str(single), "-p", str(other)).exit_code == 0
    assert counts(other) == (1, 3)


def test_manifest_grid_keys_keep_grids_apart_and_allow_an_unknown_prompt(
    tmp_path: Path, runner: CliRunner, project_dir: Path
) -> None:
    source = tmp_path / "src"
    rows = []
    for grid in ("original", "ablated", "figure"):
        for seed in range(2):
            path = write_image(source / grid / f"{seed}.png", (len(grid) * 20, seed * 90, 7))
            prompt = "" if grid == "figure" else "a red square"
            rows.append(
                {
                    "grid": grid,
                    "prompt": prompt,
                    "seed": seed,
                    "path": str(path.relative_to(source)),
                }
            )
    manifest = source / "manifest.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = invoke(runner, "import", str(manifest), "-p", str(project_dir))
    assert result.exit_code == 0, result.output
    with open_project(project_dir) as project:
        origins = sorted((g.origin, g.prompt) for g in project.store.grids.all())
    assert origins == [
        ("manifest.jsonl#ablated", "a red square"),
        ("manifest.jsonl#figure", ""),
        ("manifest.jsonl#original", "a red square"),
    ]


def test_grids_without_a_prompt_file_are_counted_in_a_note(
    tmp_path: Path, runner: CliRunner, project_dir: Path
) -> None:
    source = make_folder_source(tmp_path / "src", grids=3)
    (source / "grid1" / "prompt.txt").unlink()
    result = invoke(runner, "import", str(source), "-p", str(project_dir))
    assert result.exit_code == 0
    assert "note: 1 grid added without a prompt (no prompt.txt)" in result.stderr
    again = invoke(runner, "import", str(source), "-p", str(project_dir))
    assert "without a prompt" not in again.stderr  # counted once, when added


def test_a_manifest_of_grids_rather_than_images_is_one_line(
    tmp_path: Path, runner: CliRunner, project_dir: Path
) -> None:
    # One line per grid (as a dataset's index of grid folders has): every row lacks a seed
    # and a path, which used to print one error per row.
    manifest = tmp_path / "grids.jsonl"
    manifest.write_text("".join(f'{{"grid_id": "g{i}", "prompt": "p{i}"}}\n' for i in range(5)))
    result = invoke(runner, "import", str(manifest), "-p", str(project_dir))
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"memgrid: error: {manifest}: no row names an image")
