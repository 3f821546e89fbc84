"""Image files: safe decoding and the project's content-addressed image folder."""

from __future__ import annotations

import hashlib
import io
import math
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from memgrid.core.atomic_files import TEMPORARY_PREFIX, atomic_write, remove_abandoned
from memgrid.core.errors import InputError
from memgrid.core.records import GridImage
from memgrid.core.user_files import open_user_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
# Pillow tries every plugin it has on any file; only these are read (no EPS, which runs
# Ghostscript, nor formats nobody generates).
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
# Refused from the header, before decoding: 8000 x 8000, far above any generation.
MAX_IMAGE_PIXELS = 64_000_000
# Refused from the file's size, before reading: the largest allowed image uncompressed at
# 4 bytes a pixel, plus room for headers and metadata.
MAX_IMAGE_BYTES = 4 * MAX_IMAGE_PIXELS + 2**20
# Decoded images are reduced to this longer side: every metric looks at 512 pixels or fewer,
# so scoring's memory is set by this size, not by the file's.
WORKING_SIDE = 2048
# PNG modes whose RGB pixels libspng decodes exactly as Pillow's convert("RGB") does.
SPNG_PNG_MODES = ("RGB", "RGBA", "L", "LA", "P")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# memgrid checks the header itself (`open_image`) with one line of its own; Pillow's check
# would warn (a multi-line warning) between its limit and twice that, and refuse only above.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class CheckedImage:
    """Bytes of an image that decoded completely, with what we learned from decoding."""

    data: bytes
    suffix: str
    width: int
    height: int


@contextmanager
def open_image(handle: BinaryIO, source: str | Path) -> Iterator[Image.Image]:
    """An image of a known format opened from its header, within MAX_IMAGE_PIXELS.

    Errors while the caller decodes it (`load`) are one InputError naming `source` too.
    """
    try:
        with Image.open(handle, formats=IMAGE_FORMATS) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise InputError(
                    source,
                    f"{width} x {height} pixels is over the limit of {MAX_IMAGE_PIXELS:,} pixels",
                )
            yield image
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InputError(source, f"not a readable image ({_short(error)})") from None


def check_image_bytes(data: bytes, source: str | Path) -> CheckedImage:
    """Decode fully (not only the header) so truncated files are caught at import time."""
    with open_image(io.BytesIO(data), source) as image:
        image_format = (image.format or "").lower()
        image.load()
        width, height = image.size
    # Pillow leaves IDAT's checksums unchecked: a flipped bit in the pixel data decodes.
    if image_format == "png" and not png_checksums_match(data):
        raise InputError(source, "a PNG chunk's checksum does not match: the file is damaged")
    suffix = {"jpeg": ".jpg", "tiff": ".tif"}.get(image_format, f".{image_format or 'png'}")
    return CheckedImage(data=data, suffix=suffix, width=width, height=height)


def read_image_file(path: Path, *, inside: Path | None = None) -> CheckedImage:
    """A user's image file, checked whole: a regular file (inside `inside`, links followed),
    at most MAX_IMAGE_BYTES (refused before reading) and decoding completely."""
    with open_user_file(
        path, inside=inside, max_bytes=MAX_IMAGE_BYTES, what="image file"
    ) as handle:
        try:
            data = handle.read()
        except OSError as error:
            raise InputError(path, f"cannot read image ({error.strerror or error})") from None
    return check_image_bytes(data, path)


def decode_rgb(path: Path) -> Image.Image:
    """An image as RGB at working size (longer side at most WORKING_SIDE), or InputError.

    A larger image is reduced while it is decoded (a JPEG by scaling its DCT, so the full
    size is never held) or right after, by box averaging; a smaller one is only converted.
    """
    with open_user_file(path, max_bytes=MAX_IMAGE_BYTES, what="image file") as handle:
        return _decoded_rgb(handle, path)


def decode_pixels(path: Path) -> np.ndarray:
    """An image as an RGB uint8 array (height, width, 3) at working size, or InputError.

    What scoring decodes: a PNG within the working size is decoded by libspng straight into
    the array (4.4 ms a 512 px seed against Pillow's 6.5 and OpenCV's 6.3, with no
    conversion or copy out of a Pillow image; bench/results/score.txt) once its chunk
    checksums are verified; PNG is lossless, so the pixels are `decode_rgb`'s. Everything
    else (JPEG's reduced decode, other formats and modes) and any file libspng refuses or
    whose checksums fail takes `decode_rgb`'s route, so a bad file gets the same one-line
    error.
    """
    with open_user_file(path, max_bytes=MAX_IMAGE_BYTES, what="image file") as handle:
        with open_image(handle, path) as image:
            direct = (
                image.format == "PNG"
                and image.mode in SPNG_PNG_MODES
                and _reduction(image.size) == 1
            )
        handle.seek(0)
        if not direct:  # streamed by Pillow: a large JPEG is never read whole
            return np.asarray(_decoded_rgb(handle, path))
        try:
            data = handle.read()
        except OSError as error:
            raise InputError(path, f"cannot read image ({error.strerror or error})") from None
    pixels = _spng_rgb(data)
    return pixels if pixels is not None else np.asarray(_decoded_rgb(io.BytesIO(data), path))


def _spng_rgb(data: bytes) -> np.ndarray | None:
    """libspng's RGB decode of a PNG (alpha dropped, as Pillow's convert does); None if
    refused or if a chunk's checksum fails (libspng, as pyspng sets it up, checks none)."""
    if not png_checksums_match(data):
        return None
    import pyspng  # deferred: the annotation app never decodes for scoring

    try:
        return pyspng.load(data, format="RGB")
    except RuntimeError:  # pyspng's only error: the fallback names the file and the problem
        return None


def png_checksums_match(data: bytes) -> bool:
    """Whether a PNG's chunks are whole up to IEND, each with a matching CRC-32, so that a
    flipped bit is refused, not decoded (Pillow checks no IDAT checksum, libspng as pyspng
    sets it up none at all)."""
    if not data.startswith(PNG_SIGNATURE):
        return False
    view = memoryview(data)
    position = len(PNG_SIGNATURE)
    while position + 12 <= len(data):
        length = int.from_bytes(view[position : position + 4], "big")
        end = position + 8 + length  # the chunk's type and data end here; its CRC follows
        if end + 4 > len(data):
            return False
        if zlib.crc32(view[position + 4 : end]) != int.from_bytes(view[end : end + 4], "big"):
            return False
        if view[position + 4 : position + 8] == b"IEND":
            return True
        position = end + 4
    return False


def _decoded_rgb(handle: BinaryIO, path: Path) -> Image.Image:
    with open_image(handle, path) as image:
        factor = _reduction(image.size)
        if factor > 1:
            image.draft("RGB", (image.width // factor, image.height // factor))
        image.load()
        decoded: Image.Image = image
        factor = _reduction(decoded.size)
        if factor > 1 and decoded.mode in ("RGB", "RGBA", "L", "LA"):
            decoded = decoded.reduce(factor)  # before converting: one full-size copy fewer
        decoded = decoded.convert("RGB")
        factor = _reduction(decoded.size)
        return decoded.reduce(factor) if factor > 1 else decoded


def _reduction(size: tuple[int, int]) -> int:
    """The whole factor that brings the longer side of `size` to WORKING_SIDE or less."""
    return max(1, math.ceil(max(size) / WORKING_SIDE))


def resize_short_side(image: Image.Image, short_side: int) -> Image.Image:
    """Scale so the shorter side is `short_side`, keeping the aspect ratio (torchvision Resize(int))."""
    width, height = image.size
    scale = short_side / min(width, height)
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    if target == image.size:
        return image
    return image.resize(target, Image.Resampling.BILINEAR)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def png_checked(image: Image.Image) -> CheckedImage:
    """An image made here (demo, generation) as PNG bytes, described as if checked."""
    return CheckedImage(
        data=png_bytes(image), suffix=".png", width=image.width, height=image.height
    )


class ImageFolder:
    """Content-addressed image files under a project's `images/`: the name is the sha256."""

    def __init__(self, project_root: Path, *, shared: bool = False) -> None:
        self.project_root = project_root
        self.root = project_root / "images"
        self.shared = shared  # a project shared with a group: files group-writable

    def relative_path(self, sha256: str, suffix: str) -> str:
        return f"images/{sha256[:2]}/{sha256}{suffix}"

    def absolute(self, image: GridImage) -> Path:
        return self.project_root / image.path

    def store(self, checked: CheckedImage) -> tuple[str, str]:
        """Store the bytes once (same content, same file); their relative path and sha256."""
        sha256 = hashlib.sha256(checked.data).hexdigest()
        relative = self.relative_path(sha256, checked.suffix)
        target = self.project_root / relative
        if not target.exists():
            atomic_write(target, checked.data, shared=self.shared)
        return relative, sha256

    def put(self, checked: CheckedImage, seed: int) -> GridImage:
        """Store the bytes once and describe them as a seed's image."""
        relative, sha256 = self.store(checked)
        return GridImage(
            seed=seed,
            path=relative,
            sha256=sha256,
            width=checked.width,
            height=checked.height,
        )

    def put_image(self, image: Image.Image, seed: int) -> GridImage:
        return self.put(png_checked(image), seed)

    def remove_temporaries(self) -> int:
        """Delete temporary files that killed writers left behind; returns how many.

        Only those whose writer is gone: another process may be importing right now.
        """
        if not self.root.exists():
            return 0
        return remove_abandoned(list(self.root.glob(f"*/{TEMPORARY_PREFIX}*")))


def _short(error: BaseException) -> str:
    if isinstance(error, UnidentifiedImageError):
        # Pillow's words name the in-memory buffer ("<_io.BytesIO object at 0x...>").
        return "not a known image format"
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:120]
