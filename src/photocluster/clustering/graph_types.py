"""The neighbour graph's data: how it is built (:class:`GraphParams`), what it holds
(:class:`NeighbourGraph`: edges and merges over a user's rows) and how a query cuts it
(:meth:`NeighbourGraph.labels`). :mod:`photocluster.clustering.graph` builds and updates it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from photocluster.clustering.copies import COPY_SIMILARITY, SCENE_SIMILARITY
from photocluster.clustering.linkage import IndexArray, components
from photocluster.ids import ID_DTYPE, IdArray

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
    (``average_*``) over ``n`` images (see :mod:`photocluster.clustering.graph`)."""

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
