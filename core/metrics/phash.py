"""Perceptual-hash distance (imagehash.phash): tolerant of small shifts and re-encoding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from memgrid.core.metrics.base import EmbeddingCache, Metric
from PIL import Image

DEFAULT_HASH_SIZE = 8  # imagehash's default: a 64-bit hash from the 8x8 low DCT frequencies
# Near-duplicate at Hamming <= 10 of 64 bits: the cut-off commonly used with 64-bit pHash
# for "same image, re-encoded or slightly edited" (distinct images sit near 32 bits).
DEFAULT_MAX_BITS = 10
PHASH_HIGHFREQ_FACTOR = 4  # imagehash.phash's default: it hashes a (4 * hash_size)^2 image


class PHash(Metric):
    """Normalized Hamming distance between pHashes: differing bits / hash bits, in [0, 1]."""

    name = "phash"
    kind = "distance"
    version = "1"

    def __init__(
        self,
        hash_size: int = DEFAULT_HASH_SIZE,
        threshold: float | None = None,
        cluster_eps: float | None = None,
    ) -> None:
        bits = hash_size * hash_size
        if threshold is None:
            threshold = DEFAULT_MAX_BITS / bits
        super().__init__(threshold=threshold, cluster_eps=cluster_eps)
        self.hash_size = hash_size

    @property
    def params(self) -> dict[str, Any]:
        return {**super().params, "hash_size": self.hash_size}

    def hashes(self, images: Sequence[Image.Image]) -> np.ndarray:
        """One row of hash bits (bool) per image."""
        import imagehash  # deferred: pulls in scipy

        return np.stack(
            [
                np.asarray(
                    imagehash.phash(self.hash_input(image), hash_size=self.hash_size).hash,
                    dtype=bool,
                ).ravel()
                for image in images
            ]
        )

    def hash_input(self, image: Image.Image) -> Image.Image:
        """The image box-reduced to about twice pHash's own input before its Lanczos resize.

        imagehash resamples the whole image straight down with Lanczos, which costs more
        than decoding a 512 px PNG; an integer box reduction first (what Pillow's
        `reducing_gap` does) keeps the hash bits in practice at a fraction of the cost.
        """
        target = 2 * self.hash_size * PHASH_HIGHFREQ_FACTOR
        factor = min(image.size) // target
        return image.reduce(factor) if factor >= 2 else image

    def matrix(
        self,
        images: Sequence[Image.Image],
        shas: Sequence[str],
        cache: EmbeddingCache | None = None,
    ) -> np.ndarray:
        bits = self.hashes(images)
        differing = (bits[:, None, :] != bits[None, :, :]).sum(axis=2)
        return differing / bits.shape[1]
