"""Consistency metrics on grids whose truth is known by construction."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from PIL import Image

from memgrid.core import images
from memgrid.core.demo import artwork, photo, scene, shifted, with_noise
from memgrid.core.errors import InputError, UnavailableError
from memgrid.core.images import decode_pixels, decode_rgb
from memgrid.core.metrics import DEFAULT_METRICS, METRICS, make_metric, metric_class
from memgrid.core.metrics.features import SeedPixels
from memgrid.core.metrics.grid_scores import (
    grid_scores,
    largest_clique_size,
    largest_cluster_size,
    near_duplicate_groups,
    near_duplicates,
)
from memgrid.core.metrics.phash import PHash
from memgrid.core.metrics.tiled_l2 import (
    DIRECT_PAIRS_UP_TO,
    TiledL2,
    tile_mean_squares,
    tile_texture,
)

SEEDS = 16
SHAS = [f"sha{index}" for index in range(SEEDS)]


def identical_grid() -> list[Image.Image]:
    return [photo("one-training-photo") for _ in range(SEEDS)]


def noisy_grid() -> list[Image.Image]:
    """The same photo re-rendered with noise (sigma 6 levels): near-identical, not equal."""
    return [
        with_noise(photo("one-training-photo"), ("noise", seed), sigma=6.0) for seed in range(SEEDS)
    ]


def shifted_grid() -> list[Image.Image]:
    """One artwork moved by up to 2 pixels per seed: the same picture, not the same pixels."""
    return [shifted(artwork("work"), seed % 3, seed // 6) for seed in range(SEEDS)]


def varied_grid() -> list[Image.Image]:
    return [scene(("free", seed)) for seed in range(SEEDS)]


def split_grid(repeats: int) -> list[Image.Image]:
    """`repeats` seeds repeat one photo (with noise), the rest vary freely."""
    return [
        with_noise(photo("repeated"), ("split", seed)) if seed < repeats else scene(("split", seed))
        for seed in range(SEEDS)
    ]


def reference_tiled_l2(first: np.ndarray, second: np.ndarray, tiles: int = 4) -> float:
    """Carlini et al.'s definition written plainly: largest per-tile RMS over [0, 1] pixels."""
    a, b = first.astype(np.float64) / 255.0, second.astype(np.float64) / 255.0
    step = a.shape[0] // tiles
    return max(
        float(
            np.sqrt(np.mean((a[r : r + step, c : c + step] - b[r : r + step, c : c + step]) ** 2))
        )
        for r in range(0, a.shape[0], step)
        for c in range(0, a.shape[1], step)
    )


# ---- tiled-l2 ---------------------------------------------------------------------------


def test_tiled_l2_matches_the_plain_definition_on_every_pair():
    images = [*noisy_grid()[:3], *varied_grid()[:3]]
    metric = TiledL2()
    matrix = metric.matrix(images, SHAS[:6])
    side = metric.working_side(images)
    pixels = [SeedPixels.of(image).rgb_square(side) for image in images]
    for i, j in itertools.combinations(range(len(images)), 2):
        assert matrix[i, j] == pytest.approx(reference_tiled_l2(pixels[i], pixels[j]), abs=1e-4)
        assert matrix[i, j] == matrix[j, i]
    assert np.all(np.diag(matrix) == 0.0)


@pytest.mark.parametrize(
    ("sides", "working"),
    [
        ([(256, 256)] * 3, 256),  # compared as they are, not enlarged
        ([(300, 200), (250, 250)], 304),  # the largest side, rounded up to whole tiles of 8
        ([(512, 512), (128, 128)], 512),  # a grid's seeds share one size: the largest
        ([(1024, 768), (600, 600)], 512),  # larger seeds shrink to Carlini's 512
        ([(40, 40), (64, 64)], 128),  # too small to tile: enlarged to 128
    ],
)
def test_seeds_are_compared_at_their_own_size_up_to_512(sides, working):
    images = [Image.new("RGB", size, "grey") for size in sides]
    metric = TiledL2()
    assert metric.working_side(images) == working
    assert metric.pixels(images).shape == (len(images), working, working, 3)


def test_a_noise_copy_measures_the_noise_at_the_seeds_own_size():
    """Two renderings with independent noise of sigma 6 levels differ by 6 * sqrt(2) RMS:
    enlarging the seeds would smooth the noise and understate it."""
    first, second = noisy_grid()[:2]
    assert max(first.size) < 512
    distance = TiledL2().matrix([first, second], SHAS[:2])[0, 1]
    assert distance == pytest.approx(6 * np.sqrt(2) / 255, rel=0.05)  # 512 gave 13% less


@pytest.mark.parametrize("side", range(128, 513, 8))
def test_texture_samples_stay_inside_their_tile_at_every_side(side):
    """Left half noise, right half flat: every flat tile has no texture, every noisy one has,
    whatever the working side (a stride that does not divide the tile would let one tile's
    samples stray into the next)."""
    rng = np.random.default_rng(side)
    pixels = np.full((1, side, side, 3), 90, dtype=np.uint8)
    pixels[0, :, : side // 2] = rng.integers(0, 256, (side, side // 2, 3), dtype=np.uint8)
    texture = tile_texture(pixels, 8).reshape(8, 8)
    assert np.all(texture[:, 4:] < 1e-3)  # float rounding only; the floor is 0.02
    assert np.all(texture[:, :4] > 0.2)


def test_texture_samples_the_same_pixels_at_any_working_size():
    """At 256 every other pixel is read, at 512 every fourth: on a seed doubled by repeating
    pixels they are the same pixels, so the texture floor means the same at both sizes."""
    small = np.asarray(scene("texture"), dtype=np.uint8)[:256, :256][None]
    doubled = small.repeat(2, axis=1).repeat(2, axis=2)
    np.testing.assert_array_equal(tile_texture(small, 8), tile_texture(doubled, 8))


def test_image_distance_is_the_largest_tile_not_the_whole_image():
    """One 128x128 tile changed: whole-image RMS is a quarter of it, the distance all of it."""
    base = np.full((512, 512, 3), 100, dtype=np.uint8)
    changed = base.copy()
    changed[128:256, 256:384] = 180  # exactly tile (1, 2) of the 4x4 grid
    distance = TiledL2().matrix([Image.fromarray(base), Image.fromarray(changed)], SHAS[:2])[0, 1]
    assert distance == pytest.approx(80 / 255, abs=1e-5)
    whole_image_rms = np.sqrt(np.mean((changed / 255.0 - base / 255.0) ** 2))
    assert whole_image_rms == pytest.approx(distance / 4, abs=1e-5)


@pytest.mark.parametrize("seeds", [4, 8])  # compared pair by pair, and through Gram matrices
def test_tile_mean_squares_are_exact_for_identical_tiles_despite_float32(seeds):
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, size=(seeds, 64, 64, 3), dtype=np.uint8)
    pixels[1] = pixels[0]
    squares = tile_mean_squares(pixels, 2)
    assert squares.shape == (4, seeds, seeds)
    assert np.sqrt(squares[:, 0, 1]).max() < 1e-3


def test_small_and_large_grids_get_the_same_tile_distances():
    """Up to DIRECT_PAIRS_UP_TO seeds each pair is compared directly, above it through Gram
    matrices: a pair's tile distances must not depend on which route its grid took."""
    rng = np.random.default_rng(4)
    seeds = DIRECT_PAIRS_UP_TO + 3
    pixels = rng.integers(0, 256, size=(seeds, 64, 64, 3), dtype=np.uint8)
    pixels[2] = np.clip(pixels[1].astype(int) + rng.integers(-9, 10, pixels[1].shape), 0, 255)
    through_gram = np.sqrt(tile_mean_squares(pixels, 4))
    for first, second in [(1, 2), (0, 5), (3, seeds - 1)]:
        direct = np.sqrt(tile_mean_squares(pixels[[first, second]], 4))
        exact = np.sqrt(
            ((pixels[first].astype(float) - pixels[second]) ** 2)
            .reshape(4, 16, 4, 16 * 3)
            .mean(axis=(1, 3))
            .ravel()
            / 255.0**2
        )
        assert direct[:, 0, 1] == pytest.approx(exact, abs=1e-6)
        assert through_gram[:, first, second] == pytest.approx(exact, abs=1e-4)


def test_identical_seeds_are_one_clique():
    values = TiledL2().score(7, identical_grid(), SHAS).values
    assert values["n_seeds"] == SEEDS
    assert values["clique_share"] == 1.0
    assert values["cluster_share"] == 1.0
    assert values["median_distance"] == pytest.approx(0.0, abs=1e-3)
    assert values["median_similarity"] == pytest.approx(1.0, abs=1e-3)
    assert values["threshold"] == 0.15


def test_noise_keeps_near_identical_seeds_under_delta():
    values = TiledL2().score(1, noisy_grid(), SHAS).values
    assert values["clique_share"] == 1.0
    assert 0.0 < values["median_distance"] < 0.15


def test_free_variation_has_no_clique_and_no_cluster():
    values = TiledL2().score(1, varied_grid(), SHAS).values
    assert values["clique_share"] == 1 / SEEDS
    assert values["cluster_share"] == 0.0
    assert values["median_distance"] > 0.15


@pytest.mark.parametrize("repeats", [3, 10])
def test_partial_repeat_is_a_clique_of_the_repeated_seeds(repeats: int):
    for metric in (TiledL2(), PHash()):
        values = metric.score(1, split_grid(repeats), SHAS).values
        assert values["clique_share"] == repeats / SEEDS
        assert values["cluster_share"] == repeats / SEEDS


def test_score_records_metric_params_version_and_heatmap():
    score = TiledL2().score(42, identical_grid(), SHAS)
    assert (score.grid_id, score.metric, score.version, score.available) == (
        42,
        "tiled-l2",
        TiledL2.version,
        True,
    )
    assert score.params == {
        "threshold": 0.15,
        "cluster_eps": 0.15,
        "min_samples": 3,
        "size": 512,
        "tiles": 4,
        "region_grid": 8,
        "tile_threshold": 0.5,
        "texture_floor": 0.02,
        "tile_delta": 0.08,
        "robust_quantile": 0.8,
    }
    assert len(score.heatmap) == 8 and all(len(row) == 8 for row in score.heatmap)
    assert score.values["region_grid"] == 8 and score.values["tile_threshold"] == 0.5


def test_a_single_seed_cannot_be_scored():
    with pytest.raises(UnavailableError, match="at least 2 seeds"):
        TiledL2().score(1, identical_grid()[:1], SHAS[:1])


def test_images_of_any_size_are_compared_at_512():
    small = photo("size").resize((256, 256))
    large = photo("size").resize((768, 640))
    assert TiledL2().matrix([small, large], SHAS[:2])[0, 1] < 0.05


# ---- phash ------------------------------------------------------------------------------


def test_phash_tolerates_small_shifts_that_tiled_l2_does_not():
    images = shifted_grid()
    assert PHash().score(1, images, SHAS).values["clique_share"] == 1.0
    assert TiledL2().score(1, images, SHAS).values["clique_share"] < 0.5


def test_phash_distance_is_normalised_by_hash_bits():
    metric = PHash()
    assert metric.threshold == 10 / 64
    matrix = metric.matrix(varied_grid(), SHAS)
    assert matrix.max() <= 1.0
    assert np.all(np.round(matrix * 64) == matrix * 64)  # whole numbers of bits
    values = metric.score(1, varied_grid(), SHAS).values
    assert values["clique_share"] == 1 / SEEDS
    assert values["median_distance"] == pytest.approx(0.5, abs=0.1)  # unrelated hashes


def test_phash_area_reduction_keeps_imagehash_bits():
    """The speed-up (grey and area-reduce before imagehash's Lanczos) moves at most a median tie."""
    import imagehash

    metric = PHash()
    for image in [*noisy_grid()[:3], *varied_grid()[:3], *shifted_grid()[:3]]:
        for size in [(512, 512), (700, 400), (1024, 300)]:
            large = image.resize(size)
            ours = metric.hashes([large])[0]
            theirs = imagehash.phash(large).hash.ravel()
            assert np.count_nonzero(ours != theirs) <= 2, size
        assert metric.hash_input(image.resize((512, 512))).shape == (64, 64)
        assert metric.hash_input(image.resize((700, 400))).shape == (100, 175)  # aspect kept


def test_phash_dct_basis_is_scipys_unnormalised_dct():
    from scipy.fftpack import dct

    from memgrid.core.metrics.phash import dct_basis

    pixels = np.random.default_rng(6).integers(0, 256, (3, 32, 32)).astype(np.float64)
    expected = dct(dct(pixels, axis=1), axis=2)[:, :8, :8]
    basis = dct_basis(32, 8)
    assert np.allclose(basis @ pixels @ basis.T, expected, rtol=1e-12, atol=1e-8)


def test_phash_identical_and_noisy_seeds():
    assert PHash().score(1, identical_grid(), SHAS).values["median_distance"] == 0.0
    assert PHash().score(1, noisy_grid(), SHAS).values["clique_share"] == 1.0


# ---- grid scores ------------------------------------------------------------------------


def brute_force_clique(adjacency: np.ndarray) -> int:
    count = adjacency.shape[0]
    for size in range(count, 0, -1):
        for members in itertools.combinations(range(count), size):
            if all(adjacency[i, j] for i, j in itertools.combinations(members, 2)):
                return size
    return 0


@pytest.mark.parametrize("seed", range(25))
def test_largest_clique_matches_brute_force(seed: int):
    rng = np.random.default_rng(seed)
    count = int(rng.integers(1, 12))
    upper = np.triu(rng.random((count, count)) < rng.uniform(0.2, 0.9), k=1)
    adjacency = upper | upper.T
    assert largest_clique_size(adjacency) == brute_force_clique(adjacency)


@pytest.mark.parametrize("seed", range(25))
def test_near_duplicate_groups_are_disjoint_cliques_largest_first(seed: int):
    rng = np.random.default_rng(100 + seed)
    count = int(rng.integers(2, 12))
    upper = np.triu(rng.random((count, count)) < rng.uniform(0.2, 0.9), k=1)
    adjacency = upper | upper.T
    groups = near_duplicate_groups(adjacency)
    members = [seed for group in groups for seed in group]
    assert len(members) == len(set(members))  # disjoint
    assert all(adjacency[i, j] for g in groups for i, j in itertools.combinations(g, 2))
    assert [len(g) for g in groups] == sorted((len(g) for g in groups), reverse=True)
    assert all(len(g) >= 2 for g in groups)
    first = len(groups[0]) if groups else 1
    assert first == brute_force_clique(adjacency)
    left = [i for i in range(count) if i not in members]
    assert not any(adjacency[i, j] for i, j in itertools.combinations(left, 2))  # none missed


def test_grid_scores_name_the_groups_by_seed_index():
    distances = np.ones((6, 6))
    distances[np.ix_([1, 3, 4], [1, 3, 4])] = 0.0
    distances[0, 5] = distances[5, 0] = 0.0
    np.fill_diagonal(distances, 0.0)
    values = grid_scores(distances, "distance", threshold=0.15, cluster_eps=0.15)
    assert values["cliques"] == [[1, 3, 4], [0, 5]]
    assert values["clique_size"] == 3


def test_largest_clique_of_64_identical_seeds_is_fast_and_whole():
    adjacency = near_duplicates(np.zeros((64, 64)), "distance", 0.15)
    assert largest_clique_size(adjacency) == 64


def test_similarity_matrices_use_cosine_keys_and_membench_eps():
    """SSCD-style cosines: 5 replicas of one image (cos 0.9), 11 unrelated (cos 0.1)."""
    cosine = np.full((16, 16), 0.1)
    cosine[:5, :5] = 0.9
    np.fill_diagonal(cosine, 1.0)
    values = grid_scores(cosine, "similarity", threshold=0.5, cluster_eps=0.5)
    assert values["clique_share"] == 5 / 16
    assert values["cluster_share"] == 5 / 16
    assert values["median_similarity"] == pytest.approx(0.1)
    assert "median_distance" not in values


def test_dbscan_needs_three_seeds_for_a_cluster():
    distances = np.ones((6, 6))
    distances[0, 1] = distances[1, 0] = 0.0  # one near-identical pair only
    np.fill_diagonal(distances, 0.0)
    values = grid_scores(distances, "distance", threshold=0.15, cluster_eps=0.15)
    assert values["clique_size"] == 2
    assert values["cluster_size"] == 0


@pytest.mark.parametrize("seed", range(40))
def test_largest_cluster_is_scikit_learns_dbscan(seed: int):
    from sklearn.cluster import DBSCAN

    rng = np.random.default_rng(seed)
    count = int(rng.integers(2, 40))
    # Points on a line in a few bunches: chains, shared border points and noise all occur.
    points = rng.choice(rng.uniform(0, 1, 4), count) + rng.normal(0, 0.06, count)
    distances = np.abs(points[:, None] - points[None, :])
    eps = float(rng.uniform(0.02, 0.2))
    labels = DBSCAN(eps=eps, min_samples=3, metric="precomputed").fit_predict(distances)
    clustered = labels[labels >= 0]
    expected = int(np.bincount(clustered).max()) if clustered.size else 0
    assert largest_cluster_size(distances, eps) == expected


# ---- registry and images ----------------------------------------------------------------


def test_registry_names_every_metric_and_builds_them_with_options():
    assert set(METRICS) == {"tiled-l2", "phash", "keypoints", "gradients", "clip", "sscd"}
    assert set(DEFAULT_METRICS) <= set(METRICS)
    for name in METRICS:
        assert metric_class(name).name == name
    assert make_metric("tiled-l2", delta=0.1).threshold == 0.1
    with pytest.raises(KeyError, match="known: tiled-l2"):
        metric_class("ssim")


def test_corrupt_image_raises_input_error_naming_the_file(tmp_path):
    broken = tmp_path / "seed-3.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(InputError, match=r"seed-3\.png"):
        decode_rgb(broken)


def test_seed_pixels_squares_convert_resize_and_are_kept():
    grey = Image.new("L", (300, 200), 128)
    seed = SeedPixels.of(grey)
    pixels = seed.rgb_square(64)
    assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8
    assert np.all(pixels == 128)
    assert seed.size == (300, 200)
    assert seed.grey_square(32) is seed.grey_square(32)  # computed once per seed
    assert seed.grey_square(32).shape == (32, 32)
    assert SeedPixels.of(seed) is seed


def test_seed_pixels_crop_is_centred():
    rgb = np.zeros((400, 400, 3), dtype=np.uint8)
    rgb[100:300, 100:300] = 255  # a white centre half the side
    seed = SeedPixels(rgb)
    centre = seed.grey_square(10, crop=0.5)
    assert centre.mean() > 0.9 * 255 and centre[5, 5] == 255  # edges blur by a pixel at most
    assert seed.grey_square(10)[0, 0] == 0


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "I;16"])
def test_decode_pixels_gives_decode_rgbs_pixels(tmp_path, mode, monkeypatch):
    """libspng's PNG decode (the scoring path) and Pillow's give the same RGB for every mode."""
    drawn = Image.fromarray(np.random.default_rng(3).integers(0, 256, (40, 50, 3), np.uint8))
    if mode == "I;16":
        drawn = Image.fromarray(np.arange(2000, dtype=np.uint16).reshape(40, 50) * 30)
    else:
        drawn = drawn.convert(mode)
    if mode == "P":
        drawn.info["transparency"] = 0
    path = tmp_path / f"seed-{mode.replace(';', '')}.png"
    drawn.save(path)
    decoded_by_spng = []
    monkeypatch.setattr(images, "_spng_rgb", spy(images._spng_rgb, decoded_by_spng))
    assert np.array_equal(decode_pixels(path), np.asarray(decode_rgb(path)))
    assert len(decoded_by_spng) == (mode in images.SPNG_PNG_MODES)  # 16-bit grey: Pillow


def spy(function: Callable[..., Any], calls: list[tuple[Any, ...]]) -> Callable[..., Any]:
    def recorded(*args: Any) -> Any:
        calls.append(args)
        return function(*args)

    return recorded


def test_a_small_seed_is_enlarged_smoothly_not_in_blocks():
    """Keypoints look at 192 px: a 96 px seed grows by interpolation, not repeated pixels."""
    ramp = np.tile(np.linspace(0, 255, 96).astype(np.uint8), (96, 1))
    square = SeedPixels(np.dstack([ramp] * 3)).grey_square(192)
    steps = np.diff(square[96].astype(int))
    assert np.count_nonzero(steps == 0) < len(steps) / 4  # repeated pixels would make half


def test_decode_pixels_refuses_a_flipped_bit_that_libspng_alone_would_decode(tmp_path):
    """libspng skips checksums; every flipped bit must still be an error naming the file."""
    path = tmp_path / "seed-3.png"
    Image.fromarray(np.random.default_rng(4).integers(0, 256, (64, 64, 3), np.uint8)).save(path)
    data = path.read_bytes()
    assert images.png_checksums_match(data)
    for position in range(60, len(data) - 20, 97):
        flipped = bytearray(data)
        flipped[position] ^= 0x10
        path.write_bytes(bytes(flipped))
        assert not images.png_checksums_match(bytes(flipped))
        with pytest.raises(InputError, match=r"seed-3\.png"):
            decode_pixels(path)


def test_decode_pixels_names_a_png_whose_checksums_match_but_whose_data_is_not_zlib(tmp_path):
    """Crafted, not damaged: every CRC right, the pixel data garbage. libspng refuses it and
    Pillow's route names the file."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)  # 16 x 16, 8-bit RGB
    data = images.PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", b"\xff" * 64)
    data += chunk(b"IEND", b"")
    assert images.png_checksums_match(data)
    path = tmp_path / "seed-5.png"
    path.write_bytes(data)
    with pytest.raises(InputError, match=r"seed-5\.png"):
        decode_pixels(path)


def test_decode_pixels_names_a_truncated_png(tmp_path):
    path = tmp_path / "seed-7.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 9).save(path)
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(InputError, match=r"seed-7\.png"):
        decode_pixels(path)
