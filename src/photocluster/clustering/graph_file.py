"""The neighbour graph on disk, beside the user's store file.

``{root}/{shard}/{user_id}.pcg``: the graph's fields and arrays in the store's array file
layout (:mod:`photocluster.store.sections`: a magic, a JSON header, named arrays). It is
derived data: rebuilt from the store whenever missing or stale, written atomically.

Format 2 added the average-linkage merges. A format-1 file still loads, without them
(``has_average`` False): complete and single linkage are served from it as it is, and the
next write or average-linkage query links its components again (its edges are kept).
Format 3 added each average merge's lowest pair (group scores a read never computes), the
store positions of the rows and the store file's inode (reads map the rows they need), and
each row's component (a write that appends joins components); an older file loads without
them, its groups' scores computed for the page that shows them.

:func:`read_header` reads the header alone: the counts a stats answer needs, no arrays.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from photocluster.clustering.graph import GraphParams, NeighbourGraph
from photocluster.store import sections
from photocluster.store.sections import read_sections, write_sections

GRAPH_MAGIC = b"PCGRAPH3"
#: Format versions this code reads, by magic.
_VERSIONS = {b"PCGRAPH1": 1, b"PCGRAPH2": 2, GRAPH_MAGIC: 3}

_AVERAGE_ARRAYS = ("average_u", "average_v", "average_s")
_V3_ARRAYS = ("average_low", "positions", "components")
_ARRAYS = (
    "ids",
    "edge_u",
    "edge_v",
    "edge_s",
    "merge_u",
    "merge_v",
    "merge_s",
    *_AVERAGE_ARRAYS,
    *_V3_ARRAYS,
)
_CLUSTER_ARRAYS = (
    "ids",
    "merge_u",
    "merge_v",
    "merge_s",
    *_AVERAGE_ARRAYS,
    "average_low",
    "positions",
)
_DTYPES = {"average_u": np.int32, "average_v": np.int32, "average_s": np.float32}


def save_graph(graph: NeighbourGraph, path: Path, fsync: bool = True) -> None:
    """Write ``graph`` atomically (temp file, fsync, rename, fsync of the folder)."""
    write_sections(path, GRAPH_MAGIC, _header_of(graph), _arrays_of(graph), fsync=fsync)


def _arrays_of(graph: NeighbourGraph) -> dict[str, np.ndarray]:
    # Ids are stored only as wide as the longest one.
    width = max(1, int(np.char.str_len(graph.ids).max())) if graph.n else 1
    arrays = {name: getattr(graph, name) for name in _ARRAYS if name != "ids"}
    arrays["ids"] = graph.ids.astype(f"S{width}")
    return {name: arrays[name] for name in _ARRAYS}


def _header_of(graph: NeighbourGraph) -> dict[str, Any]:
    return {
        "n": graph.n,
        "floor": graph.params.floor,
        "max_neighbours": graph.params.max_neighbours,
        "linkage_max": graph.params.linkage_max,
        "copy_similarity": graph.params.copy_similarity,
        "scene_similarity": graph.params.scene_similarity,
        "exact_from": graph.exact_from,
        "capped": graph.capped,
        "generation": graph.generation,
        "model": graph.model,
        "inode": graph.inode,
    }


def load_graph(path: Path, for_clusters_only: bool = False) -> NeighbourGraph | None:
    """Read a graph file, or None if there is none. ``for_clusters_only`` skips the edges."""
    found = read_sections(path, _VERSIONS, _CLUSTER_ARRAYS if for_clusters_only else _ARRAYS)
    if found is None:
        return None
    version, header, stored = found
    arrays = {name: stored[name] for name in _ARRAYS if name in stored}
    for name, dtype in _DTYPES.items():
        arrays.setdefault(name, np.zeros(0, dtype=dtype))
    arrays.setdefault("positions", np.zeros(0, dtype=np.int64))
    arrays.setdefault("components", np.zeros(0, dtype=np.int32))
    # a file without the lows: NaN, the groups' scores are computed where shown
    arrays.setdefault("average_low", np.full(len(arrays["average_s"]), np.nan, np.float32))
    return NeighbourGraph(
        params=GraphParams(
            floor=float(header["floor"]),
            max_neighbours=int(header["max_neighbours"]),
            linkage_max=int(header["linkage_max"]),
            # a file from before the geometric check has no copies: any value serves it
            copy_similarity=float(header.get("copy_similarity", GraphParams.copy_similarity)),
            # a file from before scene pairs has none: NaN, the current value is taken
            # (UserGraphs.for_update)
            scene_similarity=float(header.get("scene_similarity", math.nan)),
        ),
        exact_from=float(header["exact_from"]),
        capped=bool(header["capped"]),
        generation=int(header["generation"]),
        model=str(header["model"]),
        has_edges=not for_clusters_only,
        has_average=version >= 2,
        inode=int(header.get("inode", -1)),
        **arrays,
    )


def read_header(path: Path) -> dict[str, Any] | None:
    """The graph file's header alone (``n``, ``generation``, ``floor``, ``exact_from``,
    the sections' ``count``s), or None if there is none: no array is read."""
    found = sections.read_header(path, _VERSIONS)
    return None if found is None else found[1]
