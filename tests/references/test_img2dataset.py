"""The must-show path: real img2dataset fetches a handful of images from a loopback server,
`memgrid refs add` stores its output, prompts link by LAION key, and `memgrid match` finds
the right reference for a grid that copies one and none for a grid that varies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memgrid.tui.cli import app
from memgrid.tui.services.project import open_project
from tests.references.helpers import copied_seeds, training_image, varied_seeds, write_grid

TRAINING = {"L-mill": "mill", "L-kiln": "kiln", "L-pier": "pier", "L-barn": "barn"}


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def image_server(tmp_path: Path) -> Iterator[str]:
    """A loopback HTTP server over a folder of training images, stopped after the test."""
    served = tmp_path / "served"
    served.mkdir()
    for name in TRAINING.values():
        training_image(name).save(served / f"{name}.png")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def run_img2dataset(url_list: Path, output: Path) -> None:
    executable = Path(sys.executable).parent / "img2dataset"
    environment = {
        **os.environ,
        "NO_ALBUMENTATIONS_UPDATE": "1",  # albumentations asks the network for new versions
        "WANDB_MODE": "disabled",
        "no_proxy": "127.0.0.1,localhost",
    }
    command = [
        str(executable),
        f"--url_list={url_list}",
        "--input_format=jsonl",
        "--url_col=url",
        "--caption_col=caption",
        '--save_additional_columns=["laion_key"]',
        f"--output_folder={output}",
        "--output_format=files",
        "--processes_count=1",
        "--thread_count=4",
        "--resize_mode=no",
        "--timeout=10",
        "--retries=0",
        "--enable_wandb=False",
    ]
    finished = subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=400, check=False
    )
    assert finished.returncode == 0, finished.stderr[-3000:]


def invoke(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_img2dataset_output_links_by_key_and_matches_the_copied_grid(
    tmp_path: Path, image_server: str, runner: CliRunner
) -> None:
    url_list = tmp_path / "laion-subset.jsonl"
    rows = [
        {"url": f"{image_server}/{name}.png", "caption": f"stock photo {name}", "laion_key": key}
        for key, name in TRAINING.items()
    ]
    rows.append({"url": f"{image_server}/gone.png", "caption": "404", "laion_key": "L-gone"})
    url_list.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    fetched = tmp_path / "fetched"
    run_img2dataset(url_list, fetched)

    project = tmp_path / "project"
    invoke(runner, "init", str(project))
    # The prompts name their training image by LAION key, not by caption.
    prompts = tmp_path / "prompts.jsonl"
    prompt_rows = [
        {"prompt": "the old mill by the river", "laion_key": "L-mill"},
        {"prompt": "a kiln in the village", "laion_key": "L-kiln"},
    ]
    prompts.write_text("\n".join(json.dumps(row) for row in prompt_rows), encoding="utf-8")
    invoke(runner, "prompts", "add", str(prompts), "-p", str(project))
    grids = tmp_path / "grids"
    write_grid(grids / "copied", "the old mill by the river", copied_seeds("mill"))
    write_grid(grids / "varied", "a kiln in the village", varied_seeds("kiln"))
    invoke(runner, "import", str(grids), "-p", str(project))

    added = invoke(runner, "refs", "add", str(fetched), "-p", str(project))
    assert "4 references added, 0 already present, 0 failed; 4 in the pool" in added
    assert "2 prompts linked to one" in added
    again = invoke(runner, "refs", "add", str(fetched), "-p", str(project))
    assert "0 references added, 4 already present" in again

    matched = invoke(runner, "match", "-p", str(project))
    assert "2 grids matched against 4 references (MV 1, N 1)" in matched
    invoke(runner, "propose", "-p", str(project))
    with open_project(project) as opened:
        store = opened.store
        by_prompt = {grid.prompt: grid.id for grid in store.grids.all()}
        copied = store.scores.where(
            grid_ids=[by_prompt["the old mill by the river"]], metric="reference"
        )[-1]
        varied = store.scores.where(
            grid_ids=[by_prompt["a kiln in the village"]], metric="reference"
        )[-1]
        assert copied.values["webster"] == "MV" and copied.values["matched_seeds"] == 4
        assert copied.values["reference"]["key"] == "L-mill"
        assert copied.values["reference"]["caption"] == "stock photo mill"
        assert copied.values["reference"]["url"] == f"{image_server}/mill.png"
        assert varied.values["webster"] == "N" and varied.values["linked_references"] == 1
        proposal = store.proposals.find(by_prompt["the old mill by the river"])
        assert proposal is not None and proposal.webster is not None
        assert proposal.webster.value == "MV"
