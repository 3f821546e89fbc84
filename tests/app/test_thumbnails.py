"""Thumbnails: cached on disk by content, fitted to size, never fatal when an image is bad."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from memgrid.core.records import GridImage
from memgrid.tui.app.thumbnails import ThumbnailCache, fit


def image_file(
    root: Path, name: str, size: tuple[int, int], color: tuple[int, int, int]
) -> GridImage:
    path = root / "images" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return GridImage(
        seed=0, path=f"images/{name}", sha256=f"sha-{name}", width=size[0], height=size[1]
    )


def cache_at(root: Path) -> ThumbnailCache:
    return ThumbnailCache(root / "thumbs", lambda image: root / image.path, master_pixels=32)


def test_a_thumbnail_is_built_once_and_then_read_from_thumbs(tmp_path: Path) -> None:
    image = image_file(tmp_path, "a.png", (256, 128), (200, 10, 10))
    assert cache_at(tmp_path).ensure([image]) == 1
    stored = cache_at(tmp_path).path_for(image)
    assert stored.exists() and Image.open(stored).size == (32, 16)
    (tmp_path / image.path).unlink()  # the source is no longer needed
    pixels = cache_at(tmp_path).pixels(image, 16, 16)
    assert pixels is not None and pixels.shape == (8, 16, 3)
    assert tuple(pixels[4, 8]) == (200, 10, 10)
    assert cache_at(tmp_path).ensure([image]) == 0


def test_a_missing_or_broken_image_gives_no_thumbnail(tmp_path: Path) -> None:
    missing = GridImage(0, "images/none.png", "sha-none", 8, 8)
    broken_path = tmp_path / "images" / "broken.png"
    broken_path.parent.mkdir(parents=True)
    broken_path.write_bytes(b"not a png")
    broken = GridImage(0, "images/broken.png", "sha-broken", 8, 8)
    cache = cache_at(tmp_path)
    assert cache.pixels(missing, 8, 8) is None
    assert cache.pixels(broken, 8, 8) is None


def test_fit_keeps_the_aspect_ratio() -> None:
    wide = np.zeros((50, 100, 3), dtype=np.uint8)
    assert fit(wide, 20, 20).shape == (10, 20, 3)
    assert fit(wide, 100, 50) is wide
