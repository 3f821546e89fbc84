"""Seed thumbnails: built once per image content, cached in the project's thumbs/ and in memory.

A master thumbnail (longest side `MASTER_PIXELS`) is written under `thumbs/` named by the
image's sha256, so grids that share an image share its thumbnail. The app asks for the
pixels at the size it draws; decoding and resizing happen here, in worker threads only.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from memgrid.core.atomic_files import atomic_write
from memgrid.core.errors import InputError
from memgrid.core.images import decode_rgb
from memgrid.core.records import GridImage
from PIL import Image

MASTER_PIXELS = 64
MEMORY_ITEMS = 8192


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
        master = self.master(image)
        fitted = None if master is None else fit(master, width, height)
        self._remember(key, fitted)
        return fitted

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
    """Resize to fit inside width x height, keeping the aspect ratio."""
    source_height, source_width = pixels.shape[:2]
    scale = min(width / source_width, height / source_height)
    target = (max(1, round(source_width * scale)), max(1, round(source_height * scale)))
    if target == (source_width, source_height):
        return pixels
    resized = Image.fromarray(pixels).resize(target, Image.Resampling.BOX)
    return np.asarray(resized)
