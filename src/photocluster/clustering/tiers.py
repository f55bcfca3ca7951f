"""Tiers and groups: cut the neighbour graph at each tier's threshold.

Grouping semantics (README, "Clustering"):

* ``complete`` (default): complete linkage. Every two images in a group are at least the
  tier's threshold alike, so A~B and B~C never put A with C unless A~C too (no chaining).
* ``single``: connected components of the pairs at or above the threshold. Chains.
* ``average``: average linkage (UPGMA). Two clusters join when the mean similarity of their
  pairs reaches the threshold: a pair or two below it can be carried by the others.

Pairs the user marked not similar never share a group, with any linkage
(:mod:`photocluster.clustering.constraints`).

Tiers are cut from one dendrogram (complete, average) or one graph (single), so a group of
a stricter tier always lies inside one group of every looser tier.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from photocluster.clustering.constraints import Index, separate
from photocluster.clustering.graph import GraphParams, NeighbourGraph, build_graph
from photocluster.clustering.similarity import normalise
from photocluster.config import DEFAULT_LINKAGE, LINKAGES, check_thresholds
from photocluster.ids import IdArray, decode_ids, encode_ids

#: Largest minimum group size a query may ask for (the API's and the CLI's limit alike).
MIN_SIZE_MAX = 10_000


@dataclass(frozen=True, eq=False)
class Tier:
    """The groups of one tier, kept as rows of ``ids`` (names are decoded for the groups
    asked for only: a page of a 100,000-photo library decodes a page, not the library).

    Group ``g`` is ``members[starts[g]:starts[g + 1]]``; groups come largest first (ties:
    earliest stored first), members in store order."""

    name: str
    threshold: float
    ids: IdArray
    members: npt.NDArray[np.int64]
    starts: npt.NDArray[np.int64]
    #: each group's lowest similarity of two members, where the cut knows it (else NaN)
    lowest: npt.NDArray[np.float32] | None = None
    #: what its readers derived from it (names of a page, group ids): a tier kept between
    #: requests answers the same page again without decoding or hashing it again
    memo: dict[Hashable, Any] = field(default_factory=dict, repr=False)

    @property
    def n_groups(self) -> int:
        return len(self.starts) - 1

    @property
    def n_images(self) -> int:
        return len(self.members)

    @property
    def nbytes(self) -> int:
        """Memory its arrays hold (names decoded on demand come on top)."""
        lowest = 0 if self.lowest is None else self.lowest.nbytes
        return self.members.nbytes + self.starts.nbytes + lowest

    def rows(self, start: int = 0, end: int | None = None) -> list[npt.NDArray[np.int64]]:
        """The rows of groups ``start`` to ``end`` (one array each)."""
        bounds = self.starts[start : (self.n_groups if end is None else end) + 1]
        return np.split(self.members[bounds[0] : bounds[-1]], bounds[1:-1] - bounds[0])

    def names(self, start: int = 0, end: int | None = None) -> list[list[str]]:
        """The image ids of groups ``start`` to ``end``."""
        bounds = self.starts[start : (self.n_groups if end is None else end) + 1]
        if len(bounds) < 2:
            return []
        flat = decode_ids(self.ids[self.members[bounds[0] : bounds[-1]]])
        edges = (bounds - bounds[0]).tolist()
        return [flat[a:b] for a, b in itertools.pairwise(edges)]

    def group_of_rows(self) -> npt.NDArray[np.int64]:
        """Each row's group number in this tier (-1: in none)."""
        if "group_of_rows" not in self.memo:
            found = np.full(len(self.ids), -1, dtype=np.int64)
            found[self.members] = np.repeat(np.arange(self.n_groups), np.diff(self.starts))
            self.memo["group_of_rows"] = found
        return self.memo["group_of_rows"]  # type: ignore[no-any-return]

    @cached_property
    def groups(self) -> list[list[str]]:
        return self.names()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tier):
            return NotImplemented
        mine = (self.name, self.threshold, self.groups)
        return mine == (other.name, other.threshold, other.groups)

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "threshold": self.threshold, "groups": self.groups}


def groups_from_labels(
    labels: npt.NDArray[np.integer], ids: IdArray, min_size: int = 2
) -> list[list[str]]:
    """Groups of ids sharing a label, largest first (ties: earliest stored first); members in
    store order; groups smaller than ``min_size`` left out."""
    members, starts = grouped(labels, min_size)
    return Tier("", 0.0, ids, members, starts).groups


def grouped(
    labels: npt.NDArray[np.integer], min_size: int = 2
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The rows of each group of at least ``min_size`` (labels shared), as ``members`` and
    ``starts`` (see :class:`Tier`): vectorised, no Python loop over groups."""
    empty = np.zeros(0, np.int64)
    if len(labels) == 0:
        return empty, np.zeros(1, np.int64)
    counts = np.bincount(labels)
    rows = np.flatnonzero(counts[labels] >= max(min_size, 1))
    if len(rows) == 0:
        return empty, np.zeros(1, np.int64)
    rows = rows[np.argsort(labels[rows], kind="stable")]  # by label, store order inside
    bounds = np.flatnonzero(np.diff(labels[rows])) + 1
    starts = np.concatenate([[0], bounds])
    sizes = np.diff(np.concatenate([starts, [len(rows)]]))
    order = np.lexsort((rows[starts], -sizes))  # largest first, then earliest stored
    new_sizes = sizes[order]
    new_starts = np.concatenate([[0], np.cumsum(new_sizes)]).astype(np.int64)
    offsets = np.arange(len(rows)) - np.repeat(new_starts[:-1], new_sizes)
    members = rows[np.repeat(starts[order], new_sizes) + offsets]
    return members.astype(np.int64), new_starts


def cluster_graph(
    graph: NeighbourGraph,
    thresholds: Mapping[str, float],
    linkage: str = DEFAULT_LINKAGE,
    min_size: int = 2,
    not_similar: tuple[Index, Index] | None = None,
) -> list[Tier]:
    """Cut ``graph`` at each tier's threshold (thresholds must be >= the graph's floor).
    ``not_similar``: rows ``(u[i], v[i])`` of ``graph.ids`` that never share a group
    (cannot-link constraints, see :mod:`photocluster.clustering.constraints`)."""
    checked = check_thresholds(dict(thresholds))
    if linkage not in LINKAGES:
        raise ValueError(f"linkage must be one of {LINKAGES}, got {linkage!r}")
    below = [name for name, t in checked.items() if t < graph.floor]
    if below:
        raise ValueError(f"thresholds {below} are below the graph's floor {graph.floor}")
    cut = [graph.labels(threshold, linkage) for threshold in checked.values()]
    labels = cut
    marked = not_similar if not_similar is not None and len(not_similar[0]) else None
    if marked is not None:
        edges = (graph.edge_u, graph.edge_v, graph.edge_s) if linkage == "single" else None
        labels = separate(cut, *marked, linkage, list(checked.values()), edges)
    tiers = []
    for (name, threshold), before, after in zip(checked.items(), cut, labels, strict=True):
        members, starts = grouped(after, min_size)
        heads = members[starts[:-1]]
        lowest = _lowest_known(graph, linkage, threshold, before, marked)
        found = lowest[before[heads]] if len(heads) else np.zeros(0, np.float32)
        found[np.diff(starts) < 2] = np.nan
        tiers.append(Tier(name, threshold, graph.ids, members, starts, found))
    return tiers


def _lowest_known(
    graph: NeighbourGraph,
    linkage: str,
    threshold: float,
    labels: npt.NDArray[np.int32],
    marked: tuple[Index, Index] | None,
) -> npt.NDArray[np.float32]:
    """The lowest similarity of two members of each group (by label), read off the
    dendrogram: a complete-linkage merge's score is the lowest pair it crosses; an
    average-linkage merge carries the lowest pair of the cluster it makes (computed at
    write time, :mod:`photocluster.clustering.linkage`). The group's lowest is its merges'
    lowest. NaN where unknown (computed from the vectors for the groups a page shows):
    single linkage, a graph file older than the stored lows, or a group a mark split."""
    lowest = np.full(int(labels.max(initial=0)) + 1, np.nan, dtype=np.float32)
    if linkage == "single":
        return lowest
    u, s, low = (
        (graph.merge_u, graph.merge_s, graph.merge_s)
        if linkage == "complete"
        else (graph.average_u, graph.average_s, graph.average_low)
    )
    keep = s >= np.float32(threshold)
    owner = labels[u[keep]]
    found = np.full(len(lowest), np.inf, dtype=np.float32)
    with np.errstate(invalid="ignore"):  # NaN lows (an older file) stay NaN
        np.minimum.at(found, owner, low[keep])
    has = ~np.isposinf(found)  # a NaN low (not stored) stays NaN
    lowest[has] = np.clip(found[has], 0.0, 1.0)
    if marked is not None:
        mu, mv = marked
        lowest[labels[mu][labels[mu] == labels[mv]]] = np.nan
    return lowest


def cluster(
    ids: Sequence[str],
    vectors: npt.ArrayLike,
    thresholds: Mapping[str, float],
    linkage: str = DEFAULT_LINKAGE,
    min_size: int = 2,
    max_neighbours: int = 1 << 30,
    linkage_max: int = 1 << 30,
) -> list[Tier]:
    """Group images on demand (no stored graph): build the graph at the lowest threshold,
    then cut it. Exact complete and average linkage with the default caps."""
    checked = check_thresholds(dict(thresholds))
    unit = normalise(vectors)
    encoded = encode_ids(ids)
    params = GraphParams(min(checked.values()), max_neighbours, linkage_max)
    return cluster_graph(build_graph(encoded, unit, params), checked, linkage, min_size)
