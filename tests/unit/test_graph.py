"""The write-time neighbour graph against complete/average/single linkage on the full
matrix."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.sparse.csgraph import connected_components

from photocluster.clustering.graph import (
    GraphParams,
    NeighbourGraph,
    build_graph,
    relink,
    update_graph,
)
from photocluster.clustering.graph_file import load_graph, save_graph
from photocluster.clustering.linkage import components
from photocluster.clustering.tiers import cluster_graph, groups_from_labels
from photocluster.ids import encode_ids
from tests.helpers.data import grouped_vectors
from tests.helpers.graph_files import write_format_1

TIERS = {"low": 0.6, "medium": 0.75, "high": 0.9}


def reference_groups(vectors: np.ndarray, threshold: float, method: str) -> list[set[int]]:
    """Groups of row indices (size >= 2) by scipy on the full matrix."""
    sims = np.clip(vectors @ vectors.T, -1, 1).astype(np.float64)
    n = len(vectors)
    if method in ("complete", "average"):
        tree = linkage((1 - sims)[np.triu_indices(n, 1)], method)
        labels = fcluster(tree, 1 - threshold, "distance")
    else:
        _, labels = connected_components(sims >= threshold, directed=False)
    groups: dict[int, set[int]] = {}
    for row, label in enumerate(labels):
        groups.setdefault(int(label), set()).add(row)
    return sorted((g for g in groups.values() if len(g) >= 2), key=min)


def graph_groups(graph: NeighbourGraph, threshold: float, method: str) -> list[set[int]]:
    labels = graph.labels(threshold, method)
    groups: dict[int, set[int]] = {}
    for row, label in enumerate(labels):
        groups.setdefault(int(label), set()).add(row)
    return sorted((g for g in groups.values() if len(g) >= 2), key=min)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    groups=st.integers(1, 6),
    size=st.integers(2, 6),
    singles=st.integers(0, 10),
    noise=st.floats(0.2, 1.2),
)
def test_graph_cut_equals_full_matrix_linkage(
    seed: int, groups: int, size: int, singles: int, noise: float
) -> None:
    rng = np.random.default_rng(seed)
    ids, vectors, _ = grouped_vectors(rng, groups, size, singles, dim=24, noise=noise)
    graph = build_graph(encode_ids(ids), vectors, GraphParams(floor=0.5))
    for threshold in (0.5, 0.6, 0.75, 0.9):
        for method in ("complete", "average", "single"):
            assert graph_groups(graph, threshold, method) == reference_groups(
                vectors, threshold, method
            ), (threshold, method)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 60),
    dim=st.integers(2, 12),
    linkage_max=st.integers(2, 80),
    threshold=st.floats(0.3, 0.99),
)
def test_average_linkage_cut_equals_scipy_on_the_full_matrix(
    seed: int, n: int, dim: int, linkage_max: int, threshold: float
) -> None:
    """Random vectors (pairs below the floor inside a component, negative ones too), and
    components split at a raised level when ``linkage_max`` is small: from ``exact_from``
    on, the cut is UPGMA on the full matrix."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, dim))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    ids = encode_ids([f"i{i}" for i in range(n)])
    graph = build_graph(ids, vectors, GraphParams(floor=0.3, linkage_max=linkage_max))
    if threshold >= graph.exact_from:
        assert graph_groups(graph, threshold, "average") == reference_groups(
            vectors, threshold, "average"
        )


def test_average_linkage_lets_a_strong_group_carry_one_weaker_pair() -> None:
    # A~B 0.95, B~C 0.90, A~C 0.75: at 0.8 C joins A,B on average (0.825), not on every pair.
    a = np.array([1.0, 0.0, 0.0])
    b = np.array([0.95, np.sqrt(1 - 0.95**2), 0.0])
    y = (0.9 - 0.95 * 0.75) / b[1]
    c = np.array([0.75, y, np.sqrt(1 - 0.75**2 - y**2)])
    vectors = np.stack([a, b, c]).astype(np.float32)
    graph = build_graph(encode_ids(["A", "B", "C"]), vectors, GraphParams(floor=0.5))
    assert cluster_graph(graph, {"low": 0.8}, "complete")[0].groups == [["A", "B"]]
    assert cluster_graph(graph, {"low": 0.8}, "average")[0].groups == [["A", "B", "C"]]
    assert cluster_graph(graph, {"low": 0.83}, "average")[0].groups == [["A", "B"]]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_complete_linkage_never_chains(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ids, vectors, _ = grouped_vectors(rng, 5, 6, 10, dim=16, noise=1.0)
    graph = build_graph(encode_ids(ids), vectors, GraphParams(floor=0.4))
    sims = vectors @ vectors.T
    for tier in cluster_graph(graph, {"low": 0.5, "medium": 0.7, "high": 0.85}, "complete"):
        for group in tier.groups:
            rows = [ids.index(i) for i in group]
            block = sims[np.ix_(rows, rows)]
            assert block.min() >= tier.threshold - 1e-6


def test_chain_a_b_c_is_split_by_complete_and_joined_by_single() -> None:
    # A~B and B~C at 0.8, A~C at 0.28: the classic chain.
    a = np.array([1.0, 0.0, 0.0])
    b = np.array([0.8, 0.6, 0.0])
    c = np.array([0.28, 0.96, 0.0])
    vectors = np.stack([a, b, c]).astype(np.float32)
    graph = build_graph(encode_ids(["A", "B", "C"]), vectors, GraphParams(floor=0.2))
    complete = cluster_graph(graph, {"low": 0.75}, "complete")[0].groups
    single = cluster_graph(graph, {"low": 0.75}, "single")[0].groups
    assert complete in ([["A", "B"]], [["B", "C"]])  # a tie: B goes with one of them
    assert single == [["A", "B", "C"]]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), method=st.sampled_from(["complete", "average", "single"]))
def test_higher_tiers_nest_inside_lower_ones(seed: int, method: str) -> None:
    rng = np.random.default_rng(seed)
    ids, vectors, _ = grouped_vectors(rng, 6, 5, 8, dim=16, noise=0.9)
    graph = build_graph(encode_ids(ids), vectors, GraphParams(floor=0.5))
    tiers = cluster_graph(graph, TIERS, method)
    for looser, stricter in itertools.pairwise(tiers):
        for group in stricter.groups:
            assert any(set(group) <= set(other) for other in looser.groups)


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Two labellings put the same rows together (whatever the label numbers)."""
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    steps=st.lists(st.tuples(st.integers(0, 8), st.integers(0, 4)), min_size=1, max_size=8),
)
def test_incremental_updates_equal_a_rebuild(seed: int, steps: list[tuple[int, int]]) -> None:
    rng = np.random.default_rng(seed)
    pool_ids, pool, _ = grouped_vectors(rng, 6, 5, 10, dim=24, noise=0.8)
    params = GraphParams(floor=0.5)
    current: list[int] = []  # rows of the pool currently stored, in store order
    graph = build_graph(encode_ids([]), np.zeros((0, 24), np.float32), params)
    next_row = 0
    for add, remove in steps:
        remove_rows = (
            set(rng.choice(current, size=min(remove, len(current)), replace=False).tolist())
            if current
            else set()
        )
        kept = np.array([row not in remove_rows for row in current], dtype=bool)
        new_rows = list(range(next_row, min(next_row + add, len(pool))))
        next_row += len(new_rows)
        current = [row for row in current if row not in remove_rows] + new_rows
        ids = encode_ids([pool_ids[r] for r in current])
        graph = update_graph(graph, ids, pool[current], kept, len(new_rows))
        rebuilt = build_graph(ids, pool[current], params)
        assert same_partition(graph.components, components(len(ids), graph.edge_u, graph.edge_v))
        for threshold in (0.5, 0.75, 0.9):
            for method in ("complete", "average", "single"):
                assert graph_groups(graph, threshold, method) == graph_groups(
                    rebuilt, threshold, method
                )


def test_caps_only_make_groups_smaller() -> None:
    rng = np.random.default_rng(7)
    ids, vectors, _ = grouped_vectors(rng, 1, 40, 0, dim=16, noise=0.6)
    exact = build_graph(encode_ids(ids), vectors, GraphParams(floor=0.3))
    capped = build_graph(
        encode_ids(ids), vectors, GraphParams(floor=0.3, max_neighbours=3, linkage_max=8)
    )
    assert capped.capped and capped.exact_from > capped.floor
    sims = vectors @ vectors.T
    for threshold in (0.4, 0.6):
        exact_groups = graph_groups(exact, threshold, "complete")
        for group in graph_groups(capped, threshold, "complete"):
            rows = sorted(group)
            assert sims[np.ix_(rows, rows)].min() >= threshold - 1e-6
            assert any(group <= other for other in exact_groups)


def test_graph_file_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    ids, vectors, _ = grouped_vectors(rng, 4, 4, 5, dim=16, noise=0.5)
    graph = build_graph(encode_ids(ids), vectors, GraphParams(floor=0.5))
    path = tmp_path / "g.pcg"
    save_graph(graph, path)
    loaded = load_graph(path)
    assert loaded is not None
    assert loaded.ids.tolist() == graph.ids.tolist()
    np.testing.assert_array_equal(loaded.merge_s, graph.merge_s)
    np.testing.assert_array_equal(loaded.average_u, graph.average_u)
    np.testing.assert_array_equal(loaded.average_s, graph.average_s)
    np.testing.assert_array_equal(loaded.edge_u, graph.edge_u)
    assert loaded.has_average
    partial = load_graph(path, for_clusters_only=True)
    assert partial is not None and len(partial.edge_u) == 0 and not partial.has_edges
    assert graph_groups(partial, 0.75, "complete") == graph_groups(graph, 0.75, "complete")
    assert graph_groups(partial, 0.75, "average") == graph_groups(graph, 0.75, "average")
    with pytest.raises(ValueError, match="without its edges"):
        partial.labels(0.75, "single")


def test_a_format_1_graph_file_loads_without_average_merges_and_relinks(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    ids, vectors, _ = grouped_vectors(rng, 4, 4, 5, dim=16, noise=0.6)
    graph = build_graph(encode_ids(ids), vectors, GraphParams(floor=0.5))
    path = tmp_path / "old.pcg"
    write_format_1(graph, path)
    old = load_graph(path)
    assert old is not None and not old.has_average and len(old.average_u) == 0
    for method in ("complete", "single"):
        assert graph_groups(old, 0.75, method) == graph_groups(graph, 0.75, method)
    with pytest.raises(ValueError, match="predates average linkage"):
        old.labels(0.75, "average")
    relinked = relink(old, vectors)
    np.testing.assert_array_equal(relinked.edge_s, graph.edge_s)
    for threshold in (0.5, 0.75, 0.9):
        for method in ("complete", "average"):
            assert graph_groups(relinked, threshold, method) == graph_groups(
                graph, threshold, method
            )


def test_groups_order_largest_first_then_earliest() -> None:
    labels = np.array([0, 1, 1, 2, 2, 2, 0, 3])
    ids = encode_ids(["a", "b", "c", "d", "e", "f", "g", "h"])
    assert groups_from_labels(labels, ids) == [["d", "e", "f"], ["a", "g"], ["b", "c"]]
    assert groups_from_labels(labels, ids, min_size=1)[-1] == ["h"]
