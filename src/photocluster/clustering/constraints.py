"""Cannot-link constraints: pairs the user said are not similar never share a group.

A constraint splits only the groups that hold a marked pair, and as little as it can:

* ``complete`` linkage: every subset of a complete-linkage group is one too (each pair
  still reaches the threshold), so a group holding a marked pair is re-packed first-fit
  into conflict-free parts. The parts are built from the already-separated groups of the
  next stricter tier as whole units, so tiers stay nested; members in no marked pair
  conflict with nothing and all stay in the first part. Mark two photos of a five-photo
  burst apart and the other three stay grouped with one of them.
* ``average`` linkage: the same re-packing. A part of an average-linkage group need not be
  one itself, but the guarantees the constraints give hold for any nested tiers: no group
  holds a marked pair, and the tiers still nest.
* ``single`` linkage: a group must stay connected, so the affected components of the
  loosest tier are rebuilt by Kruskal's order (strongest pair first), skipping a union
  that would join a marked pair; each tier is that process stopped at its threshold.

Groups without a marked pair keep their labels unchanged.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import numpy.typing as npt

Labels = npt.NDArray[np.int32]
Index = npt.NDArray[np.integer]


def separate(
    labels: list[Labels],
    marked_u: Index,
    marked_v: Index,
    linkage: str,
    thresholds: list[float] | None = None,
    edges: tuple[Index, Index, npt.NDArray[np.floating]] | None = None,
) -> list[Labels]:
    """Each tier's labels (loosest tier first) with no marked pair ``(u[i], v[i])`` left
    inside one group. ``single`` needs the tiers' ``thresholds`` and the graph's ``edges``."""
    if len(marked_u) == 0 or not labels:
        return labels
    if linkage in ("complete", "average"):
        return _separate_complete(labels, np.asarray(marked_u), np.asarray(marked_v))
    if thresholds is None or edges is None:
        raise ValueError("single linkage needs the thresholds and the edges")
    return _separate_single(labels, np.asarray(marked_u), np.asarray(marked_v), thresholds, edges)


def _separate_complete(labels: list[Labels], u: Index, v: Index) -> list[Labels]:
    n = len(labels[0])
    units = np.arange(n, dtype=np.int32)  # the stricter tier's separated groups
    separated: list[Labels] = []
    for tier in reversed(labels):
        units = _repack(tier, units, u, v)
        separated.append(units)
    return separated[::-1]


def _repack(tier: Labels, units: Labels, u: Index, v: Index) -> Labels:
    """``tier``'s labels with every group that holds a marked pair split first-fit into
    conflict-free parts made of whole ``units``."""
    inside = tier[u] == tier[v]
    if not inside.any():
        return tier.astype(np.int32, copy=True)
    conflicts: dict[int, set[int]] = defaultdict(set)
    for a, b in zip(units[u[inside]].tolist(), units[v[inside]].tolist(), strict=True):
        conflicts[a].add(b)
        conflicts[b].add(a)
    result = tier.astype(np.int32, copy=True)
    next_label = int(tier.max()) + 1
    for group in np.unique(tier[u[inside]]).tolist():
        members = np.flatnonzero(tier == group)
        member_units, first, sizes = np.unique(
            units[members], return_index=True, return_counts=True
        )
        order = np.lexsort((members[first], -sizes))  # largest first, then store order
        parts: list[set[int]] = []
        part_of: dict[int, int] = {}
        for unit in member_units[order].tolist():
            part = next(
                (i for i, p in enumerate(parts) if not conflicts.get(unit, set()) & p),
                len(parts),
            )
            if part == len(parts):
                parts.append(set())
            parts[part].add(unit)
            part_of[unit] = part
        for unit, part in part_of.items():
            if part:
                result[members[units[members] == unit]] = next_label + part - 1
        next_label += len(parts) - 1
    return result


def _separate_single(
    labels: list[Labels],
    u: Index,
    v: Index,
    thresholds: list[float],
    edges: tuple[Index, Index, npt.NDArray[np.floating]],
) -> list[Labels]:
    loosest = labels[0]
    inside = loosest[u] == loosest[v]
    if not inside.any():
        return labels
    affected = np.isin(loosest, np.unique(loosest[u[inside]]))
    eu, ev, es = (np.asarray(x) for x in edges)
    keep = affected[eu] & affected[ev] & (es >= np.float32(min(thresholds)))
    order = np.argsort(-es[keep], kind="stable")
    eu, ev, es = eu[keep][order], ev[keep][order], es[keep][order]
    forest = _ConstrainedForest(u[inside], v[inside])
    result = [tier.astype(np.int32, copy=True) for tier in labels]
    offset = int(max(tier.max() for tier in labels)) + 1
    nodes = np.flatnonzero(affected)
    done = 0
    for tier in sorted(range(len(labels)), key=lambda i: -thresholds[i]):
        threshold = thresholds[tier]
        stop = int(np.searchsorted(-es, -np.float32(threshold), side="right"))
        for a, b in zip(eu[done:stop].tolist(), ev[done:stop].tolist(), strict=True):
            forest.union(a, b)
        done = stop
        result[tier][nodes] = offset + np.array([forest.find(i) for i in nodes.tolist()])
    return result


class _ConstrainedForest:
    """Union-find whose unions never put two ends of a marked pair in one tree."""

    def __init__(self, u: Index, v: Index) -> None:
        self.parent: dict[int, int] = {}
        self.members: dict[int, set[int]] = {}
        #: per root: every image marked apart from a member of its tree
        self.against: dict[int, set[int]] = defaultdict(set)
        for a, b in zip(u.tolist(), v.tolist(), strict=True):
            self.against[a].add(b)
            self.against[b].add(a)

    def find(self, x: int) -> int:
        root = x
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while self.parent.get(x, x) != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        ma, mb = self.members.get(ra, {ra}), self.members.get(rb, {rb})
        if self.against.get(rb, set()) & ma:
            return
        if len(ma) < len(mb):
            ra, rb, ma, mb = rb, ra, mb, ma
        self.parent[rb] = ra
        self.members[ra] = ma | mb
        self.members.pop(rb, None)
        self.against[ra] = self.against.get(ra, set()) | self.against.pop(rb, set())
