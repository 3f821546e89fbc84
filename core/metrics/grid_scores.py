"""Grid-level scores from any pairwise matrix: near-duplicate clique, DBSCAN cluster, median.

Every metric reports these under the same keys, so the categorizer reads one vocabulary.
Carlini et al. call a prompt memorized when a clique of near-identical generations forms;
MemBench clusters SSCD distances with DBSCAN (eps 0.5, min_samples 3).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from memgrid.core.errors import UnavailableError

MatrixKind = Literal["distance", "similarity"]
# MemBench (Hong et al.) counts a memorized image as a DBSCAN cluster of at least three
# generations (min_samples includes the point itself, as in scikit-learn).
DBSCAN_MIN_SAMPLES = 3


def require_seeds(count: int) -> None:
    """Consistency across seeds needs at least two seeds to compare."""
    if count < 2:
        raise UnavailableError(f"a grid needs at least 2 seeds to compare, this one has {count}")


def near_duplicates(matrix: np.ndarray, kind: MatrixKind, threshold: float) -> np.ndarray:
    """Boolean adjacency of near-duplicate pairs (inclusive), without self-loops."""
    close = matrix <= threshold if kind == "distance" else matrix >= threshold
    close = close & close.T  # a pair is close only if both directions agree
    np.fill_diagonal(close, False)
    return close


def largest_clique_size(adjacency: np.ndarray) -> int:
    """Size of the maximum clique; 1 if no edges, 0 for no seeds."""
    count = adjacency.shape[0]
    return len(largest_clique(adjacency, (1 << count) - 1)) if count else 0


def largest_clique(adjacency: np.ndarray, allowed: int) -> list[int]:
    """Members of a maximum clique among the `allowed` vertices (a bitset), in index order.

    Bron–Kerbosch with pivoting over bitsets: exact and fast for grids of tens of seeds; a
    complete graph (all seeds identical) is solved in one pass because the pivot covers
    every other vertex. Ties go to the clique found first, so the result is deterministic.
    """
    count = adjacency.shape[0]
    neighbours = [
        sum(1 << int(j) for j in np.flatnonzero(adjacency[i])) & allowed for i in range(count)
    ]
    best = allowed & -allowed  # one vertex is a clique

    def expand(members: int, candidates: int, excluded: int) -> None:
        nonlocal best
        if candidates == 0:
            if members.bit_count() > best.bit_count():
                best = members
            return
        if members.bit_count() + candidates.bit_count() <= best.bit_count():
            return  # cannot beat the best clique found so far
        pivot_pool = candidates | excluded
        pivot = max(_bits(pivot_pool), key=lambda v: (neighbours[v] & candidates).bit_count())
        for vertex in _bits(candidates & ~neighbours[pivot]):
            bit = 1 << vertex
            expand(members | bit, candidates & neighbours[vertex], excluded & neighbours[vertex])
            candidates &= ~bit
            excluded |= bit

    expand(0, allowed, 0)
    return _bits(best)


def near_duplicate_groups(adjacency: np.ndarray) -> list[list[int]]:
    """Disjoint cliques of near-duplicate seeds, largest first (each of 2 seeds or more).

    The largest clique is taken out, then the largest among the seeds left, and so on: the
    groups an annotator sees marked on the grid (one colour each), by seed index.
    """
    left = (1 << adjacency.shape[0]) - 1
    groups = []
    while left:
        clique = largest_clique(adjacency, left)
        if len(clique) < 2:
            break
        groups.append(clique)
        for vertex in clique:
            left &= ~(1 << vertex)
    return groups


def _bits(mask: int) -> list[int]:
    indices = []
    while mask:
        low = mask & -mask
        indices.append(low.bit_length() - 1)
        mask ^= low
    return indices


def largest_cluster_size(distances: np.ndarray, eps: float) -> int:
    """Largest DBSCAN cluster (precomputed distances, min_samples 3, as MemBench); 0 if none.

    scikit-learn's DBSCAN step by step (neighbours within eps inclusive, the point itself
    counted; clusters grown from core points in index order, a border point joining the
    first cluster that reaches it), without its per-call validation, which costs more than
    the clustering of a grid's few dozen seeds. tests/core/test_metrics.py checks it
    against scikit-learn itself.
    """
    neighbourhoods = np.clip(distances, 0.0, None) <= eps
    core = neighbourhoods.sum(axis=1) >= DBSCAN_MIN_SAMPLES
    labels = np.full(len(distances), -1)
    sizes = [0]
    for start in np.flatnonzero(core):
        if labels[start] != -1:
            continue
        label, size, stack = len(sizes), 0, [int(start)]
        while stack:
            point = stack.pop()
            if labels[point] != -1:
                continue
            labels[point] = label
            size += 1
            if core[point]:
                stack.extend(
                    int(j) for j in np.flatnonzero(neighbourhoods[point]) if labels[j] == -1
                )
        sizes.append(size)
    return max(sizes)


def grid_scores(
    matrix: np.ndarray, kind: MatrixKind, threshold: float, cluster_eps: float
) -> dict[str, Any]:
    """The grid-level values every metric reports, under the keys the categorizer reads."""
    count = matrix.shape[0]
    require_seeds(count)
    distances = matrix if kind == "distance" else 1.0 - matrix
    pairs = matrix[np.triu_indices(count, k=1)]
    groups = near_duplicate_groups(near_duplicates(matrix, kind, threshold))
    clique = len(groups[0]) if groups else 1
    cluster = largest_cluster_size(distances, cluster_eps)
    values: dict[str, Any] = {
        "n_seeds": count,
        "clique_size": clique,
        "clique_share": clique / count,
        "cluster_size": cluster,
        "cluster_share": cluster / count,
        "threshold": threshold,
        "cliques": groups,  # seed indices, largest group first: marked on the grid
    }
    median = float(np.median(pairs))
    if kind == "distance":
        values["median_distance"] = median
        values["median_similarity"] = 1.0 - median
    else:
        values["median_similarity"] = median
    return values
