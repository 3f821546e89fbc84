"""Image size limits: checked from the file's size and the header before any decoding, and
decoded images held at working size whatever the file's size."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from PIL import Image

from memgrid.core.errors import InputError
from memgrid.core.images import (
    MAX_IMAGE_BYTES,
    WORKING_SIDE,
    check_image_bytes,
    decode_rgb,
    read_image_file,
)
from tests.flat_png import flat_png


def test_an_image_over_the_pixel_limit_is_refused_from_its_header_in_one_line(
    tmp_path: Path,
) -> None:
    path = flat_png(tmp_path / "0001.png", 11_000, 11_000)
    assert path.stat().st_size < 1_000_000  # small on disk, 121 million pixels decoded
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning would fail here
        with pytest.raises(InputError) as caught:
            read_image_file(path)
        with pytest.raises(InputError):
            decode_rgb(path)
    message = str(caught.value)
    assert message == f"{path}: 11000 x 11000 pixels is over the limit of 64,000,000 pixels"


def test_an_image_at_the_pixel_limit_imports_without_a_warning(tmp_path: Path) -> None:
    path = flat_png(tmp_path / "0001.png", 8_000, 8_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checked = read_image_file(path)
    assert (checked.width, checked.height) == (8_000, 8_000)


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "0001.png"
    with path.open("wb") as handle:  # sparse: no disk used, no byte worth reading
        handle.truncate(3 * 2**30)
    with pytest.raises(InputError) as caught:
        read_image_file(path)
    assert str(caught.value) == (
        f"{path}: 3,221,225,472 bytes is over the {MAX_IMAGE_BYTES:,}-byte limit for this file"
    )


def test_a_format_outside_the_list_is_not_decoded(tmp_path: Path) -> None:
    # Pillow reads EPS by running Ghostscript; a .png holding one must not get that far.
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    with pytest.raises(InputError, match="not a readable image"):
        check_image_bytes(eps, tmp_path / "0001.png")


@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
def test_decoded_images_are_held_at_working_size(tmp_path: Path, image_format: str) -> None:
    path = tmp_path / f"big.{image_format.lower()}"
    Image.new("RGB", (5000, 3000), (200, 100, 50)).save(path, format=image_format)
    decoded = decode_rgb(path)
    assert max(decoded.size) <= WORKING_SIDE
    assert decoded.size[0] / decoded.size[1] == pytest.approx(5 / 3, rel=0.01)
    assert decoded.getpixel((10, 10)) == pytest.approx((200, 100, 50), abs=3)


def test_an_image_within_working_size_decodes_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "seed.png"
    original = Image.effect_noise((WORKING_SIDE, 300), 40).convert("RGB")
    original.save(path)
    assert decode_rgb(path).tobytes() == original.tobytes()
