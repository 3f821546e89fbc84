"""Shared plumbing of the model-based metrics (clip, sscd): load once, embed, cache, cosine.

Embeddings are cached per (model key, image sha256) through the EmbeddingCache protocol,
so an image is embedded once per model however many runs or grids see it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from memgrid.core.errors import InputError, UnavailableError
from memgrid.core.metrics.base import EmbeddingCache, Metric
from memgrid.core.metrics.features import SeedImage, pillow_image

WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


class EmbeddingMetric(Metric):
    """Cosine similarity of L2-normalised image embeddings from a model loaded on first use."""

    kind = "similarity"
    uses_cache = True
    extra = "gen"

    def __init__(
        self, threshold: float, cluster_eps: float | None = None, batch_size: int = 16
    ) -> None:
        super().__init__(threshold=threshold, cluster_eps=cluster_eps)
        self.batch_size = batch_size
        self.computed = 0  # images embedded by this instance (not served from the cache)
        self._loaded = False
        self._load_error: UnavailableError | None = None

    @property
    def model_key(self) -> str:
        """Names the weights and preprocessing: equal keys mean interchangeable embeddings."""
        raise NotImplementedError

    def _load(self) -> None:
        """Load the model; raise UnavailableError when it cannot run here."""
        raise NotImplementedError

    def find_weights(self) -> str:
        """Where the weights `_load` would read are on this machine, found without loading
        them (for `memgrid doctor`); UnavailableError or InputError when they are not."""
        raise NotImplementedError

    def _embed_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Raw embeddings (len(images), dim) of a batch; normalisation happens here after."""
        raise NotImplementedError

    def ensure_loaded(self) -> None:
        """Load once; a failure is remembered so a run does not retry it for every grid."""
        if self._load_error is not None:
            raise self._load_error
        if not self._loaded:
            try:
                self._load()
            except UnavailableError as error:
                self._load_error = error
                raise
            self._loaded = True

    def embed(self, images: Sequence[SeedImage]) -> np.ndarray:
        """L2-normalised float32 embeddings, computed in batches."""
        self.ensure_loaded()
        rows = [
            self._embed_batch(
                [pillow_image(image) for image in images[start : start + self.batch_size]]
            )
            for start in range(0, len(images), self.batch_size)
        ]
        self.computed += len(images)
        vectors = np.concatenate(rows).astype(np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def embeddings(
        self,
        images: Sequence[SeedImage],
        shas: Sequence[str],
        cache: EmbeddingCache | None = None,
    ) -> np.ndarray:
        """One embedding per image, from the cache where present; new ones are cached."""
        if len(images) != len(shas):
            raise ValueError("one sha256 per image is needed to cache embeddings")
        key = self.model_key
        cached = dict(cache.get_embeddings(key, list(dict.fromkeys(shas)))) if cache else {}
        vectors = {sha: np.frombuffer(data, dtype=np.float32) for sha, data in cached.items()}
        first_index = {sha: index for index, sha in reversed(list(enumerate(shas)))}
        missing = [sha for sha in first_index if sha not in vectors]
        if missing:
            computed = self.embed([images[first_index[sha]] for sha in missing])
            fresh = dict(zip(missing, computed, strict=True))
            vectors.update(fresh)
            if cache is not None:
                cache.put_embeddings(key, {sha: v.tobytes() for sha, v in fresh.items()})
        return np.stack([vectors[sha] for sha in shas])

    def matrix(
        self,
        images: Sequence[SeedImage],
        shas: Sequence[str],
        cache: EmbeddingCache | None = None,
    ) -> np.ndarray:
        vectors = self.embeddings(images, shas, cache)
        return np.clip(vectors @ vectors.T, -1.0, 1.0)

    @property
    def params(self) -> dict[str, Any]:
        return {**super().params, "model_key": self.model_key}


def looks_like_path(value: str) -> bool:
    """A weights argument that names a file rather than a hub tag."""
    return value.endswith(WEIGHT_SUFFIXES) or "/" in value or "\\" in value


def require_file(value: str, what: str) -> Path:
    """The path as a file, or an InputError naming it (a typo should stop the run, loudly)."""
    path = Path(value).expanduser()
    if not path.is_file():
        raise InputError(path, f"{what} not found")
    return path


_fingerprints: dict[tuple[str, int, int], str] = {}


def file_fingerprint(path: Path) -> str:
    """Short sha256 of a weights file, so a changed file never reuses stale embeddings.

    Remembered per (path, size, mtime) for the life of the process: hashing a large
    checkpoint once per run is cheap, once per grid is not.
    """
    stat = path.stat()
    memo_key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if memo_key not in _fingerprints:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _fingerprints[memo_key] = digest.hexdigest()[:16]
    return _fingerprints[memo_key]
