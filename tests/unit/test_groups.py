"""Groups as objects: ids that depend on the members only, scores equal to the brute-force
lowest similarity whatever the batching."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from photocluster.clustering.similarity import normalise
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
