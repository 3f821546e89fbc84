"""The pool's hash index answers exactly what a scan of every hash answers."""

from __future__ import annotations

import numpy as np
import pytest

from memgrid.core.references.index import HashIndex, VectorIndex, phash_value
from tests.references.helpers import copied_seeds, training_image, varied_seeds


def test_multi_index_search_equals_a_full_scan() -> None:
    rng = np.random.default_rng(7)
    pool = rng.integers(-(2**63), 2**63 - 1, size=5_000, dtype=np.int64)
    # Plant near neighbours: each of 50 queries has copies at 0..14 flipped bits.
    queries = pool[:50].copy()
    planted = []
    for query in queries:
        for bits in range(15):
            flips = rng.choice(64, size=bits, replace=False)
            mask = np.uint64(sum(1 << int(b) for b in flips))
            planted.append((np.int64(query).view(np.uint64) ^ mask).view(np.int64))
    hashes = np.concatenate([pool, np.array(planted, dtype=np.int64)])
    index = HashIndex(np.arange(1, len(hashes) + 1), hashes)
    for radius in (0, 5, 11):
        found = index.query(queries, radius=radius, neighbours=len(hashes))
        assert [sorted(n.reference_id for n in row) for row in found] == index.scan(queries, radius)
        for row in found:
            distances = [n.distance for n in row]
            assert distances == sorted(distances) and all(d <= radius for d in distances)


def test_neighbours_caps_the_answer_nearest_first() -> None:
    index = HashIndex([10, 20, 30], [0b0, 0b1, 0b111])
    assert [(n.reference_id, n.distance) for n in index.query([0], neighbours=2)[0]] == [
        (10, 0.0),
        (20, 1.0),
    ]
    with pytest.raises(ValueError):
        index.query([0], radius=64)


def test_phash_finds_a_copy_not_a_varied_image() -> None:
    reference = phash_value(training_image("barn"))
    index = HashIndex([1], [reference])
    copies = [phash_value(image) for image in copied_seeds("barn")]
    varied = [phash_value(image) for image in varied_seeds("barn")]
    assert all(row and row[0].reference_id == 1 for row in index.query(copies))
    assert all(row == [] for row in index.query(varied))


def test_vector_index_top_k_by_cosine() -> None:
    vectors = np.array([[1, 0], [0, 1], [0.9, 0.1]], dtype=np.float32)
    index = VectorIndex([5, 6, 7], vectors)
    answer = index.query(np.array([[1.0, 0.0]]), neighbours=2)[0]
    assert [n.reference_id for n in answer] == [5, 7]
    assert answer[0].distance == pytest.approx(0.0, abs=1e-6)
