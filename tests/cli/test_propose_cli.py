"""`memgrid propose` and `memgrid entities add` on grids built with a known truth."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from memgrid.core.attribution import clip_evidence
from memgrid.core.errors import UnavailableError
from memgrid.core.records import Entity, Score
from memgrid.tui.cli import app
from memgrid.tui.services.project import Project, open_project
from memgrid.tui.services.proposing import clip_encoder, propose_all, propose_then_activate

# The tiny open_clip model of the clip metric's tests, reused as a fixture here.
from tests.core.test_clip_sscd import TINY_MODEL, tiny_weights  # noqa: F401

SIZE = 64
SEEDS = 4
COPY_PROMPT = "a misty harbour at dawn, after Orla Quay"
VARIED_PROMPT = "a forest path in autumn"
TEMPLATE_PROMPT = "a mountain lake at sunrise"
UNSCORED_PROMPT = "a red kite over green hills"


def noise(seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def with_corner_mark(seed: int) -> Image.Image:
    """A varied scene with the same mark in the bottom-right 16x16 (two 8x8-map tiles wide)."""
    pixels = np.asarray(noise(seed)).copy()
    pixels[-8:, -16:] = 255
    pixels[-8:, -12:-4] = 0
    return Image.fromarray(pixels)


def add_grid(project: Project, prompt: str, images: Sequence[Image.Image]) -> int:
    stored = [project.images.put_image(image, seed) for seed, image in enumerate(images)]
    grid_id, _ = project.store.grids.add(prompt, stored, model="test-model")
    return grid_id


@pytest.fixture
def project_dir(project: Project, runner: CliRunner) -> Path:
    """Four grids: a copy, free variation, a template, and one left unscored."""
    add_grid(project, COPY_PROMPT, [noise(1)] * SEEDS)
    add_grid(project, VARIED_PROMPT, [noise(10 + seed) for seed in range(SEEDS)])
    add_grid(project, TEMPLATE_PROMPT, [with_corner_mark(20 + seed) for seed in range(SEEDS)])
    root = project.root
    project.close()
    scored = runner.invoke(app, ["score", "-p", str(root), "--metric", "tiled-l2,phash"])
    assert scored.exit_code == 0, scored.output
    with open_project(root) as reopened:
        add_grid(reopened, UNSCORED_PROMPT, [noise(30 + seed) for seed in range(SEEDS)])
    return root


def proposals(root: Path) -> dict[str, tuple[str, str | None, list[str]]]:
    """prompt -> (category, Webster type, reason texts) under the active set."""
    with open_project(root) as opened:
        store = opened.store
        found = {}
        for grid_id in store.grids.ids_all():
            proposal = store.proposals.find(grid_id)
            if proposal is not None:
                webster = proposal.webster.value if proposal.webster else None
                texts = [reason.text for reason in proposal.reasons]
                found[store.grids.get(grid_id).prompt] = (proposal.category.value, webster, texts)
        return found


def test_first_propose_creates_v0_and_proposes_every_scored_grid(
    project_dir: Path, runner: CliRunner
) -> None:
    result = runner.invoke(app, ["propose", "-p", str(project_dir)])
    assert result.exit_code == 0, result.output
    assert "Threshold set default v0 stored and activated." in result.output
    assert "3 of 4 grids proposed under default v0" in result.output
    assert "1 grids not scored yet" in result.output
    found = proposals(project_dir)
    assert found[COPY_PROMPT][:2] == ("unintended", "MV")
    assert found[VARIED_PROMPT][:2] == ("none", "N")
    assert found[TEMPLATE_PROMPT][:2] == ("unintended", "TV")
    assert UNSCORED_PROMPT not in found
    assert any("4/4 seeds near-identical" in text for text in found[COPY_PROMPT][2])
    status = json.loads(runner.invoke(app, ["status", "-p", str(project_dir), "--json"]).output)
    assert status["active_thresholds"] == "default v0"
    assert status["proposals"] == {"explicit": 0, "implicit": 0, "unintended": 2, "none": 1}
    # A second run reuses the active set and replaces the proposals, not duplicates them.
    again = runner.invoke(app, ["propose", "-p", str(project_dir), "--json"])
    report = json.loads(again.output)
    assert report["created"] is None and report["proposed"] == 3
    assert report["categories"] == {"unintended": 2, "none": 1}


def test_lexicon_entry_makes_the_named_copy_explicit(
    project_dir: Path, runner: CliRunner, tmp_path: Path
) -> None:
    lexicon = tmp_path / "entities.txt"
    lexicon.write_text("# works we know\nOrla Quay | work | the harbour print\n")
    added = runner.invoke(app, ["entities", "add", str(lexicon), "-p", str(project_dir)])
    assert added.exit_code == 0, added.output
    assert "1 entries added or updated (1 in the lexicon)" in added.output
    runner.invoke(app, ["propose", "-p", str(project_dir)])
    category, webster, texts = proposals(project_dir)[COPY_PROMPT]
    assert (category, webster) == ("explicit", "MV")
    assert any("prompt names the work 'Orla Quay' (work, lexicon)" in text for text in texts)


def test_malformed_entities_file_names_the_line(
    project_dir: Path, runner: CliRunner, tmp_path: Path
) -> None:
    lexicon = tmp_path / "entities.txt"
    lexicon.write_text("Orla Quay | work\nSomeone | celebrity\n")
    result = runner.invoke(app, ["entities", "add", str(lexicon), "-p", str(project_dir)])
    assert result.exit_code == 1
    assert f"{lexicon}:line 2: type 'celebrity' is not one of person, work, brand, place" in (
        result.output
    )
    with open_project(project_dir) as opened:
        assert opened.store.entities.all() == []  # nothing stored from a bad file


def test_threshold_file_becomes_a_new_active_version(
    project_dir: Path, runner: CliRunner, tmp_path: Path
) -> None:
    runner.invoke(app, ["propose", "-p", str(project_dir)])
    strict = tmp_path / "strict.toml"
    strict.write_text('notes = "needs every seed"\ntau_mem = 1.0\ntau_region = 0.5\n')
    result = runner.invoke(app, ["propose", "-p", str(project_dir), "--thresholds", str(strict)])
    assert result.exit_code == 0, result.output
    assert "Threshold set strict v0 stored and activated." in result.output
    found = proposals(project_dir)
    assert found[COPY_PROMPT][0] == "unintended"  # 4/4 still meets tau_mem = 1.0
    assert found[TEMPLATE_PROMPT][0] == "none"  # the small mark is below tau_region = 0.5
    with open_project(project_dir) as opened:
        active = opened.store.thresholds.find_active("test-model")
        assert active is not None and active.label == "strict v0"
        assert active.values["tau_mem"] == 1.0 and active.values["tiled_l2_delta"] == 0.15
    # Naming the stored default set switches back to it.
    back = runner.invoke(app, ["propose", "-p", str(project_dir), "-t", "default"])
    assert back.exit_code == 0 and "under default v0" in back.output
    assert proposals(project_dir)[TEMPLATE_PROMPT][0] == "unintended"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("tau_mem = 2\n", "tau_mem: tau_mem = 2 is out of range [0, 1]"),
        ("tau_typo = 0.1\n", "tau_typo: unknown threshold 'tau_typo'"),
    ],
)
def test_bad_threshold_file_is_one_line_error(
    project_dir: Path, runner: CliRunner, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    result = runner.invoke(app, ["propose", "-p", str(project_dir), "-t", str(path)])
    assert result.exit_code == 1
    assert f"memgrid: error: {path}:{message}" in result.output
    with open_project(project_dir) as opened:
        assert opened.store.thresholds.all() == []


def test_unknown_threshold_set_name(project_dir: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["propose", "-p", str(project_dir), "-t", "nosuch"])
    assert result.exit_code == 1
    assert (
        "memgrid: error: --thresholds 'nosuch': no threshold set or file of this name "
        "(none stored yet)" in result.output
    )


class KeywordEncoder:
    """Stands in for CLIP: crops embed on axis 0, 'Orla Quay' on axis 0, other text on axis 1."""

    def __init__(self) -> None:
        self.calls: list[list[tuple[int, int]]] = []  # crop sizes, one list per grid

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.calls.append([image.size for image in images])
        return np.tile([1.0, 0.0], (len(images), 1))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([[1.0, 0.0] if "Orla Quay" in text else [0.0, 1.0] for text in texts])


def clip_score(grid_id: int) -> Score:
    values = {
        "n_seeds": SEEDS,
        "clique_share": 1.0,
        "cluster_share": 1.0,
        "median_similarity": 0.99,
        "threshold": 0.9,
    }
    params = {"model": "ViT-B-32", "pretrained": "fake.pt", "threshold": 0.9}
    return Score(grid_id=grid_id, metric="clip", params=params, version="1", values=values)


def test_clip_attribution_uses_the_template_crop(project_dir: Path) -> None:
    encoder = KeywordEncoder()
    with open_project(project_dir) as opened:
        store = opened.store
        template_id = next(
            g for g in store.grids.ids_all() if store.grids.get(g).prompt == TEMPLATE_PROMPT
        )
        copy_id = next(g for g in store.grids.ids_all() if store.grids.get(g).prompt == COPY_PROMPT)
        store.scores.add(clip_score(template_id))
        store.scores.add(clip_score(copy_id))
        store.entities.add_many([Entity("Orla Quay", "work")])
        report = propose_all(opened, encoder_factory=lambda score: encoder)
        assert report.clip_unavailable is None
        template = store.proposals.find(template_id)
        copy = store.proposals.find(copy_id)
    assert template is not None and copy is not None
    # Grids in id order: the copy is embedded whole, the template by its region's box.
    copy_crops, template_crops = encoder.calls
    assert copy_crops == [(SIZE, SIZE)] * SEEDS
    assert len(set(template_crops)) == 1 and len(template_crops) == SEEDS
    width, height = template_crops[0]
    assert width < SIZE and height < SIZE
    # The crop looks like Orla Quay, which the template prompt never mentions.
    assert template.category.value == "unintended"
    assert any("CLIP matches the region to Orla Quay" in r.text for r in template.reasons)
    # The copy's prompt names Orla Quay and CLIP agrees the copy shows it.
    assert copy.category.value == "explicit"
    assert any("prompt names Orla Quay; CLIP matches the copy" in r.text for r in copy.reasons)


def test_clip_weights_that_fail_to_load_leave_attribution_unavailable(project_dir: Path) -> None:
    def no_weights(score: Score) -> KeywordEncoder:
        raise UnavailableError("CLIP weights fake.pt are not on this machine")

    with open_project(project_dir) as opened:
        store = opened.store
        copy_id = next(g for g in store.grids.ids_all() if store.grids.get(g).prompt == COPY_PROMPT)
        store.scores.add(clip_score(copy_id))
        report = propose_all(opened, encoder_factory=no_weights)
        proposal = store.proposals.find(copy_id)
    assert report.clip_unavailable == "CLIP weights fake.pt are not on this machine"
    assert proposal is not None
    assert any(
        "CLIP crop checks not applied (CLIP weights fake.pt" in r.text for r in proposal.reasons
    )


def test_accepting_a_set_recomputes_proposals(project_dir: Path) -> None:
    with open_project(project_dir) as opened:
        store = opened.store
        propose_all(opened)
        loose = store.thresholds.add("calibrated", {"tau_region": 0.9})
        report = propose_then_activate(opened, loose.id)
        assert report.threshold_sets == ["calibrated v0"]
        template_id = next(
            g for g in store.grids.ids_all() if store.grids.get(g).prompt == TEMPLATE_PROMPT
        )
        proposal = store.proposals.find(template_id)
        assert proposal is not None and proposal.threshold_set_id == loose.id
        assert proposal.category.value == "none"


@pytest.mark.slow
def test_default_encoder_is_the_clip_metric_on_tiny_weights(
    tiny_weights: dict[str, Path],  # noqa: F811 (the fixture imported above)
) -> None:
    """The real loader (core.metrics.clip) on a tiny random open_clip model: plumbing only."""
    score = Score(
        grid_id=1,
        metric="clip",
        params={"model": TINY_MODEL, "pretrained": str(tiny_weights["pt"])},
        version="1",
        values={},
    )
    encoder = clip_encoder(score)
    lexicon = [Entity("Orla Quay", "work", ("the harbour print",))]
    evidence = clip_evidence(COPY_PROMPT, [noise(1), noise(2)], lexicon, encoder)
    assert evidence.available
    assert evidence.prompt_similarity is not None and -1.0 <= evidence.prompt_similarity <= 1.0
    ((entry, similarity),) = evidence.entry_similarities
    assert entry == lexicon[0] and -1.0 <= similarity <= 1.0
    again = clip_evidence(COPY_PROMPT, [noise(1), noise(2)], lexicon, encoder)
    assert again == evidence  # deterministic
