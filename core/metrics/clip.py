"""CLIP image-embedding cosine (open_clip): semantic sameness where pixels differ.

Weights come from an open_clip model name plus a pretrained tag or a local checkpoint
file, a `local-dir:` folder (open_clip_config.json + weights), or an `hf-hub:` repo. Hub
weights (an `hf-hub:` repo, or a tag that open_clip hosts on the hub) come from the local
Hugging Face cache, downloaded into it when the hub can be reached (core/hub.py); offline,
or for weights open_clip fetches from elsewhere, missing weights raise UnavailableError and
the grid's score says so.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from memgrid.core.errors import InputError, UnavailableError
from memgrid.core.extras import require_extra
from memgrid.core.hub import cached_file, hub_file
from memgrid.core.metrics.embedding import (
    WEIGHT_SUFFIXES,
    EmbeddingMetric,
    file_fingerprint,
    looks_like_path,
    require_file,
)

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
# CLIP image-image cosine of two different photos of one concept is typically 0.7-0.85;
# at 0.9 and above the seeds show the same identity or composition. A starting point for
# calibration (docs/design.md, "Calibration and agreement"), not a literature constant like SSCD's 0.5.
DEFAULT_THRESHOLD = 0.9
LOCAL_DIR = "local-dir:"
HF_HUB = "hf-hub:"
# open_clip's file names on the hub (open_clip.constants), safetensors preferred.
HUB_WEIGHT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
HUB_CONFIG_NAME = "open_clip_config.json"
LOCAL_CHECKPOINT = "pass a local checkpoint with --clip-pretrained"
# Where open_clip hosts a tag's weights (its `hf_hub`), for tags looked up before open_clip is
# imported: open_clip imports torch, seconds of work that a run without the weights (not
# cached, hub unreachable) would spend only to report them missing. Checked against open_clip
# in tests/core/test_clip_sscd.py; any other tag is looked up through open_clip itself.
TAG_HUB_LOCATIONS = {(DEFAULT_MODEL, DEFAULT_PRETRAINED): "laion/CLIP-ViT-B-32-laion2B-s34B-b79K/"}


class Clip(EmbeddingMetric):
    """open_clip image embeddings compared by cosine similarity."""

    name = "clip"
    version = "1"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        pretrained: str | None = DEFAULT_PRETRAINED,
        threshold: float = DEFAULT_THRESHOLD,
        cluster_eps: float | None = None,
        batch_size: int = 16,
        device: str = "cpu",
        hub_cache_dir: str | Path | None = None,
    ) -> None:
        super().__init__(threshold=threshold, cluster_eps=cluster_eps, batch_size=batch_size)
        self.model_name = model
        self.pretrained = pretrained or None
        self.device = device
        # Where to look for hub files; None is huggingface_hub's own cache (HF_HOME).
        self.hub_cache_dir = str(hub_cache_dir) if hub_cache_dir is not None else None
        self._model: Any = None
        self._preprocess: Any = None
        self._model_key: str | None = None

    @property
    def params(self) -> dict[str, Any]:
        return {**super().params, "model": self.model_name, "pretrained": self.pretrained}

    @property
    def model_key(self) -> str:
        if self._model_key is None:
            self._model_key = f"open_clip:{self._weights_identity()}"
        return self._model_key

    def _weights_identity(self) -> str:
        """Tags and hub repos name their weights; local files are named by their content."""
        if self.model_name.startswith(LOCAL_DIR):
            folder = self._local_dir()
            digest = hashlib.sha256()
            for path in sorted(folder.iterdir()):
                if path.name == HUB_CONFIG_NAME or path.suffix in WEIGHT_SUFFIXES:
                    digest.update(path.name.encode() + file_fingerprint(path).encode())
            return f"local-dir:sha256-{digest.hexdigest()[:16]}"
        if self.model_name.startswith(HF_HUB):
            return self.model_name
        if self.pretrained and looks_like_path(self.pretrained):
            weights = require_file(self.pretrained, "CLIP checkpoint")
            return f"{self.model_name}:sha256-{file_fingerprint(weights)}"
        return f"{self.model_name}:{self.pretrained}"

    def _local_dir(self) -> Path:
        folder = Path(self.model_name[len(LOCAL_DIR) :]).expanduser()
        if not (folder / HUB_CONFIG_NAME).is_file():
            raise InputError(folder, f"not an open_clip folder (no {HUB_CONFIG_NAME})")
        return folder

    def find_weights(self) -> str:
        require_extra("gen", "clip")
        self._fetch_known_tag_weights()
        import open_clip

        model_name, pretrained, _ = self._resolve_weights(open_clip)
        return pretrained or model_name.removeprefix(LOCAL_DIR)

    def _load(self) -> None:
        require_extra("gen", "clip")
        self._fetch_known_tag_weights()
        import open_clip

        model_name, pretrained, preprocess_overrides = self._resolve_weights(open_clip)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name, pretrained=pretrained, device=self.device, **preprocess_overrides
            )
        except Exception as error:  # torch, safetensors and open_clip each raise their own types
            source = pretrained or model_name
            raise InputError(source, f"cannot load CLIP weights ({error})") from None
        model.eval()
        self._model, self._preprocess = model, preprocess

    def _resolve_weights(self, open_clip: Any) -> tuple[str, str | None, dict[str, Any]]:
        """(model name, checkpoint path, preprocessing) found on disk, or UnavailableError."""
        if self.model_name.startswith(LOCAL_DIR):
            return f"{LOCAL_DIR}{self._local_dir()}", None, {}
        if self.model_name.startswith(HF_HUB):
            repo = self.model_name[len(HF_HUB) :]
            what = f"CLIP model {self.model_name}"
            config = hub_file(repo, [HUB_CONFIG_NAME], self.hub_cache_dir, what, LOCAL_CHECKPOINT)
            hub_file(repo, HUB_WEIGHT_NAMES, self.hub_cache_dir, what, LOCAL_CHECKPOINT)
            # A cached hub snapshot is laid out exactly like an open_clip local-dir.
            return f"{LOCAL_DIR}{config.parent}", None, {}
        if self.model_name not in open_clip.list_models():
            raise UnavailableError(f"unknown open_clip model {self.model_name!r}")
        if not self.pretrained:
            raise UnavailableError(
                f"no CLIP weights given for {self.model_name} "
                "(pass a pretrained tag or a checkpoint)"
            )
        if looks_like_path(self.pretrained):
            return self.model_name, str(require_file(self.pretrained, "CLIP checkpoint")), {}
        tag_config = open_clip.get_pretrained_cfg(self.model_name, self.pretrained)
        if not tag_config:
            raise UnavailableError(
                f"{self.pretrained!r} is neither a known open_clip tag for {self.model_name} "
                "nor a checkpoint file"
            )
        weights = self._cached_tag_weights(tag_config)
        if weights is None and tag_config.get("hf_hub"):
            weights = self._tag_weights_from_hub(tag_config["hf_hub"])
        if weights is None:
            raise UnavailableError(
                f"CLIP weights {self.model_name}/{self.pretrained} are not on this machine "
                "(open_clip hosts them off the hub; pass a local checkpoint with --clip-pretrained)"
            )
        overrides = {
            "image_mean": tag_config.get("mean"),
            "image_std": tag_config.get("std"),
            "image_interpolation": tag_config.get("interpolation"),
            "image_resize_mode": tag_config.get("resize_mode"),
        }
        return self.model_name, str(weights), overrides

    def _fetch_known_tag_weights(self) -> None:
        """A tag of TAG_HUB_LOCATIONS: its weights from the cache or the hub, before open_clip
        is imported; missing and unreachable, UnavailableError at once."""
        location = TAG_HUB_LOCATIONS.get((self.model_name, self.pretrained or ""))
        if location is not None:
            self._tag_weights_from_hub(location)

    def _tag_weights_from_hub(self, location: str) -> Path:
        """A tag's weights at open_clip's `hf_hub` location ('org/repo/' names the repo's
        default weights, 'org/repo/file' one file): cached, downloaded, or UnavailableError."""
        repo, filename = os.path.split(location)
        what = f"CLIP weights {self.model_name}/{self.pretrained}"
        candidates = _hub_weight_candidates(filename)
        return hub_file(repo, candidates, self.hub_cache_dir, what, LOCAL_CHECKPOINT)

    def _cached_tag_weights(self, tag_config: dict[str, Any]) -> Path | None:
        """Where open_clip would have downloaded a tag's weights, if they are there."""
        if tag_config.get("file"):
            path = Path(tag_config["file"])
            return path if path.is_file() else None
        if tag_config.get("hf_hub"):
            # 'org/repo/' names the repo's default weights, 'org/repo/file' one file.
            repo, filename = os.path.split(tag_config["hf_hub"])
            for name in _hub_weight_candidates(filename):
                found = self._cached_hub_file(repo, name)
                if found is not None:
                    return found
        if tag_config.get("url"):
            path = Path("~/.cache/clip").expanduser() / os.path.basename(tag_config["url"])
            return path if path.is_file() else None
        return None

    def _cached_hub_file(self, repo: str, filename: str) -> Path | None:
        try:
            return cached_file(repo, filename, cache_dir=self.hub_cache_dir)
        except ImportError:
            return None

    def _embed_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        import torch

        batch = torch.stack([self._preprocess(image) for image in images]).to(self.device)
        with torch.inference_mode():
            features = self._model.encode_image(batch)
        return features.float().cpu().numpy()

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised text embeddings in the same space (prompt-to-region attribution)."""
        import open_clip
        import torch

        self.ensure_loaded()
        tokenizer = open_clip.get_tokenizer(self._tokenizer_name())
        with torch.inference_mode():
            features = self._model.encode_text(tokenizer(list(texts)).to(self.device))
        vectors = features.float().cpu().numpy()
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def _tokenizer_name(self) -> str:
        if self.model_name.startswith(HF_HUB):
            config = self._cached_hub_file(self.model_name[len(HF_HUB) :], HUB_CONFIG_NAME)
            if config is not None:
                return f"{LOCAL_DIR}{config.parent}"
        return self.model_name


def _hub_weight_candidates(filename: str) -> list[str]:
    """The file names open_clip tries for a hub tag, safetensors first (pretrained.py)."""
    if not filename:
        return list(HUB_WEIGHT_NAMES)
    names = []
    if filename.endswith((".bin", ".pth")):
        names.append(filename[:-4] + ".safetensors")
    names.append(filename)
    return names
