"""Finding a seed's near neighbours in a pool of reference images, by perceptual hash.

Each reference carries its 64-bit pHash (stored in memgrid.db beside the reference). A
near-duplicate sits within 10 of 64 bits (docs/design.md, "Signals"), so the index answers
"which references lie within `radius` bits", exactly, by multi-index hashing (Norouzi et
al. 2012): the hash is cut into 4 chunks of 16 bits, and by the pigeonhole principle any
hash within 11 bits agrees with the query within 2 bits on at least one chunk. Each chunk
is a sorted table (a bucket per 16-bit value); a query probes the 137 values within 2 bits
of each of its chunks and checks the few hashes found there in full. That keeps a 1M
pool's query far below a scan of every hash (bench/refs.py measures both).

`VectorIndex` is the same question for embeddings (CLIP, SSCD): exact cosine top-k by one
matrix product, enough for pools up to about 100k references on 2 cores; beyond that, an
approximate index (faiss' IVF-PQ) is the documented path (docs/design.md).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from PIL import Image

from memgrid.core.metrics.phash import PHash

HASH_BITS = 64
CHUNKS = 4
CHUNK_BITS = HASH_BITS // CHUNKS
# A pHash near-duplicate is <= 10 bits; one more bit of slack, and 11 // 4 = 2 bits per chunk.
DEFAULT_RADIUS = 11
DEFAULT_NEIGHBOURS = 4


@dataclass(frozen=True)
class Neighbour:
    reference_id: int
    distance: float  # hash bits apart (HashIndex), or 1 - cosine (VectorIndex)


def phash_value(image: Image.Image) -> int:
    """The image's 64-bit pHash (the `phash` metric's own) as a signed int, as SQLite stores it."""
    bits = PHash().hashes([image])[0]
    packed = np.packbits(bits.astype(np.uint8)).view(">u8")[0]
    return int(np.int64(np.uint64(packed).astype(np.int64)))


def as_unsigned(values: Sequence[int] | np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).view(np.uint64)


@functools.cache
def _chunk_masks(radius: int) -> np.ndarray:
    """Every 16-bit mask with at most `radius` bits set: the probes around one chunk value."""
    masks = [0]
    for bits in range(1, radius + 1):
        masks += [sum(1 << b for b in chosen) for chosen in combinations(range(CHUNK_BITS), bits)]
    return np.array(masks, dtype=np.int64)


class HashIndex:
    """Exact pHash range search over a pool: references within `radius` bits of a query."""

    def __init__(self, ids: Sequence[int] | np.ndarray, hashes: Sequence[int] | np.ndarray) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self.hashes = as_unsigned(hashes)
        if self.ids.shape != self.hashes.shape:
            raise ValueError("one hash per reference id")
        self._orders: list[np.ndarray] = []
        self._starts: list[np.ndarray] = []
        for chunk in range(CHUNKS):
            values = self._chunk(self.hashes, chunk)
            order = np.argsort(values, kind="stable").astype(np.int32)
            self._orders.append(order)
            self._starts.append(
                np.searchsorted(values[order], np.arange(1 << CHUNK_BITS + 1), side="left").astype(
                    np.int64
                )
            )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        tables = sum(o.nbytes for o in self._orders) + sum(s.nbytes for s in self._starts)
        return self.ids.nbytes + self.hashes.nbytes + tables

    @staticmethod
    def _chunk(hashes: np.ndarray, chunk: int) -> np.ndarray:
        return ((hashes >> np.uint64(chunk * CHUNK_BITS)) & np.uint64(0xFFFF)).astype(np.int64)

    def query(
        self,
        hashes: Sequence[int],
        radius: int = DEFAULT_RADIUS,
        neighbours: int = DEFAULT_NEIGHBOURS,
    ) -> list[list[Neighbour]]:
        """For each query hash, up to `neighbours` references within `radius` bits, nearest first."""
        if not 0 <= radius < HASH_BITS:
            raise ValueError("radius must be in 0..63 bits")
        queries = as_unsigned(hashes)
        owners, positions = self._probe_all(queries, _chunk_masks(radius // CHUNKS))
        distances = np.bitwise_count(self.hashes[positions] ^ queries[owners])
        # A hash close on several chunks is found more than once: keep each pair once.
        close = np.unique((owners * len(self.ids) + positions)[distances <= radius])
        owners, positions = np.divmod(close, len(self.ids))
        distances = np.bitwise_count(self.hashes[positions] ^ queries[owners]).astype(np.int64)
        order = np.lexsort((self.ids[positions], distances, owners))
        answers: list[list[Neighbour]] = [[] for _ in queries]
        for i in order:
            row = answers[owners[i]]
            if len(row) < neighbours:
                row.append(Neighbour(int(self.ids[positions[i]]), float(distances[i])))
        return answers

    def _distances(self, queries: np.ndarray) -> np.ndarray:
        """Bits apart of every query and every hash, (queries, pool): the scan."""
        return np.bitwise_count(queries[:, None] ^ self.hashes[None, :])

    def _probe_all(self, queries: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query, position) of every hash within the masks' bits of a query on some chunk."""
        owners, positions = [], []
        probe_owner = np.repeat(np.arange(len(queries)), len(masks))
        for chunk in range(CHUNKS):
            probes = (self._chunk(queries, chunk)[:, None] ^ masks[None, :]).ravel()
            starts = self._starts[chunk]
            low, high = starts[probes], starts[probes + 1]
            lengths = high - low
            total = int(lengths.sum())
            # Concatenated ranges [low, high) without a Python loop.
            offsets = np.repeat(low - (np.cumsum(lengths) - lengths), lengths) + np.arange(total)
            positions.append(self._orders[chunk][offsets].astype(np.int64))
            owners.append(np.repeat(probe_owner, lengths))
        return np.concatenate(owners), np.concatenate(positions)

    def scan(self, hashes: Sequence[int], radius: int = DEFAULT_RADIUS) -> list[list[int]]:
        """The same answer by comparing with every hash (the baseline bench/refs.py times)."""
        return [
            sorted(self.ids[row <= radius].tolist()) for row in self._distances(as_unsigned(hashes))
        ]


class VectorIndex:
    """Exact cosine top-k over L2-normalised embeddings (CLIP, SSCD) by one matrix product."""

    def __init__(self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        matrix = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        self.matrix = matrix / np.maximum(norms, 1e-12)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        return self.ids.nbytes + self.matrix.nbytes

    def query(
        self, vectors: np.ndarray, neighbours: int = DEFAULT_NEIGHBOURS
    ) -> list[list[Neighbour]]:
        queries = np.asarray(vectors, dtype=np.float32)
        queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        similarity = queries @ self.matrix.T
        count = min(neighbours, len(self.ids))
        if count == 0:
            return [[] for _ in queries]
        top = np.argpartition(-similarity, count - 1, axis=1)[:, :count]
        answers = []
        for row, columns in zip(similarity, top, strict=True):
            ordered = columns[np.argsort(-row[columns], kind="stable")]
            answers.append([Neighbour(int(self.ids[c]), float(1.0 - row[c])) for c in ordered])
        return answers
