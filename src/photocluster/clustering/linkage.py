"""Linkage over a sparse graph of pairs: connected components (single linkage) and the
complete-linkage dendrogram of one component, as representative merges.

A merge ``(u, v, s)`` reads "the cluster holding u and the cluster holding v merge at
similarity s". Complete linkage has no inversions, so cutting the merges at ``t`` (the
connected components of the merges with ``s >= t``) gives exactly the complete-linkage
clusters at ``t``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

IntArray = npt.NDArray[np.int32]
IndexArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]
Edges = tuple[npt.NDArray[np.integer], npt.NDArray[np.integer], FloatArray]
Merges = tuple[IndexArray, IndexArray, FloatArray]

#: How far a component larger than ``linkage_max`` has its threshold raised per split.
SPLIT_STEP = 0.02


def preload() -> None:
    """Import scipy's hierarchical clustering now (writers call this at init). It costs
    ~250 ms and only writes need it, so readers such as the cluster API skip it."""
    _scipy_linkage()


def _scipy_linkage() -> Any:
    from scipy.cluster.hierarchy import linkage

    return linkage


def components(
    n: int, u: npt.NDArray[np.integer], v: npt.NDArray[np.integer]
) -> npt.NDArray[np.int32]:
    """Connected-component label of each of ``n`` nodes, given the edges ``u``-``v``."""
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    data = np.ones(len(u), dtype=np.int8)
    graph = coo_matrix((data, (u, v)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels, dtype=np.int32)


def no_merges() -> Merges:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)


def link_component(
    members: IndexArray,
    vectors: FloatArray,
    edges: Edges,
    linkage_max: int,
    level: float,
) -> tuple[Merges, float]:
    """Complete-linkage merges (>= ``level``) of one component; and the threshold from
    which they equal complete linkage on the full matrix.

    A component larger than ``linkage_max`` is split at a raised threshold first (its parts
    are the components of its edges above that level), so the dense work stays bounded;
    merges below the raised level are then not recorded (groups only get smaller).
    """
    if len(members) > linkage_max:
        return _link_in_parts(members, vectors, edges, linkage_max, level)
    if len(members) == 2:
        return _link_pair(members, vectors, level), level
    return _complete_linkage(members, vectors, level), level


def _link_in_parts(
    members: IndexArray, vectors: FloatArray, edges: Edges, linkage_max: int, level: float
) -> tuple[Merges, float]:
    raised = min(level + SPLIT_STEP, 1.0)
    parts = [p for p in _parts_above(members, len(vectors), edges, raised) if len(p) >= 2]
    linked = [link_component(p, vectors, edges, linkage_max, raised) for p in parts]
    exact = max([raised] + [exact for _, exact in linked])
    if not linked:
        return no_merges(), exact
    return concat_merges([merges for merges, _ in linked]), exact


def _parts_above(members: IndexArray, n_rows: int, edges: Edges, level: float) -> list[IndexArray]:
    """The members split into the connected components of their edges at >= ``level``."""
    u, v, s = edges
    inside = np.zeros(n_rows, dtype=bool)
    inside[members] = True
    mask = inside[u] & inside[v] & (s >= level)
    local = np.full(n_rows, -1, dtype=np.int64)
    local[members] = np.arange(len(members))
    sub = components(len(members), local[u[mask]], local[v[mask]])
    return [members[sub == label] for label in np.unique(sub)]


def _link_pair(members: IndexArray, vectors: FloatArray, level: float) -> Merges:
    pair_sim = float(vectors[members[0]] @ vectors[members[1]])
    if pair_sim < level:
        return no_merges()
    return members[:1], members[1:], np.array([pair_sim], dtype=np.float32)


def _complete_linkage(members: IndexArray, vectors: FloatArray, level: float) -> Merges:
    k = len(members)
    sub_vectors = vectors[members]
    sims = np.clip(sub_vectors @ sub_vectors.T, -1.0, 1.0).astype(np.float64)
    distances = 1.0 - sims
    # Pairs below the level never join a recorded merge: make them maximally distant.
    distances[sims < level] = 3.0
    rows, cols = np.triu_indices(k, 1)
    tree = _scipy_linkage()(distances[rows, cols], method="complete")
    # Representative leaf of each cluster (leaves 0..k-1, then one per merge row).
    rep = np.empty(2 * k - 1, dtype=np.int64)
    rep[:k] = np.arange(k)
    a = tree[:, 0].astype(np.int64)
    b = tree[:, 1].astype(np.int64)
    for row in range(k - 1):  # O(k) bookkeeping per dirty component, at write time only
        rep[k + row] = rep[a[row]]
    merge_s = (1.0 - tree[:, 2]).astype(np.float32)
    valid = merge_s >= np.float32(level)
    return members[rep[a[valid]]], members[rep[b[valid]]], merge_s[valid]


def concat_merges(parts: list[Merges]) -> Merges:
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )
