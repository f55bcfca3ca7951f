"""Scores, tiers, grouping, top-k and pair ranges: pure functions over arrays.

Score = cosine similarity of L2-normalised embeddings, clipped to [0, 1].

Grouping semantics (README, "Clustering"):

* ``complete`` (default): complete linkage. Every two images in a group are at least the
  tier's threshold alike, so A~B and B~C never put A with C unless A~C too (no chaining).
* ``single``: connected components of the pairs at or above the threshold. Chains.

Tiers are cut from one dendrogram (complete) or one graph (single), so a group of a
stricter tier always lies inside one group of every looser tier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from photocluster.config import check_thresholds
from photocluster.errors import UnknownImage
from photocluster.graph import GraphParams, NeighbourGraph, build_graph
from photocluster.ids import IMAGE_ID_MAX
from photocluster.store import encode_ids

LINKAGES = ("complete", "single")
_PAIR_BLOCK = 1024


@dataclass(frozen=True)
class Tier:
    """The groups of one tier."""

    name: str
    threshold: float
    groups: list[list[str]]

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "threshold": self.threshold, "groups": self.groups}


@dataclass(frozen=True)
class Neighbour:
    image_id: str
    score: float


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    score: float


def normalise(vectors: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Rows scaled to unit length (float32); zero rows stay zero."""
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    return np.asarray(
        np.divide(array, norms, out=np.zeros_like(array), where=norms > 0), dtype=np.float32
    )


def scores(
    matrix: npt.NDArray[np.float32], query: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Cosine similarity of each row of ``matrix`` (unit rows) with ``query``, in [0, 1]."""
    return np.asarray(np.clip(matrix @ query, 0.0, 1.0), dtype=np.float32)


def groups_from_labels(
    labels: npt.NDArray[np.integer], ids: npt.NDArray[np.bytes_], min_size: int = 2
) -> list[list[str]]:
    """Groups of ids sharing a label, largest first (ties: earliest stored first); members in
    store order; groups smaller than ``min_size`` left out."""
    if len(labels) == 0:
        return []
    counts = np.bincount(labels)
    rows = np.flatnonzero(counts[labels] >= max(min_size, 1))
    if len(rows) == 0:
        return []
    order = np.lexsort((rows, labels[rows]))
    rows = rows[order]
    bounds = np.flatnonzero(np.diff(labels[rows])) + 1
    names = ids[rows].astype(f"U{ids.dtype.itemsize}").tolist()
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(rows)]])
    first_rows = rows[starts]
    group_order = np.lexsort((first_rows, -(ends - starts)))
    return [names[starts[g] : ends[g]] for g in group_order.tolist()]


def cluster_graph(
    graph: NeighbourGraph,
    thresholds: Mapping[str, float],
    linkage: str = "complete",
    min_size: int = 2,
) -> list[Tier]:
    """Cut ``graph`` at each tier's threshold (thresholds must be >= the graph's floor)."""
    checked = check_thresholds(dict(thresholds))
    if linkage not in LINKAGES:
        raise ValueError(f"linkage must be one of {LINKAGES}, got {linkage!r}")
    below = [name for name, t in checked.items() if t < graph.floor]
    if below:
        raise ValueError(f"thresholds {below} are below the graph's floor {graph.floor}")
    return [
        Tier(
            name,
            threshold,
            groups_from_labels(graph.labels(threshold, linkage), graph.ids, min_size),
        )
        for name, threshold in checked.items()
    ]


def cluster(
    ids: Sequence[str],
    vectors: npt.ArrayLike,
    thresholds: Mapping[str, float],
    linkage: str = "complete",
    min_size: int = 2,
    max_neighbours: int = 1 << 30,
    linkage_max: int = 1 << 30,
) -> list[Tier]:
    """Group images on demand (no stored graph): build the graph at the lowest threshold,
    then cut it. Exact complete linkage with the default caps."""
    checked = check_thresholds(dict(thresholds))
    unit = normalise(vectors)
    encoded = encode_ids(ids)
    params = GraphParams(min(checked.values()), max_neighbours, linkage_max)
    return cluster_graph(build_graph(encoded, unit, params), checked, linkage, min_size)


def similar(
    ids: npt.NDArray[np.bytes_],
    vectors: npt.NDArray[np.float32],
    image_id: str,
    k: int = 10,
    min_score: float = 0.0,
) -> list[Neighbour]:
    """The ``k`` most similar other images of ``image_id`` with score >= ``min_score``."""
    hits = np.flatnonzero(ids == image_id.encode("ascii"))
    if not len(hits):
        raise UnknownImage(f"no embedding stored for image {image_id!r}")
    row = int(hits[0])
    sims = scores(vectors, vectors[row])
    sims[row] = -1.0  # never its own neighbour
    k = min(k, len(sims) - 1)
    if k <= 0:
        return []
    top = np.argpartition(-sims, k - 1)[:k]
    top = top[np.lexsort((top, -sims[top]))]
    top = top[sims[top] >= min_score]
    names = ids[top].astype(f"U{IMAGE_ID_MAX}").tolist()
    return [Neighbour(name, float(s)) for name, s in zip(names, sims[top].tolist(), strict=True)]


def pairs_from_graph(
    graph: NeighbourGraph, min_score: float, max_score: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Stored pairs with score in [min_score, max_score], highest first (min >= floor)."""
    s = np.clip(graph.edge_s, 0.0, 1.0)
    mask = (s >= np.float32(min_score)) & (s <= np.float32(max_score))
    u, v, s = graph.edge_u[mask].astype(np.int64), graph.edge_v[mask].astype(np.int64), s[mask]
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    order = np.lexsort((hi, lo, -s))
    return lo[order], hi[order], s[order]


def pairs_on_demand(
    vectors: npt.NDArray[np.float32], min_score: float, max_score: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Every pair with score in [min_score, max_score], highest first, computed blockwise."""
    n = len(vectors)
    us, vs, ss = [], [], []
    for lo in range(0, n, _PAIR_BLOCK):
        hi = min(lo + _PAIR_BLOCK, n)
        block = np.clip(vectors[lo:hi] @ vectors.T, 0.0, 1.0)
        rows, cols = np.nonzero((block >= min_score) & (block <= max_score))
        upper = cols > rows + lo
        rows, cols = rows[upper], cols[upper]
        us.append(rows + lo)
        vs.append(cols)
        ss.append(block[rows, cols])
    if not us:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    u, v, s = np.concatenate(us), np.concatenate(vs), np.concatenate(ss).astype(np.float32)
    order = np.lexsort((v, u, -s))
    return u[order].astype(np.int64), v[order].astype(np.int64), s[order]
