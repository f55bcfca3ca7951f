"""Groups as objects: ids that depend on the members only, scores equal to the brute-force
lowest similarity whatever the batching."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from photocluster.clustering.graph import GraphParams, build_graph
from photocluster.clustering.similarity import normalise
from photocluster.clustering.tiers import cluster_graph
from photocluster.ids import encode_ids
from photocluster.library import groups


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    sizes=st.lists(st.integers(1, 12), min_size=0, max_size=20),
    batch=st.sampled_from([1, 50, 1 << 23]),
)
def test_scores_are_the_lowest_pairwise_similarity(seed: int, sizes: list[int], batch: int) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(groups, "_BATCH_ENTRIES", batch)
        check_scores(seed, sizes)


def check_scores(seed: int, sizes: list[int]) -> None:
    rng = np.random.default_rng(seed)
    vectors = normalise(rng.normal(size=(60, 8)))
    sizes = sorted(sizes, reverse=True)  # groups come largest first
    rows = [rng.choice(60, size, replace=False).astype(np.int64) for size in sizes]
    expected = []
    for at in rows:
        similarity = vectors[at] @ vectors[at].T
        lowest = similarity[np.triu_indices(len(at), 1)].min() if len(at) > 1 else 1.0
        expected.append(min(max(float(lowest), 0.0), 1.0))
    assert groups.scores(vectors, rows) == pytest.approx(expected, abs=1e-5)


def test_a_group_id_depends_on_its_members_only() -> None:
    assert groups.group_id(["b.jpg", "a.jpg"]) == groups.group_id(["a.jpg", "b.jpg"])
    assert groups.group_id(["a.jpg", "b.jpg"]) != groups.group_id(["a.jpg", "c.jpg"])
    assert groups.group_id(["a.jpg"]).startswith("g_") and len(groups.group_id(["a.jpg"])) == 18


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 40),
    marks=st.integers(0, 4),
    linkage=st.sampled_from(["complete", "average", "single"]),
)
def test_every_groups_score_is_its_lowest_similarity_with_or_without_marks(
    seed: int, n: int, marks: int, linkage: str
) -> None:
    """Scores read off the dendrogram, or computed for groups a mark split, are exact."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(1, n // 4), 16))
    vectors = normalise(centres[rng.integers(0, len(centres), n)] + 0.5 * rng.normal(size=(n, 16)))
    ids = encode_ids([f"i{i}" for i in range(n)])
    graph = build_graph(ids, vectors, GraphParams(0.3))
    pairs = rng.integers(0, n, size=(marks, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    tiers = cluster_graph(
        graph, {"low": 0.4, "medium": 0.6, "high": 0.8}, linkage, 2, (pairs[:, 0], pairs[:, 1])
    )
    for page in groups.pages(tiers, vectors):
        for group in page.groups:
            rows = [int(i[1:]) for i in group.image_ids]
            similarity = vectors[rows] @ vectors[rows].T
            expected = similarity[np.triu_indices(len(rows), 1)].min()
            assert group.score == pytest.approx(min(max(expected, 0.0), 1.0), abs=1e-5)
