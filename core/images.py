"""Image files: safe decoding and the project's content-addressed image folder."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from memgrid.core.errors import InputError
from memgrid.core.records import GridImage
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
# Decompression bombs are refused by Pillow above this many pixels; generations are far smaller.
Image.MAX_IMAGE_PIXELS = 64_000_000


@dataclass(frozen=True)
class CheckedImage:
    """Bytes of an image that decoded completely, with what we learned from decoding."""

    data: bytes
    suffix: str
    width: int
    height: int


def check_image_bytes(data: bytes, source: str | Path) -> CheckedImage:
    """Decode fully (not only the header) so truncated files are caught at import time."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format = (image.format or "").lower()
            image.load()
            width, height = image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InputError(source, f"not a readable image ({_short(error)})") from None
    except Image.DecompressionBombError:
        raise InputError(source, "image too large to decode safely") from None
    suffix = {"jpeg": ".jpg", "tiff": ".tif"}.get(image_format, f".{image_format or 'png'}")
    return CheckedImage(data=data, suffix=suffix, width=width, height=height)


def read_image_file(path: Path) -> CheckedImage:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "image file not found") from None
    except OSError as error:
        raise InputError(path, f"cannot read image ({error.strerror or error})") from None
    return check_image_bytes(data, path)


def decode_rgb(path: Path) -> Image.Image:
    """Open an image as RGB, raising InputError naming the file when it is unusable."""
    try:
        with Image.open(path) as image:
            if image.mode == "RGB":
                image.load()  # already RGB: converting would only copy the pixels
                return image
            return image.convert("RGB")
    except FileNotFoundError:
        raise InputError(path, "image file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InputError(path, f"not a readable image ({_short(error)})") from None
    except Image.DecompressionBombError:
        raise InputError(path, "image too large to decode safely") from None


def square_pixels(image: Image.Image, size: int) -> np.ndarray:
    """The image squashed to size x size RGB as uint8 (size, size, 3); no copy when already so.

    Tiled comparisons (Carlini et al.) resize both images to one square size, ignoring the
    aspect ratio; bicubic keeps edges that a shift-sensitive l2 would otherwise blur away.
    """
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8)


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


def process_umask() -> int:
    """This process's umask, read without changing it where Linux allows (/proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    current = os.umask(0o022)  # elsewhere the only way to read it is to set it
    os.umask(current)
    return current


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename: never a partial file.

    mkstemp makes the file private (0600); it gets the mode any new file would (0666 less the
    umask), so the images of a project shared with a group stay readable to the group.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        os.fchmod(descriptor, 0o666 & ~process_umask())
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class ImageFolder:
    """Content-addressed image files under a project's `images/`: the name is the sha256."""

    def __init__(self, project_root: Path) -> None:
        self.project_root = project_root
        self.root = project_root / "images"

    def relative_path(self, sha256: str, suffix: str) -> str:
        return f"images/{sha256[:2]}/{sha256}{suffix}"

    def absolute(self, image: GridImage) -> Path:
        return self.project_root / image.path

    def put(self, checked: CheckedImage, seed: int) -> GridImage:
        """Store the bytes once (same content, same file) and describe them as a seed's image."""
        sha256 = hashlib.sha256(checked.data).hexdigest()
        relative = self.relative_path(sha256, checked.suffix)
        target = self.project_root / relative
        if not target.exists():
            atomic_write(target, checked.data)
        return GridImage(
            seed=seed,
            path=relative,
            sha256=sha256,
            width=checked.width,
            height=checked.height,
        )

    def put_image(self, image: Image.Image, seed: int) -> GridImage:
        data = png_bytes(image)
        checked = CheckedImage(data=data, suffix=".png", width=image.width, height=image.height)
        return self.put(checked, seed)

    def remove_temporaries(self) -> int:
        """Delete temporary files a killed writer left behind; returns how many."""
        removed = 0
        if self.root.exists():
            for leftover in self.root.glob("*/.tmp-*"):
                leftover.unlink(missing_ok=True)
                removed += 1
        return removed


def _short(error: BaseException) -> str:
    if isinstance(error, UnidentifiedImageError):
        # Pillow's words name the in-memory buffer ("<_io.BytesIO object at 0x...>").
        return "not a known image format"
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:120]
