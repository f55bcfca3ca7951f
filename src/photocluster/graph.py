"""The write-time neighbour graph: pairwise work done once per upload, not once per query.

For a user's images (in store order) the graph keeps

* **edges**: every pair with cosine similarity >= ``floor``, found when the later image of
  the pair was stored (one ``b x N`` product per write of ``b`` images), at most
  ``max_neighbours`` per new image (its most similar earlier images);
* **merges**: the complete-linkage dendrogram of each connected component of the edges,
  down to the floor, as representative pairs ``(u, v, s)``: "the cluster holding u and the
  cluster holding v merge at similarity s".

A query at threshold ``t >= floor`` is then a cut: the connected components of the merges
with ``s >= t`` are exactly the complete-linkage clusters at ``t`` (complete linkage has no
inversions, so a cut keeps whole sub-trees), and the components of the edges with
``s >= t`` are the single-linkage clusters. Both are one sparse connected-components call.

Invariant: every pair inside a complete-linkage group has similarity >= the threshold. The
per-image neighbour cap and the component-size cap (``linkage_max``) only ever make groups
smaller, never let a dissimilar pair in; ``exact_from`` records the threshold from which the
merges equal complete linkage on the full matrix.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from photocluster.errors import StoreCorrupt
from photocluster.ids import IMAGE_ID_MAX

GRAPH_MAGIC = b"PCGRAPH1"
GRAPH_SUFFIX = ".pcg"
_BLOCK_ROWS = 1024  # rows of the similarity product computed at once

IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class GraphParams:
    """How the graph is built; fixed per graph (a change means a rebuild)."""

    floor: float
    max_neighbours: int = 128
    linkage_max: int = 2000


@dataclass(frozen=True)
class NeighbourGraph:
    """Edges and complete-linkage merges over ``n`` images (see the module docstring)."""

    ids: npt.NDArray[np.bytes_]
    params: GraphParams
    edge_u: IntArray
    edge_v: IntArray
    edge_s: FloatArray
    merge_u: IntArray
    merge_v: IntArray
    merge_s: FloatArray
    exact_from: float
    capped: bool
    generation: int = -1
    model: str = ""
    has_edges: bool = True  # False when loaded for clustering only (edges skipped)

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def floor(self) -> float:
        return self.params.floor

    def labels(self, threshold: float, linkage: str) -> npt.NDArray[np.int32]:
        """Cluster label of every image at ``threshold`` (complete or single linkage)."""
        if linkage == "complete":
            u, v, s = self.merge_u, self.merge_v, self.merge_s
        elif linkage == "single":
            u, v, s = self.edge_u, self.edge_v, self.edge_s
        else:
            raise ValueError(f"unknown linkage {linkage!r}")
        if linkage == "single" and not self.has_edges:
            raise ValueError("this graph was loaded without its edges")
        mask = s >= np.float32(threshold)
        return _components(self.n, u[mask], v[mask])


def preload() -> None:
    """Import scipy's hierarchical clustering now (writers call this at init). It costs
    ~250 ms and only writes need it, so readers such as the cluster API skip it."""
    _scipy_linkage()


def _scipy_linkage() -> Any:
    from scipy.cluster.hierarchy import linkage

    return linkage


def empty_graph(params: GraphParams) -> NeighbourGraph:
    zi = np.zeros(0, dtype=np.int32)
    zf = np.zeros(0, dtype=np.float32)
    return NeighbourGraph(
        ids=np.zeros(0, dtype=f"S{IMAGE_ID_MAX}"),
        params=params,
        edge_u=zi,
        edge_v=zi,
        edge_s=zf,
        merge_u=zi,
        merge_v=zi,
        merge_s=zf,
        exact_from=params.floor,
        capped=False,
    )


def build_graph(
    ids: npt.NDArray[np.bytes_], vectors: FloatArray, params: GraphParams
) -> NeighbourGraph:
    """The graph of ``vectors`` (unit rows, store order) from scratch."""
    return update_graph(empty_graph(params), ids, vectors, np.zeros(0, dtype=bool), len(ids))


def update_graph(
    old: NeighbourGraph,
    ids: npt.NDArray[np.bytes_],
    vectors: FloatArray,
    kept: npt.NDArray[np.bool_],
    appended: int,
) -> NeighbourGraph:
    """The graph after a write that kept rows ``kept`` of ``old`` and appended ``appended``.

    ``ids``/``vectors`` are the new rows: ``old.ids[kept]`` followed by the appended ones.
    Only new images are compared with the rest, and only the components that gained or
    lost an image are linked again; the others keep their merges.
    """
    params = old.params
    n = len(ids)
    n_kept = int(kept.sum())
    if len(kept) != old.n or n_kept + appended != n:
        raise ValueError("update does not match the graph it updates")
    if n_kept and not np.array_equal(old.ids[kept], ids[:n_kept]):
        raise ValueError("kept rows do not match the graph's ids")

    remap = np.full(old.n, -1, dtype=np.int64)
    remap[kept] = np.arange(n_kept)

    # Edges: drop those touching removed rows, renumber, add the new rows' edges.
    keep_edge = kept[old.edge_u] & kept[old.edge_v] if old.n else np.zeros(0, dtype=bool)
    new_u, new_v, new_s, capped = _new_edges(vectors, n_kept, params)
    edge_u = np.concatenate([remap[old.edge_u[keep_edge]], new_u]).astype(np.int32)
    edge_v = np.concatenate([remap[old.edge_v[keep_edge]], new_v]).astype(np.int32)
    edge_s = np.concatenate([old.edge_s[keep_edge], new_s]).astype(np.float32)

    # Components at the floor; a component is dirty if it gained a new row, or if it holds
    # rows of an old component that lost a row (its dendrogram may have changed).
    labels = _components(n, edge_u, edge_v)
    n_labels = int(labels.max()) + 1 if n else 0
    dirty = np.zeros(n_labels, dtype=bool)
    dirty[labels[n_kept:]] = True
    if old.n and not kept.all():
        old_labels = _components(old.n, old.edge_u, old.edge_v)
        lost = np.zeros(int(old_labels.max()) + 1, dtype=bool)
        lost[old_labels[~kept]] = True
        dirty[labels[:n_kept][lost[old_labels[kept]]]] = True

    # Reuse the merges of clean components.
    keep_merge = np.zeros(len(old.merge_u), dtype=bool)
    if len(old.merge_u):
        mu, mv = remap[old.merge_u], remap[old.merge_v]
        keep_merge = (mu >= 0) & (mv >= 0)
        keep_merge[keep_merge] = ~dirty[labels[mu[keep_merge]]]
    parts_u = [remap[old.merge_u[keep_merge]]]
    parts_v = [remap[old.merge_v[keep_merge]]]
    parts_s = [old.merge_s[keep_merge]]
    exact_from = old.exact_from if keep_merge.any() else params.floor

    # Link the dirty components again.
    sizes = np.bincount(labels, minlength=n_labels)
    dirty &= sizes >= 2
    if dirty.any():
        member_rows = np.flatnonzero(dirty[labels])
        order = member_rows[np.argsort(labels[member_rows], kind="stable")]
        bounds = np.cumsum(sizes[np.unique(labels[order])])[:-1]
        for members in np.split(order, bounds):
            u, v, s, exact = _link_component(members, vectors, edge_u, edge_v, edge_s, params)
            parts_u.append(u)
            parts_v.append(v)
            parts_s.append(s)
            exact_from = max(exact_from, exact)

    return NeighbourGraph(
        ids=ids,
        params=params,
        edge_u=edge_u,
        edge_v=edge_v,
        edge_s=edge_s,
        merge_u=np.concatenate(parts_u).astype(np.int32),
        merge_v=np.concatenate(parts_v).astype(np.int32),
        merge_s=np.concatenate(parts_s).astype(np.float32),
        exact_from=float(exact_from),
        capped=old.capped or capped,
    )


def _new_edges(
    vectors: FloatArray, start: int, params: GraphParams
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], FloatArray, bool]:
    """Edges (earlier j, new i, s) for rows i >= start against every row j < i."""
    n = len(vectors)
    us, vs, ss = [], [], []
    capped = False
    for lo in range(start, n, _BLOCK_ROWS):
        hi = min(lo + _BLOCK_ROWS, n)
        sims = vectors[lo:hi] @ vectors[:hi].T  # (b, hi): only columns j < i matter
        rows, cols = np.nonzero(sims >= params.floor)
        rows_abs = rows + lo
        earlier = cols < rows_abs
        rows, cols, rows_abs = rows[earlier], cols[earlier], rows_abs[earlier]
        s = sims[rows, cols]
        counts = np.bincount(rows, minlength=hi - lo)
        if (counts > params.max_neighbours).any():
            capped = True
            # Keep each row's most similar `max_neighbours`: rank within row by -s.
            order = np.lexsort((-s, rows))
            rows, cols, rows_abs, s = rows[order], cols[order], rows_abs[order], s[order]
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            rank = np.arange(len(rows)) - starts[rows]
            within = rank < params.max_neighbours
            rows, cols, rows_abs, s = rows[within], cols[within], rows_abs[within], s[within]
        us.append(cols.astype(np.int64))
        vs.append(rows_abs.astype(np.int64))
        ss.append(s.astype(np.float32))
    if not us:
        return (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32), False)
    return np.concatenate(us), np.concatenate(vs), np.concatenate(ss), capped


def _link_component(
    members: npt.NDArray[np.int64],
    vectors: FloatArray,
    edge_u: IntArray,
    edge_v: IntArray,
    edge_s: FloatArray,
    params: GraphParams,
    level: float | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], FloatArray, float]:
    """Complete-linkage merges (>= floor) of one component; returns (u, v, s, exact_from).

    A component larger than ``linkage_max`` is split at a raised threshold first (its parts
    are the components of its edges above that level), so the dense work stays bounded;
    merges below the raised level are then not recorded (groups only get smaller).
    """
    level = params.floor if level is None else level
    k = len(members)
    if k > params.linkage_max:
        raised = min(level + 0.02, 1.0)
        inside = np.zeros(len(vectors), dtype=bool)
        inside[members] = True
        mask = inside[edge_u] & inside[edge_v] & (edge_s >= raised)
        local = np.full(len(vectors), -1, dtype=np.int64)
        local[members] = np.arange(k)
        sub = _components(k, local[edge_u[mask]], local[edge_v[mask]])
        us, vs, ss = [], [], []
        exact = raised
        for label in np.unique(sub):
            part = members[sub == label]
            if len(part) < 2:
                continue
            u, v, s, e = _link_component(part, vectors, edge_u, edge_v, edge_s, params, raised)
            us.append(u)
            vs.append(v)
            ss.append(s)
            exact = max(exact, e)
        if not us:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32), exact
        return np.concatenate(us), np.concatenate(vs), np.concatenate(ss), exact
    if k == 2:
        pair_sim = float(vectors[members[0]] @ vectors[members[1]])
        if pair_sim < level:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32), level
        return members[:1], members[1:], np.array([pair_sim], dtype=np.float32), level

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
    return members[rep[a[valid]]], members[rep[b[valid]]], merge_s[valid], level


def _components(
    n: int, u: npt.NDArray[np.integer], v: npt.NDArray[np.integer]
) -> npt.NDArray[np.int32]:
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    data = np.ones(len(u), dtype=np.int8)
    graph = coo_matrix((data, (u, v)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels, dtype=np.int32)


# --------------------------------------------------------------------------- file format
#
# {root}/{shard}/{user_id}.pcg: magic (8 bytes), header length (8 bytes, little endian),
# a JSON header, then the arrays named in the header, each at its recorded byte offset.
# It is derived data: rebuilt from the store whenever missing or stale.

_ARRAYS = ("ids", "edge_u", "edge_v", "edge_s", "merge_u", "merge_v", "merge_s")
_CLUSTER_ARRAYS = ("ids", "merge_u", "merge_v", "merge_s")


def save_graph(graph: NeighbourGraph, path: Path, fsync: bool = True) -> None:
    """Write ``graph`` atomically (temp file, fsync, rename)."""
    width = max(1, int(np.char.str_len(graph.ids).max())) if graph.n else 1
    arrays = {
        "ids": graph.ids.astype(f"S{width}"),
        "edge_u": graph.edge_u,
        "edge_v": graph.edge_v,
        "edge_s": graph.edge_s,
        "merge_u": graph.merge_u,
        "merge_v": graph.merge_v,
        "merge_s": graph.merge_s,
    }
    sections = {}
    offset = 0
    for name in _ARRAYS:
        array = np.ascontiguousarray(arrays[name])
        sections[name] = {"dtype": array.dtype.str, "count": len(array), "offset": offset}
        offset += array.nbytes
    header = json.dumps(
        {
            "n": graph.n,
            "floor": graph.params.floor,
            "max_neighbours": graph.params.max_neighbours,
            "linkage_max": graph.params.linkage_max,
            "exact_from": graph.exact_from,
            "capped": graph.capped,
            "generation": graph.generation,
            "model": graph.model,
            "sections": sections,
        }
    ).encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as handle:
        handle.write(GRAPH_MAGIC)
        handle.write(len(header).to_bytes(8, "little"))
        handle.write(header)
        for name in _ARRAYS:
            handle.write(np.ascontiguousarray(arrays[name]).tobytes())
        handle.flush()
        if fsync:
            os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_graph(path: Path, for_clusters_only: bool = False) -> NeighbourGraph | None:
    """Read a graph file, or None if there is none. ``for_clusters_only`` skips the edges."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return None
    with handle:
        magic = handle.read(8)
        if magic != GRAPH_MAGIC:
            raise StoreCorrupt(f"{path} is not a photocluster graph file")
        size = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(size))
        base = 16 + size
        wanted = _CLUSTER_ARRAYS if for_clusters_only else _ARRAYS
        arrays: dict[str, np.ndarray] = {}
        for name in _ARRAYS:
            section = header["sections"][name]
            dtype = np.dtype(section["dtype"])
            if name not in wanted:
                arrays[name] = np.zeros(0, dtype=dtype)
                continue
            handle.seek(base + section["offset"])
            count = section["count"]
            data = handle.read(count * dtype.itemsize)
            if len(data) != count * dtype.itemsize:
                raise StoreCorrupt(f"{path}: section {name} is truncated")
            arrays[name] = np.frombuffer(data, dtype=dtype)
    params = GraphParams(
        floor=float(header["floor"]),
        max_neighbours=int(header["max_neighbours"]),
        linkage_max=int(header["linkage_max"]),
    )
    return NeighbourGraph(
        ids=arrays["ids"],
        params=params,
        edge_u=arrays["edge_u"],
        edge_v=arrays["edge_v"],
        edge_s=arrays["edge_s"],
        merge_u=arrays["merge_u"],
        merge_v=arrays["merge_v"],
        merge_s=arrays["merge_s"],
        exact_from=float(header["exact_from"]),
        capped=bool(header["capped"]),
        generation=int(header["generation"]),
        model=str(header["model"]),
        has_edges=not for_clusters_only,
    )


def stamp(graph: NeighbourGraph, generation: int, model: str) -> NeighbourGraph:
    """The same graph, labelled with the store generation and model it reflects."""
    return replace(graph, generation=generation, model=model)
