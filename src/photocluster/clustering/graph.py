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

The graph's types are in :mod:`~photocluster.clustering.graph_types`, the edges a write
adds in :mod:`~photocluster.clustering.graph_edges`; this module builds and updates it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from photocluster.clustering.graph_edges import updated_edges, verified_edges, verified_pairs
from photocluster.clustering.graph_types import (
    BoolArray,
    FloatArray,
    GraphParams,
    IntArray,
    NeighbourGraph,
    Pairs,
    empty_graph,
    stamp,
)
from photocluster.clustering.linkage import (
    Edges,
    IndexArray,
    Linked,
    Merges,
    components,
    concat_linked,
    link_component,
)
from photocluster.ids import IdArray
from photocluster.store.vectors import Rows, as_rows

# The graph's types and the verified pairs' edges, importable from here as before the split.
__all__ = [
    "GraphParams",
    "NeighbourGraph",
    "Pairs",
    "build_graph",
    "empty_graph",
    "relink",
    "stamp",
    "update_graph",
    "verified_edges",
]


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
    pairs = verified_pairs(copies, scenes, old.params)
    edges, capped, n_old = updated_edges(old, vectors, kept, remap, pairs)
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


def _check_update(old: NeighbourGraph, ids: IdArray, kept: BoolArray, appended: int) -> int:
    """The number of kept rows, once the update is known to match ``old``."""
    n_kept = int(kept.sum())
    if len(kept) != old.n or n_kept + appended != len(ids):
        raise ValueError("update does not match the graph it updates")
    if n_kept and not np.array_equal(old.ids[kept], ids[:n_kept]):
        raise ValueError("kept rows do not match the graph's ids")
    return n_kept


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
