"""The edges a write adds to the neighbour graph: each new row's most similar earlier rows
above the floor (one ``b x N`` product per block of new rows, at most ``max_neighbours``
each), and the geometric check's pairs (copies, scenes) raised to what they count, or
added where the product left them out.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from photocluster.clustering.graph_types import (
    BoolArray,
    FloatArray,
    GraphParams,
    NeighbourGraph,
    Pairs,
)
from photocluster.clustering.linkage import Copies, Edges, IndexArray
from photocluster.store.vectors import Rows

_BLOCK_ROWS = 512  # rows of the similarity product computed at once (100,000 rows: 205 MB)


def verified_pairs(copies: Pairs | None, scenes: Pairs | None, params: GraphParams) -> Copies:
    copy_u, copy_v = _ordered(copies)
    scene_u, scene_v = _ordered(scenes)
    return Copies(copy_u, copy_v, params.copy_similarity, scene_u, scene_v, params.scene_similarity)


def _ordered(pairs: Pairs | None) -> Pairs:
    """The pairs as (lower row, higher row), each once."""
    if pairs is None or not len(pairs[0]):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    u, v = np.asarray(pairs[0], np.int64), np.asarray(pairs[1], np.int64)
    if (u == v).any():
        raise ValueError("a photo is not a copy of itself")
    unique = np.unique(np.stack([np.minimum(u, v), np.maximum(u, v)], 1), axis=0)
    return unique[:, 0], unique[:, 1]


def updated_edges(
    old: NeighbourGraph, vectors: Rows, kept: BoolArray, remap: IndexArray, copies: Copies
) -> tuple[Edges, bool, int]:
    """Old edges between kept rows (renumbered), then the new rows' edges, copies raised;
    whether a row's neighbours were capped, and how many of the edges are old."""
    n_kept = int(kept.sum())
    found_u, found_v, found_s, capped = _new_edges(vectors, n_kept, old.params)
    new_u, new_v, new_s = _with_copies((found_u, found_v, found_s), copies, n_kept, len(vectors))
    if kept.all():  # nothing removed: the old edges stand as they are
        old_u, old_v, old_s = old.edge_u, old.edge_v, old.edge_s
    else:
        keep_edge = kept[old.edge_u] & kept[old.edge_v]
        old_u = remap[old.edge_u[keep_edge]].astype(np.int32)
        old_v = remap[old.edge_v[keep_edge]].astype(np.int32)
        old_s = old.edge_s[keep_edge]
    edge_u = np.concatenate([old_u, new_u.astype(np.int32)])
    edge_v = np.concatenate([old_v, new_v.astype(np.int32)])
    edge_s = np.concatenate([old_s, new_s.astype(np.float32)])
    return (edge_u, edge_v, edge_s), capped, len(old_u)


def verified_edges(copies: Pairs | None, scenes: Pairs | None, params: GraphParams) -> Edges:
    """The edges the geometric check's pairs are kept at: a copy at ``copy_similarity``, a
    scene pair at ``scene_similarity`` (a pair given as both counts as a copy)."""
    return _edges_of(verified_pairs(copies, scenes, params))


def _edges_of(copies: Copies) -> Edges:
    u = np.concatenate([copies.u, copies.scene_u])
    v = np.concatenate([copies.v, copies.scene_v])
    s = np.concatenate(
        [
            np.full(len(copies.u), copies.similarity, np.float32),
            np.full(len(copies.scene_u), copies.scene_similarity, np.float32),
        ]
    )
    order = np.lexsort((-s, v, u))  # each pair once, at its highest value
    u, v, s = u[order], v[order], s[order]
    first = np.ones(len(u), dtype=bool)
    first[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
    return u[first], v[first], s[first]


def _with_copies(edges: Edges, copies: Copies, n_kept: int, n: int) -> Edges:
    """New edges with the verified pairs that involve a new row: raised where they are
    edges already, added where they are not (below the floor, or past the neighbour cap)."""
    pu, pv, ps = _edges_of(copies)
    new = pv >= n_kept
    cu, cv, cs = pu[new], pv[new], ps[new]
    u, v, s = edges
    if not len(cu):
        return edges
    keys, pair_keys = u.astype(np.int64) * n + v, cu * n + cv
    at = np.searchsorted(pair_keys, keys)  # pair_keys are sorted: (u, v) ascending
    found = (at < len(pair_keys)) & (pair_keys[np.minimum(at, len(pair_keys) - 1)] == keys)
    s = np.where(found, np.maximum(s, cs[np.minimum(at, len(cs) - 1)]), s).astype(np.float32)
    extra = ~np.isin(pair_keys, keys)
    return (
        np.concatenate([u, cu[extra]]),
        np.concatenate([v, cv[extra]]),
        np.concatenate([s, cs[extra]]),
    )


def _new_edges(
    vectors: Rows, start: int, params: GraphParams
) -> tuple[IndexArray, IndexArray, FloatArray, bool]:
    """Edges (earlier j, new i, s) for rows i >= start against every row j < i."""
    us, vs, ss = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, np.float32)]
    capped = False
    for lo in range(start, len(vectors), _BLOCK_ROWS):
        hi = min(lo + _BLOCK_ROWS, len(vectors))
        queries = vectors.take(np.arange(lo, hi))
        rows, cols, s = vectors.above(queries, params.floor, upto=hi)  # only j < i matter
        earlier = cols < rows + lo
        rows, cols, s = rows[earlier], cols[earlier], s[earlier]
        keep = _nearest_per_row(rows, s, hi - lo, params.max_neighbours)
        capped = capped or not keep.all()
        us.append(cols[keep].astype(np.int64))
        vs.append((rows[keep] + lo).astype(np.int64))
        ss.append(s[keep].astype(np.float32))
    return np.concatenate(us), np.concatenate(vs), np.concatenate(ss), capped


def _nearest_per_row(
    rows: npt.NDArray[np.integer], s: FloatArray, n_rows: int, limit: int
) -> BoolArray:
    """Mask keeping each row's ``limit`` most similar pairs (all of them when under it)."""
    counts = np.bincount(rows, minlength=n_rows)
    if not (counts > limit).any():
        return np.ones(len(rows), dtype=bool)
    order = np.lexsort((-s, rows))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(rows), dtype=np.int64)
    rank[order] = np.arange(len(rows)) - starts[rows[order]]
    return rank < limit
