"""Pairs marked not similar never share a group: property tests over random libraries and
random marks, with every linkage, and the burst example of the issue."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from photocluster.clustering.graph import GraphParams, NeighbourGraph, build_graph
from photocluster.clustering.similarity import normalise
from photocluster.clustering.tiers import Tier, cluster_graph
from photocluster.ids import encode_ids

THRESHOLDS = {"low": 0.55, "medium": 0.7, "high": 0.85}


def library(seed: int, n: int) -> tuple[NeighbourGraph, np.ndarray]:
    """Clumps of near copies around a few centres, so that groups are many and varied."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(1, n // 4), 16))
    spread = rng.uniform(0.1, 0.9, size=(n, 1))
    vectors = normalise(
        centres[rng.integers(0, len(centres), n)] + spread * rng.normal(size=(n, 16))
    )
    ids = encode_ids([f"img{i:03d}" for i in range(n)])
    return build_graph(ids, vectors, GraphParams(0.5)), vectors


def marks(seed: int, graph: NeighbourGraph, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Marks biased towards pairs that do share a group (else they would change nothing)."""
    rng = np.random.default_rng(seed + 1)
    labels = graph.labels(0.55, "single")
    together = [
        (a, b) for a, b in itertools.combinations(range(graph.n), 2) if labels[a] == labels[b]
    ]
    chosen = [together[i] for i in rng.permutation(len(together))[:count]] if together else []
    u = np.array([a for a, _ in chosen], dtype=np.int64)
    v = np.array([b for _, b in chosen], dtype=np.int64)
    return u, v


def members(tiers: list[Tier]) -> list[list[set[int]]]:
    return [[{int(i[3:]) for i in group} for group in tier.groups] for tier in tiers]


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 40),
    count=st.integers(0, 12),
    linkage=st.sampled_from(["complete", "average", "single"]),
)
def test_no_group_ever_holds_a_marked_pair_and_tiers_still_nest(
    seed: int, n: int, count: int, linkage: str
) -> None:
    graph, vectors = library(seed, n)
    u, v = marks(seed, graph, count)
    tiers = members(cluster_graph(graph, THRESHOLDS, linkage, 1, (u, v)))
    similarity = vectors @ vectors.T
    for tier, threshold in zip(tiers, THRESHOLDS.values(), strict=True):
        seen = [i for group in tier for i in group]
        assert sorted(seen) == list(range(n))  # a partition: min_size 1 shows every image
        for group in tier:
            assert not any(a in group and b in group for a, b in zip(u, v, strict=True))
            if linkage == "complete":  # every pair still reaches the threshold
                rows = sorted(group)
                assert (similarity[np.ix_(rows, rows)] >= np.float32(threshold) - 1e-6).all()
            elif linkage == "single":
                assert connected(group, graph, threshold)
    for looser, stricter in itertools.pairwise(tiers):
        for group in stricter:
            assert any(group <= other for other in looser)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 30),
    linkage=st.sampled_from(["complete", "average", "single"]),
)
def test_without_marks_the_groups_are_the_unconstrained_ones(
    seed: int, n: int, linkage: str
) -> None:
    graph, _ = library(seed, n)
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    plain = cluster_graph(graph, THRESHOLDS, linkage)
    assert cluster_graph(graph, THRESHOLDS, linkage, 2, empty) == plain


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(3, 30),
    count=st.integers(1, 6),
    linkage=st.sampled_from(["complete", "average"]),
)
def test_dendrogram_linkages_keep_together_the_strictest_groups_unmarked_members(
    seed: int, n: int, count: int, linkage: str
) -> None:
    """A constraint, not a veto: in the strictest tier, the members of a group that are in
    no marked pair stay in one group."""
    graph, _ = library(seed, n)
    u, v = marks(seed, graph, count)
    marked = set(u.tolist()) | set(v.tolist())
    before = members(cluster_graph(graph, THRESHOLDS, linkage, 1))[-1]
    after = members(cluster_graph(graph, THRESHOLDS, linkage, 1, (u, v)))[-1]
    for group in before:
        free = group - marked
        assert len({i for i, part in enumerate(after) if part & free}) <= 1


def test_two_photos_of_a_burst_marked_apart_leave_the_other_three_with_one_of_them() -> None:
    rng = np.random.default_rng(7)
    burst = normalise(rng.normal(size=(1, 32)) + 0.05 * rng.normal(size=(5, 32)))
    strangers = normalise(rng.normal(size=(3, 32)))
    ids = [f"burst{i}" for i in range(5)] + [f"other{i}" for i in range(3)]
    graph = build_graph(encode_ids(ids), np.vstack([burst, strangers]), GraphParams(0.4))
    for linkage in ("complete", "average", "single"):
        tiers = cluster_graph(graph, THRESHOLDS, linkage, 2, (np.array([0]), np.array([1])))
        for tier in tiers:
            assert len(tier.groups) == 1, tier
            (group,) = tier.groups
            assert {"burst2", "burst3", "burst4"} <= set(group)
            assert len({"burst0", "burst1"} & set(group)) == 1


def connected(group: set[int], graph: NeighbourGraph, threshold: float) -> bool:
    keep = (graph.edge_s >= np.float32(threshold)) & np.isin(graph.edge_u, list(group))
    keep &= np.isin(graph.edge_v, list(group))
    reached, frontier = {min(group)}, [min(group)]
    edges = list(zip(graph.edge_u[keep].tolist(), graph.edge_v[keep].tolist(), strict=True))
    while frontier:
        node = frontier.pop()
        for a, b in edges:
            for x, y in ((a, b), (b, a)):
                if x == node and y not in reached:
                    reached.add(y)
                    frontier.append(y)
    return reached == group
