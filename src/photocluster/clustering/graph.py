"""The write-time neighbour graph: pairwise work done once per upload, not once per query.

For a user's images (in store order) the graph keeps

* **edges**: every pair with cosine similarity >= ``floor``, found when the later image of
  the pair was stored (one ``b x N`` product per write of ``b`` images), at most
  ``max_neighbours`` per new image (its most similar earlier images);
* **merges**: the complete- and the average-linkage dendrogram of each connected
  component of the edges, down to the floor, as representative pairs (see
  :mod:`photocluster.clustering.linkage`).

Pairs the geometric check found to be copies (:mod:`photocluster.clustering.copies`) are
given with the rows: their edge is kept whatever its cosine, at a similarity of at least
``copy_similarity`` (above the high tier), and the linkages count them so. Pairs it found
to show one scene are kept at ``scene_similarity`` (between the medium and the high tier),
and the linkages count every pair across their copy groups so.

A query at threshold ``t >= floor`` is then a cut: the connected components of the merges
with ``s >= t`` are exactly the complete- (or average-) linkage clusters at ``t``, and the
components of the edges with ``s >= t`` are the single-linkage clusters. Each is one
sparse connected-components call.

Invariant: every pair inside a complete-linkage group has similarity (a copy's raised one)
>= the threshold. The
per-image neighbour cap and the component-size cap (``linkage_max``) only ever make groups
smaller, never let a dissimilar pair in; ``exact_from`` records the threshold from which the
merges equal complete (and average) linkage on the full matrix. Below it, average-linkage
groups too are only ever smaller; the neighbour cap (``capped``) can change them, as it
changes the components they are linked in.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from photocluster.clustering.copies import COPY_SIMILARITY, SCENE_SIMILARITY
from photocluster.clustering.linkage import (
    Copies,
    Edges,
    IndexArray,
    Linked,
    Merges,
    components,
    concat_linked,
    link_component,
)
from photocluster.ids import ID_DTYPE, IdArray
from photocluster.store.vectors import Rows, as_rows

_BLOCK_ROWS = 512  # rows of the similarity product computed at once (100,000 rows: 205 MB)

_NO_LOWS: npt.NDArray[np.float32] = np.zeros(0, np.float32)
_NO_POSITIONS: npt.NDArray[np.int64] = np.zeros(0, np.int64)
_NO_LABELS: npt.NDArray[np.int32] = np.zeros(0, np.int32)

IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class GraphParams:
    """How the graph is built; fixed per graph (a change means a rebuild)."""

    floor: float
    max_neighbours: int = 128
    linkage_max: int = 2000
    copy_similarity: float = COPY_SIMILARITY  # what a copy counts at least
    scene_similarity: float = SCENE_SIMILARITY  # what a scene pair's copy groups count at least


@dataclass(frozen=True)
class NeighbourGraph:
    """Edges, complete-linkage merges (``merge_*``) and average-linkage merges
    (``average_*``) over ``n`` images (see the module docstring)."""

    ids: IdArray
    params: GraphParams
    edge_u: IntArray
    edge_v: IntArray
    edge_s: FloatArray
    merge_u: IntArray
    merge_v: IntArray
    merge_s: FloatArray
    average_u: IntArray
    average_v: IntArray
    average_s: FloatArray
    exact_from: float
    capped: bool
    #: each average merge's cluster's lowest pair (NaN: read from a file that lacks them)
    average_low: FloatArray = field(default_factory=lambda: _NO_LOWS)
    #: where each row's record is in the store file (inode ``inode``) at ``generation``:
    #: reads map the rows they need instead of loading the user (empty: not known)
    positions: npt.NDArray[np.int64] = field(default_factory=lambda: _NO_POSITIONS)
    inode: int = -1
    #: each row's connected component of the edges (empty: not known, e.g. loaded for
    #: clustering only); a write that only appends joins components instead of finding
    #: them again over every edge
    components: IntArray = field(default_factory=lambda: _NO_LABELS)
    generation: int = -1
    model: str = ""
    has_edges: bool = True  # False when loaded for clustering only (edges skipped)
    has_average: bool = True  # False when read from a file older than average linkage

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def floor(self) -> float:
        return self.params.floor

    def labels(self, threshold: float, linkage: str) -> npt.NDArray[np.int32]:
        """Cluster label of every image at ``threshold`` (complete, average or single)."""
        if linkage == "complete":
            u, v, s = self.merge_u, self.merge_v, self.merge_s
        elif linkage == "average":
            u, v, s = self.average_u, self.average_v, self.average_s
        elif linkage == "single":
            u, v, s = self.edge_u, self.edge_v, self.edge_s
        else:
            raise ValueError(f"unknown linkage {linkage!r}")
        if linkage == "single" and not self.has_edges:
            raise ValueError("this graph was loaded without its edges")
        if linkage == "average" and not self.has_average:
            raise ValueError("this graph predates average linkage (relink it)")
        mask = s >= np.float32(threshold)
        return components(self.n, u[mask], v[mask])


def empty_graph(params: GraphParams) -> NeighbourGraph:
    zi = np.zeros(0, dtype=np.int32)
    zf = np.zeros(0, dtype=np.float32)
    return NeighbourGraph(
        ids=np.zeros(0, dtype=ID_DTYPE),
        params=params,
        edge_u=zi,
        edge_v=zi,
        edge_s=zf,
        merge_u=zi,
        merge_v=zi,
        merge_s=zf,
        average_u=zi,
        average_v=zi,
        average_s=zf,
        exact_from=params.floor,
        capped=False,
    )


Pairs = tuple[IndexArray, IndexArray]


def build_graph(
    ids: IdArray,
    vectors: Rows | FloatArray,
    params: GraphParams,
    copies: Pairs | None = None,
    scenes: Pairs | None = None,
) -> NeighbourGraph:
    """The graph of ``vectors`` (unit rows, store order) from scratch; ``copies`` and
    ``scenes``: the rows of pairs the geometric check accepted, by what they are."""
    empty = empty_graph(params)
    rows = as_rows(vectors)
    return update_graph(empty, ids, rows, np.zeros(0, dtype=bool), len(ids), copies, scenes)


def stamp(
    graph: NeighbourGraph,
    generation: int,
    model: str,
    positions: npt.NDArray[np.int64] = _NO_POSITIONS,
    inode: int = -1,
) -> NeighbourGraph:
    """The same graph, labelled with the store generation and model it reflects, and
    where its rows' records are in that store file (``inode``)."""
    if len(positions) not in (0, graph.n):
        raise ValueError(f"{len(positions)} positions for a graph of {graph.n} rows")
    return replace(graph, generation=generation, model=model, positions=positions, inode=inode)


def update_graph(
    old: NeighbourGraph,
    ids: IdArray,
    vectors: Rows | FloatArray,
    kept: BoolArray,
    appended: int,
    copies: Pairs | None = None,
    scenes: Pairs | None = None,
) -> NeighbourGraph:
    """The graph after a write that kept rows ``kept`` of ``old`` and appended ``appended``.

    ``ids``/``vectors`` are the new rows: ``old.ids[kept]`` followed by the appended ones;
    ``copies`` and ``scenes``, every pair of them the geometric check accepted (new row
    numbers; those between kept rows are already edges of ``old``). Only new images are
    compared with the rest, only the components that gained or lost an image are linked
    again (all of them when ``old`` predates average linkage); the others keep their merges.
    """
    n_kept = _check_update(old, ids, kept, appended)
    vectors = as_rows(vectors)
    remap = np.full(old.n, -1, dtype=np.int64)
    remap[kept] = np.arange(n_kept)
    pairs = _verified(copies, scenes, old.params)
    edges, capped, n_old = _updated_edges(old, vectors, kept, remap, pairs)
    labels = _labels_after(old, kept, edges, n_old, len(ids))
    dirty = _dirty_components(old, kept, labels, n_kept)
    merges, exact_from = _clean_merges(old, remap, labels, dirty)
    for members in _dirty_members(labels, dirty):
        linked, exact = link_component(
            members, vectors, edges, old.params.linkage_max, old.params.floor, pairs
        )
        merges.append(linked)
        exact_from = max(exact_from, exact)
    (merge_u, merge_v, merge_s), (average_u, average_v, average_s), low = concat_linked(merges)
    return NeighbourGraph(
        ids=ids,
        params=old.params,
        edge_u=edges[0].astype(np.int32, copy=False),
        edge_v=edges[1].astype(np.int32, copy=False),
        edge_s=edges[2],
        merge_u=merge_u.astype(np.int32, copy=False),
        merge_v=merge_v.astype(np.int32, copy=False),
        merge_s=merge_s.astype(np.float32, copy=False),
        average_u=average_u.astype(np.int32, copy=False),
        average_v=average_v.astype(np.int32, copy=False),
        average_s=average_s.astype(np.float32, copy=False),
        exact_from=float(exact_from),
        capped=old.capped or capped,
        average_low=low.astype(np.float32, copy=False),
        components=labels,
    )


def _labels_after(
    old: NeighbourGraph, kept: BoolArray, edges: Edges, n_old: int, n: int
) -> npt.NDArray[np.int32]:
    """Each row's component after the write, from ``old``'s when it knows them: a component
    that lost a row is found again over its own edges (it may have split), the others keep
    their label, and the new rows' edges (``edges`` after the first ``n_old``) join them; in
    O(edges of the changed components + new edges). Else found again over every edge."""
    if len(old.components) != old.n:
        return components(n, edges[0], edges[1])
    labels = old.components[kept]
    known = int(old.components.max()) + 1 if old.n else 0
    if not kept.all():
        lost = np.zeros(known, dtype=bool)
        lost[old.components[~kept]] = True
        changed = lost[labels]  # kept rows whose component lost a row
        rows = np.flatnonzero(changed)
        u, v = edges[0][:n_old], edges[1][:n_old]  # old edges, between kept rows
        inside = changed[u] & changed[v]  # an edge never joins two components
        local = np.full(len(labels), -1, dtype=np.int64)
        local[rows] = np.arange(len(rows))
        labels = labels.copy()
        labels[rows] = known + components(len(rows), local[u[inside]], local[v[inside]])
        known += len(rows)
    node = np.concatenate([labels, known + np.arange(n - len(labels), dtype=np.int32)])
    new_u, new_v = node[edges[0][n_old:]], node[edges[1][n_old:]]
    return np.asarray(components(known + n - len(labels), new_u, new_v)[node], dtype=np.int32)


def relink(
    graph: NeighbourGraph,
    vectors: Rows | FloatArray,
    copies: Pairs | None = None,
    scenes: Pairs | None = None,
) -> NeighbourGraph:
    """The same images and edges with every component linked again (e.g. a graph read
    from a file older than average linkage); ``vectors`` are the graph's rows."""
    every = np.ones(graph.n, dtype=bool)
    return update_graph(graph, graph.ids, vectors, every, 0, copies, scenes)


def _verified(copies: Pairs | None, scenes: Pairs | None, params: GraphParams) -> Copies:
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


def _check_update(old: NeighbourGraph, ids: IdArray, kept: BoolArray, appended: int) -> int:
    """The number of kept rows, once the update is known to match ``old``."""
    n_kept = int(kept.sum())
    if len(kept) != old.n or n_kept + appended != len(ids):
        raise ValueError("update does not match the graph it updates")
    if n_kept and not np.array_equal(old.ids[kept], ids[:n_kept]):
        raise ValueError("kept rows do not match the graph's ids")
    return n_kept


def _updated_edges(
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
    return _edges_of(_verified(copies, scenes, params))


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


def _dirty_components(
    old: NeighbourGraph, kept: BoolArray, labels: npt.NDArray[np.int32], n_kept: int
) -> BoolArray:
    """Components (of the new edges, at the floor) to link again: those that gained a new
    row, and those holding rows of an old component that lost a row (its dendrogram may
    have changed)."""
    n_labels = int(labels.max()) + 1 if len(labels) else 0
    if not old.has_average:
        return np.ones(n_labels, dtype=bool)
    dirty = np.zeros(n_labels, dtype=bool)
    dirty[labels[n_kept:]] = True
    if old.n and not kept.all():
        known = len(old.components) == old.n
        old_labels = old.components if known else components(old.n, old.edge_u, old.edge_v)
        lost = np.zeros(int(old_labels.max()) + 1, dtype=bool)
        lost[old_labels[~kept]] = True
        dirty[labels[:n_kept][lost[old_labels[kept]]]] = True
    return dirty


def _clean_merges(
    old: NeighbourGraph, remap: IndexArray, labels: npt.NDArray[np.int32], dirty: BoolArray
) -> tuple[list[Linked], float]:
    """The old merges of components that stay clean (renumbered), and the threshold from
    which they are exact."""
    complete, _ = _kept_merges((old.merge_u, old.merge_v, old.merge_s), remap, labels, dirty)
    old_average = (old.average_u, old.average_v, old.average_s)
    average, kept = _kept_merges(old_average, remap, labels, dirty)
    exact_from = old.exact_from if len(complete[0]) or len(average[0]) else old.params.floor
    return [Linked(complete, average, _lows(old)[kept])], exact_from


def _lows(graph: NeighbourGraph) -> FloatArray:
    """The graph's average merges' lows, NaN for a graph read from a file without them."""
    if len(graph.average_low) == len(graph.average_s):
        return graph.average_low
    return np.full(len(graph.average_s), np.nan, dtype=np.float32)


def _kept_merges(
    merges: tuple[IntArray, IntArray, FloatArray],
    remap: IndexArray,
    labels: npt.NDArray[np.int32],
    dirty: BoolArray,
) -> tuple[Merges, BoolArray]:
    u, v, s = merges
    keep = np.zeros(len(u), dtype=bool)
    if len(u):
        mu, mv = remap[u], remap[v]
        keep = (mu >= 0) & (mv >= 0)
        keep[keep] = ~dirty[labels[mu[keep]]]
    return (remap[u[keep]], remap[v[keep]], s[keep]), keep


def _dirty_members(labels: npt.NDArray[np.int32], dirty: BoolArray) -> list[IndexArray]:
    """The rows of each dirty component of two or more images, one array per component."""
    sizes = np.bincount(labels, minlength=len(dirty))
    dirty = dirty & (sizes >= 2)
    if not dirty.any():
        return []
    member_rows = np.flatnonzero(dirty[labels])
    order = member_rows[np.argsort(labels[member_rows], kind="stable")]
    bounds = np.cumsum(sizes[np.unique(labels[order])])[:-1]
    return np.split(order, bounds)


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
