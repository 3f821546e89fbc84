"""Seed thumbnails: built once per image content, cached in the project's thumbs/ and in memory.

A master thumbnail (longest side `MASTER_PIXELS`) is written under `thumbs/` named by the
image's sha256, so grids that share an image share its thumbnail. The app asks for the
pixels at the size it draws: up to the master's size they come from it, larger (a seed
drawn in real pixels, or zoomed) from the image itself, so nothing is shown blurrier than
stored. Decoding and resizing happen here, in worker threads only.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from memgrid.core.atomic_files import atomic_write
from memgrid.core.errors import InputError
from memgrid.core.images import decode_rgb
from memgrid.core.records import GridImage

MASTER_PIXELS = 64
MEMORY_ITEMS = 8192
# Larger fits are kept in memory only while this small: bigger ones end up in composed
# pictures (pictures.py) and would crowd out thousands of thumbnails here.
REMEMBER_PIXELS = 128 * 128
# Decoded images kept for drawing the same seeds again at another size (the panel folded,
# the heat map tile, zoom and compare): about the grids on and around the screen.
SOURCE_BYTES = 96 * 1024 * 1024


class ThumbnailCache:
    """Thumbnails by image content: memory first, then thumbs/, then decode the image once."""

    def __init__(
        self,
        thumbs_dir: Path,
        source_path: Callable[[GridImage], Path],
        *,
        master_pixels: int = MASTER_PIXELS,
        memory_items: int = MEMORY_ITEMS,
        shared: bool = False,
    ) -> None:
        self.thumbs_dir = thumbs_dir
        self.shared = shared  # a project shared with a group: the cache is the group's too
        self.source_path = source_path
        self.master_pixels = master_pixels
        self.memory_items = memory_items
        self._memory: OrderedDict[tuple[str, int, int], np.ndarray | None] = OrderedDict()
        self._sources: OrderedDict[str, np.ndarray] = OrderedDict()
        self._source_bytes = 0
        self._lock = threading.Lock()

    def path_for(self, image: GridImage) -> Path:
        sha = image.sha256
        return self.thumbs_dir / sha[:2] / f"{sha}-{self.master_pixels}.png"

    def master(self, image: GridImage) -> np.ndarray | None:
        """The master thumbnail as RGB uint8 (h, w, 3); None when the image is unreadable."""
        key = (image.sha256, 0, 0)
        known, remembered = self._remembered(key)
        if known:
            return remembered
        pixels = self._load_or_build(image)
        self._remember(key, pixels)
        return pixels

    def pixels(self, image: GridImage, width: int, height: int) -> np.ndarray | None:
        """The image fitted inside width x height pixels, aspect kept (h, w, 3)."""
        key = (image.sha256, width, height)
        known, remembered = self._remembered(key)
        if known:
            return remembered
        fitted = self._fitted(image, width, height)
        if fitted is None or fitted.shape[0] * fitted.shape[1] <= REMEMBER_PIXELS:
            self._remember(key, fitted)
        return fitted

    def _fitted(self, image: GridImage, width: int, height: int) -> np.ndarray | None:
        master = self.master(image)
        if master is None:
            return None
        master_height, master_width = master.shape[:2]
        scale = min(width / master_width, height / master_height)
        stored_larger = max(image.width, image.height) > max(master_width, master_height)
        if scale <= 1.0 or not stored_larger:
            return fit(master, width, height)
        source = self._source(image)
        return fit(master if source is None else source, width, height)

    def _source(self, image: GridImage) -> np.ndarray | None:
        """The image decoded at full size, kept while recent (within SOURCE_BYTES)."""
        with self._lock:
            found = self._sources.get(image.sha256)
            if found is not None:
                self._sources.move_to_end(image.sha256)
                return found
        try:
            decoded = np.asarray(decode_rgb(self.source_path(image)))
        except InputError:
            return None
        with self._lock:
            if image.sha256 not in self._sources:
                self._sources[image.sha256] = decoded
                self._source_bytes += decoded.nbytes
            while self._source_bytes > SOURCE_BYTES and len(self._sources) > 1:
                self._source_bytes -= self._sources.popitem(last=False)[1].nbytes
        return decoded

    def ensure(self, images: Iterable[GridImage]) -> int:
        """Build the missing thumbnails on disk (a precompute pass); returns how many were built."""
        built = 0
        for image in images:
            if not self.path_for(image).exists() and self._build(image) is not None:
                built += 1
        return built

    def _load_or_build(self, image: GridImage) -> np.ndarray | None:
        path = self.path_for(image)
        try:
            with Image.open(path) as cached:
                return np.asarray(cached.convert("RGB"))
        except (OSError, ValueError):
            return self._build(image)

    def _build(self, image: GridImage) -> np.ndarray | None:
        try:
            decoded = decode_rgb(self.source_path(image))
        except InputError:
            return None
        decoded.thumbnail((self.master_pixels, self.master_pixels), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        decoded.save(buffer, format="PNG")
        # A read-only project still shows thumbnails, just uncached on disk.
        with contextlib.suppress(OSError):
            atomic_write(self.path_for(image), buffer.getvalue(), shared=self.shared)
        return np.asarray(decoded)

    def _remembered(self, key: tuple[str, int, int]) -> tuple[bool, np.ndarray | None]:
        with self._lock:
            if key not in self._memory:
                return False, None
            self._memory.move_to_end(key)
            return True, self._memory[key]

    def _remember(self, key: tuple[str, int, int], pixels: np.ndarray | None) -> None:
        with self._lock:
            self._memory[key] = pixels
            while len(self._memory) > self.memory_items:
                self._memory.popitem(last=False)


def fit(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to fit inside width x height, keeping the aspect ratio.

    Shrinking averages (box filter); enlarging repeats pixels, so what an annotator sees
    enlarged is the stored pixels, not an interpolation.
    """
    source_height, source_width = pixels.shape[:2]
    scale = min(width / source_width, height / source_height)
    target = (max(1, round(source_width * scale)), max(1, round(source_height * scale)))
    if target == (source_width, source_height):
        return pixels
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.NEAREST
    return np.asarray(Image.fromarray(pixels).resize(target, method))
