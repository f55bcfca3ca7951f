"""Graph files as older versions of the code wrote them (for the upgrade tests)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from photocluster.clustering.graph import NeighbourGraph


def write_format_1(graph: NeighbourGraph, path: Path) -> None:
    """The graph file as the code before average linkage wrote it (magic PCGRAPH1)."""
    write_format(graph, path, 1)


def write_format_2(graph: NeighbourGraph, path: Path) -> None:
    """The graph file as the code before stored group scores and positions wrote it."""
    write_format(graph, path, 2)


def write_format(graph: NeighbourGraph, path: Path, version: int) -> None:
    names = ("ids", "edge_u", "edge_v", "edge_s", "merge_u", "merge_v", "merge_s")
    if version >= 2:
        names = (*names, "average_u", "average_v", "average_s")
    arrays = {name: np.ascontiguousarray(getattr(graph, name)) for name in names}
    arrays["ids"] = graph.ids.astype(f"S{max(1, int(np.char.str_len(graph.ids).max()))}")
    sections, offset = {}, 0
    for name in names:
        array = arrays[name]
        sections[name] = {"dtype": array.dtype.str, "count": len(array), "offset": offset}
        offset += array.nbytes
    header = {
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
    encoded = json.dumps(header).encode()
    with path.open("wb") as handle:
        handle.write(f"PCGRAPH{version}".encode() + len(encoded).to_bytes(8, "little") + encoded)
        for name in names:
            handle.write(arrays[name].tobytes())
