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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from photocluster.clustering.constraints import Index, separate
from photocluster.clustering.graph import GraphParams, NeighbourGraph, build_graph
from photocluster.clustering.similarity import normalise
from photocluster.config import DEFAULT_LINKAGE, LINKAGES, check_thresholds
from photocluster.ids import IdArray, encode_ids

#: Largest minimum group size a query may ask for (the API's and the CLI's limit alike).
MIN_SIZE_MAX = 10_000


@dataclass(frozen=True)
class Tier:
    """The groups of one tier."""

    name: str
    threshold: float
    groups: list[list[str]]
    #: each group's rows in the ids it was cut from (the graph's, in store order)
    rows: list[npt.NDArray[np.int64]] = field(default_factory=list, compare=False, repr=False)
    #: each group's lowest similarity of two members, where the cut knows it (else NaN)
    lowest: npt.NDArray[np.float32] | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "threshold": self.threshold, "groups": self.groups}


def groups_from_labels(
    labels: npt.NDArray[np.integer], ids: IdArray, min_size: int = 2
) -> list[list[str]]:
    """Groups of ids sharing a label, largest first (ties: earliest stored first); members in
    store order; groups smaller than ``min_size`` left out."""
    return grouped(labels, ids, min_size)[0]


def grouped(
    labels: npt.NDArray[np.integer], ids: IdArray, min_size: int = 2
) -> tuple[list[list[str]], list[npt.NDArray[np.int64]]]:
    """:func:`groups_from_labels`, and each group's rows in ``ids``."""
    if len(labels) == 0:
        return [], []
    counts = np.bincount(labels)
    rows = np.flatnonzero(counts[labels] >= max(min_size, 1))
    if len(rows) == 0:
        return [], []
    order = np.lexsort((rows, labels[rows]))
    rows = rows[order]
    bounds = np.flatnonzero(np.diff(labels[rows])) + 1
    names = ids[rows].astype(f"U{ids.dtype.itemsize}").tolist()
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(rows)]])
    first_rows = rows[starts]
    group_order = np.lexsort((first_rows, -(ends - starts))).tolist()
    return (
        [names[starts[g] : ends[g]] for g in group_order],
        [rows[starts[g] : ends[g]] for g in group_order],
    )


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
        groups, rows = grouped(after, graph.ids, min_size)
        lowest = None  # single and average linkage: from the vectors
        if linkage == "complete":
            lowest = _lowest_from_merges(graph, threshold, before, rows, marked)
        tiers.append(Tier(name, threshold, groups, rows, lowest))
    return tiers


def _lowest_from_merges(
    graph: NeighbourGraph,
    threshold: float,
    labels: npt.NDArray[np.int32],
    rows: list[npt.NDArray[np.int64]],
    marked: tuple[Index, Index] | None,
) -> npt.NDArray[np.float32]:
    """The lowest similarity inside each complete-linkage group, read off its dendrogram:
    the merges of a group's subtree cross each of its pairs once, and each merge's score is
    the lowest of the pairs it crosses. NaN where unknown: a group of one, or one that a
    marked pair split."""
    keep = graph.merge_s >= np.float32(threshold)
    owner, score = labels[graph.merge_u[keep]], graph.merge_s[keep]
    lowest = np.full(int(labels.max(initial=0)) + 1, np.nan, dtype=np.float32)
    order = np.lexsort((score, owner))
    first = np.unique(owner[order], return_index=True)[1]
    lowest[owner[order][first]] = score[order][first]
    if marked is not None:
        u, v = marked
        lowest[labels[u][labels[u] == labels[v]]] = np.nan
    if not rows:
        return np.zeros(0, dtype=np.float32)
    heads = np.array([at[0] for at in rows])
    sizes = np.array([len(at) for at in rows])
    found = lowest[labels[heads]]
    found[sizes < 2] = np.nan
    return np.asarray(np.clip(found, 0.0, 1.0), dtype=np.float32)


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
