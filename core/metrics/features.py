"""What a metric derives from one image alone, kept per image sha256 (hashes, descriptors).

A pHash or a set of keypoint descriptors depends on the image's bytes and the metric's
parameters only, so it is stored under (feature key, sha256) in the same cache as the
model embeddings. Re-scoring a grid with new thresholds, or scoring a grid that shares
images with another, then reads them back and decodes nothing for that metric; the
images are decoded lazily (`LazyImages`), only when some metric needs pixels, and each
decoded seed (`SeedPixels`) keeps the grey and resized views the metrics derive from it,
so one decode and one grey conversion serve every metric of the grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

import numpy as np
from PIL import Image

from memgrid.core.images import decode_pixels
from memgrid.core.metrics.base import EmbeddingCache

Feature = TypeVar("Feature")


class SeedPixels:
    """One decoded seed as an RGB uint8 array, with the views metrics derive from it.

    The grey image and the small squares (pHash's, the keypoints', the gradient layout's)
    are computed once per seed, whichever metric asks first, and kept (read-only, since
    metrics share them): the metrics of one grid then share one decode and one grey
    conversion. A square is area-averaged where it shrinks (a box filter, as Pillow's
    reducing resize) and bilinear where it grows (area averaging would repeat pixels).
    """

    def __init__(self, rgb: np.ndarray) -> None:
        self.rgb = _read_only(rgb)
        self._grey: np.ndarray | None = None
        self._grey_levels: list[np.ndarray] = []  # the grey image, then each halving
        self._grey_squares: dict[tuple[int, float], np.ndarray] = {}
        self._image: Image.Image | None = None

    @classmethod
    def of(cls, image: SeedImage) -> SeedPixels:
        """`image` itself when already decoded here, else a Pillow image's pixels."""
        if isinstance(image, SeedPixels):
            return image
        return cls(np.asarray(image if image.mode == "RGB" else image.convert("RGB")))

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as Pillow gives it."""
        return self.rgb.shape[1], self.rgb.shape[0]

    def grey(self) -> np.ndarray:
        """Luma (ITU-R 601, as Pillow's "L"), uint8 (height, width)."""
        if self._grey is None:
            cv2 = _cv2()
            self._grey = _read_only(cv2.cvtColor(self.rgb, cv2.COLOR_RGB2GRAY))
        return self._grey

    def grey_square(self, side: int, crop: float = 1.0) -> np.ndarray:
        """The centred `crop` of the grey image (a fraction of each side), squashed to
        side x side by area averaging; uint8, kept for the next metric that asks."""
        key = (side, crop)
        if key not in self._grey_squares:
            level = self.grey_halved(math.ceil(side / crop))
            height, width = level.shape
            top, left = round(height * (1 - crop) / 2), round(width * (1 - crop) / 2)
            cropped = level[top : height - top or None, left : width - left or None]
            if cropped.shape != (side, side):
                cv2 = _cv2()
                shrinking = min(cropped.shape) >= side
                how = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
                cropped = cv2.resize(cropped, (side, side), interpolation=how)
            self._grey_squares[key] = _read_only(cropped)
        return self._grey_squares[key]

    def grey_halved(self, short_side: int) -> np.ndarray:
        """The grey image halved (area) as often as its shorter side stays >= `short_side`
        (the image itself when already smaller), aspect kept. Halving is a 2x2 box average
        (exact on even sides) and costs little; a last, fractional resize then works on
        few pixels."""
        if not self._grey_levels:
            self._grey_levels.append(self.grey())
        cv2 = _cv2()
        while min(self._grey_levels[-1].shape) // 2 >= short_side:
            height, width = self._grey_levels[-1].shape
            halved = cv2.resize(
                self._grey_levels[-1], (width // 2, height // 2), interpolation=cv2.INTER_AREA
            )
            self._grey_levels.append(_read_only(halved))
        fitting = [level for level in self._grey_levels if min(level.shape) >= short_side]
        return fitting[-1] if fitting else self._grey_levels[0]

    def rgb_square(self, side: int) -> np.ndarray:
        """RGB squashed to side x side, uint8 (side, side, 3); the array itself when already so.

        Tiled comparisons (Carlini et al.) resize both images to one square size, ignoring
        the aspect ratio, by bicubic interpolation, which keeps edges that a shift-sensitive
        l2 would otherwise blur away: OpenCV's when the image only grows (a small figure
        panel; several times faster than Pillow's), Pillow's when it shrinks on a side (it
        widens the kernel against aliasing, OpenCV's does not). Not kept: one metric reads it.
        """
        width, height = self.size
        if (width, height) == (side, side):
            return self.rgb
        if width <= side and height <= side:
            cv2 = _cv2()
            return cv2.resize(self.rgb, (side, side), interpolation=cv2.INTER_CUBIC)
        resized = self.image().resize((side, side), Image.Resampling.BICUBIC)
        return np.asarray(resized, dtype=np.uint8)

    def image(self) -> Image.Image:
        """The seed as a Pillow image (the model metrics' preprocessing takes one)."""
        if self._image is None:
            self._image = Image.fromarray(self.rgb, mode="RGB")
        return self._image


# What a metric is handed per seed: decoded here (scoring) or a Pillow image (anyone else).
SeedImage = SeedPixels | Image.Image


def pillow_image(image: SeedImage) -> Image.Image:
    """The seed as a Pillow image, for a model's preprocessing."""
    return image.image() if isinstance(image, SeedPixels) else image


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _cv2() -> Any:
    import cv2  # deferred: OpenCV is loaded only where pixels are scored

    return cv2


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
    images: Sequence[SeedImage],
    shas: Sequence[str] | None,
    compute: Callable[[list[SeedImage]], list[Feature]],
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


class LazyImages(Sequence[SeedPixels]):
    """A grid's images read from disk on first use and kept: one decode each, none for an
    image no metric needs pixels of. A bad file raises InputError when first touched."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)
        self._decoded: list[SeedPixels | None] = [None] * len(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    @overload
    def __getitem__(self, index: int) -> SeedPixels: ...

    @overload
    def __getitem__(self, index: slice) -> list[SeedPixels]: ...

    def __getitem__(self, index: int | slice) -> SeedPixels | list[SeedPixels]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        seed = self._decoded[index]
        if seed is None:
            seed = self._decoded[index] = SeedPixels(decode_pixels(self.paths[index]))
        return seed

    @property
    def decoded(self) -> int:
        """How many images were actually decoded so far."""
        return sum(image is not None for image in self._decoded)
