"""Linkage over a sparse graph of pairs: connected components (single linkage) and the
complete- and average-linkage dendrograms of one component, as representative merges.

A merge ``(u, v, s)`` reads "the cluster holding u and the cluster holding v merge at
similarity s". Complete and average linkage have no inversions, so cutting the merges at
``t`` (the connected components of the merges with ``s >= t``) gives exactly the clusters
at ``t``.

Average linkage (UPGMA) scores two clusters by the mean cosine similarity of their pairs,
all of them: the pairs below the graph's floor inside a component count with their true
similarity, read from the component's dense block of vectors that both dendrograms share.
Pairs the geometric check accepted (:class:`Copies`) count at least ``similarity`` in the
block (their edges carry that score too); a scene pair raises every pair across its two
copy groups to ``scene_similarity`` (:func:`photocluster.clustering.copies.raised`). An
average-linkage cluster at ``t`` is connected by pairs ``>= t`` (each merge crosses at least
one; a raised pair's rows are joined by copy and scene edges at least as high), so it lies
inside one component of the edges, and a component split at a raised level
(``linkage_max``) keeps it whole above that level, as for complete linkage.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from photocluster.clustering.copies import COPY_SIMILARITY, SCENE_SIMILARITY, raised
from photocluster.store.vectors import Rows

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


def _condensed(square: FloatArray) -> npt.NDArray[np.float64]:
    """The upper triangle of a symmetric matrix, row by row (scipy's condensed form)."""
    from scipy.spatial.distance import squareform  # loaded with hierarchy: writers only

    return np.asarray(squareform(square, checks=False, force="tovector"), dtype=np.float64)


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


_NO_ROWS: IndexArray = np.zeros(0, np.int64)


class Copies(NamedTuple):
    """Pairs of rows the geometric check found to be copies, and the similarity they count
    at least (above the high tier: a copy is a near-duplicate whatever its vectors say);
    and the pairs it found to show one scene, whose copy groups count ``scene_similarity``
    at least (between the medium and the high tier)."""

    u: IndexArray
    v: IndexArray
    similarity: float = COPY_SIMILARITY
    scene_u: IndexArray = _NO_ROWS
    scene_v: IndexArray = _NO_ROWS
    scene_similarity: float = SCENE_SIMILARITY

    def among(self, members: IndexArray) -> Copies:
        """The pairs with both rows in ``members`` (sorted rows)."""
        if not len(self.u) and not len(self.scene_u):
            return self
        copy = _is_member(members, self.u) & _is_member(members, self.v)
        scene = _is_member(members, self.scene_u) & _is_member(members, self.scene_v)
        return self._replace(
            u=self.u[copy], v=self.v[copy], scene_u=self.scene_u[scene], scene_v=self.scene_v[scene]
        )

    @property
    def empty(self) -> bool:
        return not len(self.u) and not len(self.scene_u)


def no_copies(
    similarity: float = COPY_SIMILARITY, scene_similarity: float = SCENE_SIMILARITY
) -> Copies:
    return Copies(_NO_ROWS, _NO_ROWS, similarity, _NO_ROWS, _NO_ROWS, scene_similarity)


def _is_member(members: IndexArray, rows: IndexArray) -> npt.NDArray[np.bool_]:
    if not len(rows):
        return np.zeros(0, dtype=bool)
    at = np.minimum(np.searchsorted(members, rows), len(members) - 1)
    return np.asarray(members[at] == rows)


class Linked(NamedTuple):
    """The merges of one or more components, per linkage; and for each average-linkage
    merge the lowest similarity of two photos in the cluster it makes (a group's score,
    kept so a read never computes it)."""

    complete: Merges
    average: Merges
    average_low: FloatArray


def no_merges() -> Merges:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)


def no_linked() -> Linked:
    return Linked(no_merges(), no_merges(), np.zeros(0, np.float32))


def link_component(
    members: IndexArray,
    vectors: Rows,
    edges: Edges,
    linkage_max: int,
    level: float,
    copies: Copies | None = None,
) -> tuple[Linked, float]:
    """Complete- and average-linkage merges (>= ``level``) of one component (sorted rows)
    with its ``copies`` raised; and the threshold from which they equal each linkage on the
    full matrix.

    A component larger than ``linkage_max`` is split at a raised threshold first (its parts
    are the components of its edges above that level), so the dense work stays bounded;
    merges below the raised level are then not recorded (groups only get smaller).
    """
    copies = no_copies() if copies is None else copies.among(members)
    if len(members) > linkage_max:
        return _link_in_parts(members, vectors, edges, linkage_max, level, copies)
    if len(members) == 2:
        two = vectors.take(members)
        pair = _link_pair(members, two, level, copies)
        low = np.clip(two[0] @ two[1], 0.0, 1.0)
        return Linked(pair, pair, np.full(len(pair[2]), low, np.float32)), level
    return _dense_linkage(members, vectors, level, copies), level


def _link_in_parts(
    members: IndexArray,
    vectors: Rows,
    edges: Edges,
    linkage_max: int,
    level: float,
    copies: Copies,
) -> tuple[Linked, float]:
    raised = min(level + SPLIT_STEP, 1.0)
    parts = [p for p in _parts_above(members, len(vectors), edges, raised) if len(p) >= 2]
    linked = [link_component(p, vectors, edges, linkage_max, raised, copies) for p in parts]
    exact = max([raised] + [exact for _, exact in linked])
    if not linked:
        return no_linked(), exact
    return concat_linked([merges for merges, _ in linked]), exact


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


def _link_pair(members: IndexArray, two: FloatArray, level: float, copies: Copies) -> Merges:
    """The merge of a component of two rows (``two``: their vectors)."""
    pair_sim = float(two[0] @ two[1])
    if len(copies.u):
        pair_sim = max(pair_sim, copies.similarity)
    elif len(copies.scene_u):
        pair_sim = max(pair_sim, copies.scene_similarity)
    if pair_sim < level:
        return no_merges()
    return members[:1], members[1:], np.array([pair_sim], dtype=np.float32)


def _dense_linkage(members: IndexArray, vectors: Rows, level: float, copies: Copies) -> Linked:
    """Both dendrograms of one component from one product of its vectors."""
    sub_vectors = vectors.take(members)
    square = np.clip(sub_vectors @ sub_vectors.T, -1.0, 1.0)
    plain = square  # a group's score is its vectors' (copies raise what links, not scores)
    if not copies.empty:
        square = raised(
            square,
            _local_pairs(members, copies.u, copies.v),
            _local_pairs(members, copies.scene_u, copies.scene_v),
            copies.similarity,
            copies.scene_similarity,
        )
    order = canonical_order(sub_vectors)
    square, members = square[np.ix_(order, order)], members[order]
    plain = plain[np.ix_(order, order)] if plain is not square else square
    sims = _condensed(square)
    distances = 1.0 - sims
    linkage = _scipy_linkage()
    average = linkage(distances, method="average")
    # Pairs below the level never join a recorded complete-linkage merge: make them
    # maximally distant (a cheaper tree, the same merges above the level).
    distances[sims < level] = 3.0
    complete = linkage(distances, method="complete")
    average_merges = _merges_of(average, members, level)
    low = _lowest_pairs(average, plain)[(1.0 - average[:, 2]).astype(np.float32) >= level]
    return Linked(_merges_of(complete, members, level), average_merges, low)


def canonical_order(vectors: FloatArray) -> IndexArray:
    """Rows in an order of their vectors. scipy breaks ties (two copies of one photo, both
    at the copy's value; a scene's raised block) by row order: in this order, not the
    upload's, the groups are the same whatever order the photos came in."""
    # a fixed direction of all the dimensions: a few leading ones can be equal across rows
    probe = np.random.default_rng(0).standard_normal(vectors.shape[1])
    return np.argsort(vectors.astype(np.float64) @ probe, kind="stable").astype(np.int64)


def _local_pairs(members: IndexArray, u: IndexArray, v: IndexArray) -> list[tuple[int, int]]:
    a, b = np.searchsorted(members, u).tolist(), np.searchsorted(members, v).tolist()
    return list(zip(a, b, strict=True))


def _merges_of(tree: npt.NDArray[np.float64], members: IndexArray, level: float) -> Merges:
    """A scipy linkage matrix (distance = 1 - similarity) as representative merges of
    ``members``, those at or above ``level``."""
    k = len(members)
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


def _lowest_pairs(tree: npt.NDArray[np.float64], square: FloatArray) -> FloatArray:
    """For each merge of a scipy linkage matrix, the lowest similarity of two leaves in the
    cluster it makes (clipped to [0, 1]). In the dendrogram's leaf order every cluster is a
    contiguous run, so the pairs a merge crosses are one block of the reordered matrix."""
    from scipy.cluster.hierarchy import leaves_list  # loaded with hierarchy: writers only

    k = len(square)
    leaves = leaves_list(tree)
    where = np.empty(k, dtype=np.int64)
    where[leaves] = np.arange(k)
    ordered = square[np.ix_(leaves, leaves)]
    first = np.empty(2 * k - 1, dtype=np.int64)  # each cluster's first place in leaf order
    size = np.ones(2 * k - 1, dtype=np.int64)
    first[:k] = where
    low = np.empty(2 * k - 1, dtype=np.float64)
    low[:k] = np.inf
    a, b = tree[:, 0].astype(np.int64), tree[:, 1].astype(np.int64)
    for row in range(k - 1):  # O(k) steps at write time; the blocks cover each pair once
        left, right = (a[row], b[row]) if first[a[row]] < first[b[row]] else (b[row], a[row])
        start, middle = first[left], first[left] + size[left]
        cross = ordered[start:middle, middle : middle + size[right]].min()
        low[k + row] = min(low[left], low[right], cross)
        first[k + row], size[k + row] = start, size[left] + size[right]
    return np.asarray(np.clip(low[k:], 0.0, 1.0), dtype=np.float32)


def concat_merges(parts: list[Merges]) -> Merges:
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )


def concat_linked(parts: list[Linked]) -> Linked:
    return Linked(
        concat_merges([p.complete for p in parts]),
        concat_merges([p.average for p in parts]),
        np.concatenate([p.average_low for p in parts]),
    )
