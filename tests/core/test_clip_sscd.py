"""The weight-based metrics' plumbing on tiny models built here: no weights are downloaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from memgrid.core.demo import photo, scene
from memgrid.core.errors import InputError, UnavailableError
from memgrid.core.metrics.clip import TAG_HUB_LOCATIONS, Clip
from memgrid.core.metrics.sscd import IMAGENET_MEAN, IMAGENET_STD, Sscd

TINY_MODEL = "memgrid-tiny-clip"
TINY_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
IMAGES = [photo("a"), photo("a"), scene("b"), scene("c")]
SHAS = ["sha-a", "sha-a", "sha-b", "sha-c"]


class MemoryCache:
    """The store's embedding cache protocol over a dict, counting what crosses it."""

    def __init__(self) -> None:
        self.vectors: dict[tuple[str, str], bytes] = {}
        self.puts = 0

    def get_embeddings(self, model_key: str, shas: Sequence[str]) -> dict[str, bytes]:
        return {
            sha: self.vectors[model_key, sha] for sha in shas if (model_key, sha) in self.vectors
        }

    def put_embeddings(self, model_key: str, embeddings: Mapping[str, bytes]) -> None:
        self.puts += len(embeddings)
        for sha, data in embeddings.items():
            self.vectors[model_key, sha] = data


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny open_clip architecture registered by config, its random weights saved 3 ways."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("clip")
    config_file = folder / f"{TINY_MODEL}.json"
    config_file.write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(config_file)
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_MODEL, pretrained=None)
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    torch.save(state, folder / "tiny.pt")
    save_file(state, folder / "tiny.safetensors")
    local_dir = folder / "local"
    local_dir.mkdir()
    (local_dir / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CONFIG}))
    save_file(state, local_dir / "open_clip_model.safetensors")
    return {"pt": folder / "tiny.pt", "safetensors": folder / "tiny.safetensors", "dir": local_dir}


def test_clip_embeddings_have_the_model_width_and_unit_norm(tiny_weights):
    metric = Clip(model=TINY_MODEL, pretrained=str(tiny_weights["pt"]))
    vectors = metric.embeddings(IMAGES, SHAS)
    assert vectors.shape == (4, 16) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert metric.computed == 3  # the repeated sha is embedded once
    matrix = metric.matrix(IMAGES, SHAS)
    assert matrix[0, 1] == pytest.approx(1.0)
    assert np.allclose(matrix, matrix.T)


def test_clip_is_deterministic_and_formats_agree(tiny_weights):
    from_pt = Clip(model=TINY_MODEL, pretrained=str(tiny_weights["pt"])).embeddings(IMAGES, SHAS)
    again = Clip(model=TINY_MODEL, pretrained=str(tiny_weights["pt"])).embeddings(IMAGES, SHAS)
    from_safetensors = Clip(model=TINY_MODEL, pretrained=str(tiny_weights["safetensors"]))
    from_dir = Clip(model=f"local-dir:{tiny_weights['dir']}", pretrained=None)
    assert np.array_equal(from_pt, again)
    assert np.allclose(from_pt, from_safetensors.embeddings(IMAGES, SHAS), atol=1e-6)
    assert np.allclose(from_pt, from_dir.embeddings(IMAGES, SHAS), atol=1e-6)


def test_clip_from_a_cached_hub_snapshot(tiny_weights, tmp_path):
    """A repo already in the Hugging Face cache loads offline, laid out as a local-dir."""
    snapshot = tmp_path / "models--memgrid--tiny" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (tmp_path / "models--memgrid--tiny" / "refs").mkdir()
    (tmp_path / "models--memgrid--tiny" / "refs" / "main").write_text("0123abcd")
    for source in tiny_weights["dir"].iterdir():
        (snapshot / source.name).write_bytes(source.read_bytes())
    metric = Clip(model="hf-hub:memgrid/tiny", pretrained=None, hub_cache_dir=tmp_path)
    reference = Clip(model=TINY_MODEL, pretrained=str(tiny_weights["pt"]))
    assert np.allclose(
        metric.embeddings(IMAGES, SHAS), reference.embeddings(IMAGES, SHAS), atol=1e-6
    )
    assert metric.model_key == "open_clip:hf-hub:memgrid/tiny"


def test_clip_second_run_computes_nothing(tiny_weights):
    cache = MemoryCache()
    first = Clip(model=TINY_MODEL, pretrained=str(tiny_weights["pt"]))
    first_matrix = first.matrix(IMAGES, SHAS, cache)
    assert (first.computed, cache.puts) == (3, 3)
    second = Clip(model=TINY_MODEL, pretrained=str(tiny_weights["pt"]))
    assert np.array_equal(second.matrix(IMAGES, SHAS, cache), first_matrix)
    assert second.computed == 0 and cache.puts == 3
    assert second._model is None  # fully cached: the model was never even loaded


def test_clip_cache_keys_follow_the_weights_content(tiny_weights, tmp_path):
    copy = tmp_path / "renamed.pt"
    copy.write_bytes(tiny_weights["pt"].read_bytes())
    original = Clip(model=TINY_MODEL, pretrained=str(tiny_weights["pt"]))
    assert Clip(model=TINY_MODEL, pretrained=str(copy)).model_key == original.model_key
    assert original.model_key != Clip(model=TINY_MODEL, pretrained="openai").model_key


def test_clip_scores_a_grid_with_the_shared_keys(tiny_weights):
    metric = Clip(model=TINY_MODEL, pretrained=str(tiny_weights["pt"]))
    score = metric.score(3, [photo("same")] * 4, ["s"] * 4, MemoryCache())
    assert score.available and score.metric == "clip"
    assert score.values["clique_share"] == 1.0
    assert score.values["median_similarity"] == pytest.approx(1.0)
    assert score.params["pretrained"] == str(tiny_weights["pt"])
    assert score.params["model_key"].startswith(f"open_clip:{TINY_MODEL}:sha256-")


def test_clip_text_embeddings_share_the_image_space(tiny_weights):
    metric = Clip(model=TINY_MODEL, pretrained=str(tiny_weights["pt"]))
    texts = metric.embed_texts(["a lighthouse at dusk", "a red kite"])
    assert texts.shape == (2, 16)
    assert np.allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)


def test_clip_without_weights_is_unavailable_not_faked(tmp_path):
    metric = Clip(model="ViT-B-32", pretrained="laion2b_s34b_b79k", hub_cache_dir=tmp_path)
    with pytest.raises(UnavailableError, match="not in the local Hugging Face cache"):
        metric.score(1, IMAGES, SHAS)
    with pytest.raises(UnavailableError):  # remembered: not retried for every grid
        metric.ensure_loaded()
    stored = metric.unavailable(1, "no weights")
    assert (stored.available, stored.values, stored.note) == (False, {}, "no weights")
    with pytest.raises(UnavailableError, match="no CLIP weights"):
        Clip(model="ViT-B-32", pretrained=None).ensure_loaded()
    with pytest.raises(UnavailableError, match="unknown open_clip model"):
        Clip(model="no-such-model", pretrained="x").ensure_loaded()


def test_the_tags_looked_up_before_open_clip_are_where_open_clip_hosts_them():
    import open_clip

    for (model, tag), location in TAG_HUB_LOCATIONS.items():
        assert open_clip.get_pretrained_cfg(model, tag)["hf_hub"] == location


def test_missing_default_weights_are_reported_without_importing_torch(tmp_path):
    """A run without the default CLIP weights (not cached, hub unreachable) learns it at once,
    not after the seconds open_clip's import of torch takes."""
    code = (
        "import sys\n"
        "from memgrid.core.errors import UnavailableError\n"
        "from memgrid.core.metrics.clip import Clip\n"
        "try:\n"
        "    Clip(hub_cache_dir=sys.argv[1]).ensure_loaded()\n"
        "except UnavailableError as error:\n"
        "    print(error)\n"
        "print(sorted({'torch', 'open_clip'} & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        check=True,
    )
    message, imported = result.stdout.splitlines()
    assert "CLIP weights ViT-B-32/laion2b_s34b_b79k: not in the local Hugging Face cache" in message
    assert (
        "hf download laion/CLIP-ViT-B-32-laion2B-s34B-b79K open_clip_model.safetensors" in message
    )
    assert imported == "[]"


def test_clip_missing_or_corrupt_checkpoint_names_the_file(tiny_weights, tmp_path):
    with pytest.raises(InputError, match=r"missing\.pt"):
        Clip(model=TINY_MODEL, pretrained=str(tmp_path / "missing.pt")).ensure_loaded()
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"not weights")
    with pytest.raises(InputError, match=r"corrupt\.safetensors"):
        Clip(model=TINY_MODEL, pretrained=str(corrupt)).ensure_loaded()


# ---- sscd -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_sscd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TorchScript stand-in for SSCD: strided conv, pooling, a linear descriptor."""
    import torch

    class TinyDescriptor(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, kernel_size=8, stride=8)
            self.head = torch.nn.Linear(8, 6)

        def forward(self, batch: torch.Tensor) -> torch.Tensor:
            pooled = torch.relu(self.conv(batch)).mean(dim=(2, 3))
            return self.head(pooled)

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sscd") / "tiny_sscd.torchscript.pt"
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", FutureWarning
        )  # torch.jit is deprecated; SSCD still ships it
        torch.jit.script(TinyDescriptor()).save(str(path))
    return path


def test_sscd_preprocessing_follows_the_readme():
    metric = Sscd()
    flat = Image.new("RGB", (512, 256), (255, 128, 0))
    tensor = metric.preprocess(flat)
    assert tensor.shape == (3, 288, 576)  # short side 288, aspect kept
    expected = (np.array([255, 128, 0]) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    assert np.allclose(tensor[:, 100, 100], expected, atol=1e-5)


def test_sscd_embeds_normalises_and_caches(tiny_sscd):
    cache = MemoryCache()
    metric = Sscd(tiny_sscd)
    vectors = metric.embeddings(IMAGES, SHAS, cache)
    assert vectors.shape == (4, 6)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    score = Sscd(tiny_sscd).score(1, IMAGES, SHAS, cache)
    assert score.values["threshold"] == 0.5 and score.params["cluster_eps"] == 0.5
    assert score.params["model_key"].startswith("sscd:sha256-")
    assert cache.puts == 3


def test_sscd_mixed_sizes_are_embedded_one_by_one(tiny_sscd):
    images = [photo("a"), photo("a").resize((300, 200))]
    assert Sscd(tiny_sscd).embeddings(images, ["x", "y"]).shape == (2, 6)


def test_sscd_without_a_model_is_unavailable(tmp_path):
    with pytest.raises(UnavailableError, match="--sscd"):
        Sscd().score(1, IMAGES, SHAS)
    not_torchscript = tmp_path / "model.pt"
    not_torchscript.write_bytes(b"junk")
    with pytest.raises(InputError, match=r"model\.pt"):
        Sscd(not_torchscript).ensure_loaded()
