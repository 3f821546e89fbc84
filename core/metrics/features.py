"""What a metric derives from one image alone, kept per image sha256 (hashes, descriptors).

A pHash or a set of SIFT descriptors depends on the image's bytes and the metric's
parameters only, so it is stored under (feature key, sha256) in the same cache as the
model embeddings. Re-scoring a grid with new thresholds, or scoring a grid that shares
images with another, then reads them back and decodes nothing for that metric; the
images are decoded lazily (`LazyImages`), only when some metric needs pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar, overload

from PIL import Image

from memgrid.core.images import decode_rgb
from memgrid.core.metrics.base import EmbeddingCache

Feature = TypeVar("Feature")


class FeatureCache:
    """An in-memory EmbeddingCache: what a scoring worker is handed for its grids (`known`)
    and what it computed that the store lacks (`added`), sent back to be stored."""

    def __init__(self, known: Mapping[str, Mapping[str, bytes]] | None = None) -> None:
        self.known: dict[str, dict[str, bytes]] = {
            key: dict(found) for key, found in (known or {}).items()
        }
        self.added: dict[str, dict[str, bytes]] = {}

    def get_embeddings(self, model_key: str, shas: Iterable[str]) -> dict[str, bytes]:
        found = self.known.get(model_key, {})
        return {sha: found[sha] for sha in shas if sha in found}

    def put_embeddings(self, model_key: str, embeddings: Mapping[str, bytes]) -> None:
        self.known.setdefault(model_key, {}).update(embeddings)
        self.added.setdefault(model_key, {}).update(embeddings)


def per_image(
    cache: EmbeddingCache | None,
    key: str,
    images: Sequence[Image.Image],
    shas: Sequence[str] | None,
    compute: Callable[[list[Image.Image]], list[Feature]],
    encode: Callable[[Feature], bytes],
    decode: Callable[[bytes], Feature],
) -> list[Feature]:
    """Each image's feature in order: read from `cache` where known, else computed in one
    batch (once per distinct sha256, so a repeated image is decoded once) and stored.
    Without `shas` every image is computed and nothing is cached."""
    if shas is None:
        cache, shas = None, [str(index) for index in range(len(images))]
    found = cache.get_embeddings(key, shas) if cache is not None else {}
    features: dict[str, Feature] = {sha: decode(data) for sha, data in found.items()}
    missing = {sha: index for index, sha in reversed(list(enumerate(shas))) if sha not in found}
    if missing:
        first_of_each = sorted(missing.values())
        computed = compute([images[index] for index in first_of_each])
        fresh = {
            shas[index]: feature for index, feature in zip(first_of_each, computed, strict=True)
        }
        features.update(fresh)
        if cache is not None:
            cache.put_embeddings(key, {sha: encode(feature) for sha, feature in fresh.items()})
    return [features[sha] for sha in shas]


class LazyImages(Sequence[Image.Image]):
    """A grid's images read from disk on first use and kept: one decode each, none for an
    image no metric needs pixels of. A bad file raises InputError when first touched."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)
        self._decoded: list[Image.Image | None] = [None] * len(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    @overload
    def __getitem__(self, index: int) -> Image.Image: ...

    @overload
    def __getitem__(self, index: slice) -> list[Image.Image]: ...

    def __getitem__(self, index: int | slice) -> Image.Image | list[Image.Image]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        image = self._decoded[index]
        if image is None:
            image = self._decoded[index] = decode_rgb(self.paths[index])
        return image

    @property
    def decoded(self) -> int:
        """How many images were actually decoded so far."""
        return sum(image is not None for image in self._decoded)
