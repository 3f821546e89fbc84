"""Perceptual-hash distance (imagehash.phash): tolerant of small shifts and re-encoding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from memgrid.core.metrics.base import EmbeddingCache, Metric
from memgrid.core.metrics.features import SeedImage, SeedPixels, per_image

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

    @property
    def feature_key(self) -> str:
        """Names the per-image hash in the feature cache (docs/design.md, "Signals")."""
        return f"phash/{self.version}/hash_size={self.hash_size}"

    def hashes(
        self,
        images: Sequence[SeedImage],
        shas: Sequence[str] | None = None,
        cache: EmbeddingCache | None = None,
    ) -> np.ndarray:
        """One row of hash bits (bool) per image; hashes of known images come from `cache`."""
        bits = self.hash_size * self.hash_size
        return np.stack(
            per_image(
                cache,
                self.feature_key,
                images,
                shas,
                self._compute_hashes,
                lambda row: np.packbits(row).tobytes(),
                lambda data: np.unpackbits(np.frombuffer(data, dtype=np.uint8))[:bits].astype(bool),
            )
        )

    def _compute_hashes(self, images: list[SeedImage]) -> list[np.ndarray]:
        """imagehash.phash on all images at once: one batched DCT for the grid.

        Per image imagehash's steps: grey, Lanczos to (4 * hash_size)^2, a type-II DCT
        down the columns then along the rows (scipy.fftpack's, unnormalised), the
        hash_size^2 lowest frequencies compared with their median. Only those frequencies
        are needed, so the DCT is two small products with its cosine basis (`dct_basis`),
        which also spares scoring scipy's import (a quarter second per process).
        tests/core/test_metrics.py pins the bits against imagehash itself.
        """
        side = self.hash_size * PHASH_HIGHFREQ_FACTOR
        pixels = np.stack(
            [
                np.asarray(
                    Image.fromarray(self.hash_input(image)).resize(
                        (side, side), Image.Resampling.LANCZOS
                    )
                )
                for image in images
            ]
        )
        basis = dct_basis(side, self.hash_size)
        # Rounded to a millionth: where scipy's DCT gives exact zeros (a flat image), the
        # cosine products leave 1e-11, which would decide the comparison with the median.
        low = np.round(basis @ pixels @ basis.T, 6).reshape(len(images), -1)
        return list(low > np.median(low, axis=1, keepdims=True))

    def hash_input(self, image: SeedImage) -> np.ndarray:
        """The grey image, box-reduced (aspect kept) to about twice pHash's own input before
        its Lanczos resize.

        imagehash resamples the whole image straight down with Lanczos, which costs more
        than decoding a 512 px PNG; halving first (what Pillow's `reducing_gap` does) keeps
        the hash bits in practice at a fraction of the cost.
        """
        return SeedPixels.of(image).grey_halved(2 * self.hash_size * PHASH_HIGHFREQ_FACTOR)

    def matrix(
        self,
        images: Sequence[SeedImage],
        shas: Sequence[str],
        cache: EmbeddingCache | None = None,
    ) -> np.ndarray:
        bits = self.hashes(images, shas, cache)
        differing = (bits[:, None, :] != bits[None, :, :]).sum(axis=2)
        return differing / bits.shape[1]


def dct_basis(length: int, frequencies: int) -> np.ndarray:
    """The first `frequencies` rows of the unnormalised type-II DCT of `length` points, as
    scipy.fftpack.dct computes it: row k is 2 cos(pi k (2n + 1) / (2 length))."""
    k = np.arange(frequencies)[:, None]
    n = np.arange(length)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * length))
