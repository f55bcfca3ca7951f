"""The neighbour graph on disk, beside the user's store file.

``{root}/{shard}/{user_id}.pcg``: magic (8 bytes), header length (8 bytes, little endian),
a JSON header, then the arrays named in the header, each at its recorded byte offset. It is
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

import json
import math
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from photocluster.clustering.graph import GraphParams, NeighbourGraph
from photocluster.errors import StoreCorrupt
from photocluster.store.files import replace_with, temp_path

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
    arrays = _arrays_of(graph)
    header = json.dumps(_header_of(graph, arrays)).encode()
    tmp = temp_path(path)
    with tmp.open("wb") as handle:
        handle.write(GRAPH_MAGIC)
        handle.write(len(header).to_bytes(8, "little"))
        handle.write(header)
        for name in _ARRAYS:
            handle.write(arrays[name].tobytes())
        handle.flush()
        replace_with(tmp, path, handle.fileno(), fsync=fsync)


def _arrays_of(graph: NeighbourGraph) -> dict[str, np.ndarray]:
    # Ids are stored only as wide as the longest one.
    width = max(1, int(np.char.str_len(graph.ids).max())) if graph.n else 1
    arrays = {name: getattr(graph, name) for name in _ARRAYS if name != "ids"}
    arrays["ids"] = graph.ids.astype(f"S{width}")
    return {name: np.ascontiguousarray(array) for name, array in arrays.items()}


def _header_of(graph: NeighbourGraph, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    sections = {}
    offset = 0
    for name in _ARRAYS:
        array = arrays[name]
        sections[name] = {"dtype": array.dtype.str, "count": len(array), "offset": offset}
        offset += array.nbytes
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
        "sections": sections,
    }


def load_graph(path: Path, for_clusters_only: bool = False) -> NeighbourGraph | None:
    """Read a graph file, or None if there is none. ``for_clusters_only`` skips the edges."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return None
    with handle:
        version, size, header = _read_header(handle, path)
        wanted = _CLUSTER_ARRAYS if for_clusters_only else _ARRAYS
        stored = tuple(n for n in _ARRAYS if n in header["sections"])
        arrays = {
            name: _read_section(handle, header["sections"][name], 16 + size, name, wanted, path)
            for name in stored
        }
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
    try:
        with path.open("rb") as handle:
            return _read_header(handle, path)[2]
    except FileNotFoundError:
        return None


def _read_header(handle: BinaryIO, path: Path) -> tuple[int, int, dict[str, Any]]:
    """The file's format version, header length and header."""
    version = _VERSIONS.get(handle.read(8))
    if version is None:
        raise StoreCorrupt(f"{path} is not a photocluster graph file")
    size = int.from_bytes(handle.read(8), "little")
    header = json.loads(handle.read(size))
    if not isinstance(header, dict):
        raise StoreCorrupt(f"{path}: damaged graph header")
    return version, size, header


def _read_section(
    handle: BinaryIO,
    section: dict[str, Any],
    base: int,
    name: str,
    wanted: tuple[str, ...],
    path: Path,
) -> np.ndarray:
    """One array of the file (an empty one of its dtype when not wanted)."""
    dtype = np.dtype(section["dtype"])
    if name not in wanted:
        return np.zeros(0, dtype=dtype)
    handle.seek(base + section["offset"])
    count = section["count"]
    data = handle.read(count * dtype.itemsize)
    if len(data) != count * dtype.itemsize:
        raise StoreCorrupt(f"{path}: section {name} is truncated")
    return np.frombuffer(data, dtype=dtype)
