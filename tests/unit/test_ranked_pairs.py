"""A page of pairs ranks only what it needs, and ranks it as a full sort would."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from photocluster.clustering.similarity import ranked


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 300),
    levels=st.integers(1, 6),  # few distinct scores: many ties at a page's edge
    count=st.integers(1, 400),
)
def test_the_first_pairs_are_those_of_a_full_sort(
    seed: int, n: int, levels: int, count: int
) -> None:
    rng = np.random.default_rng(seed)
    u = rng.integers(0, 50, n).astype(np.int64)
    v = u + 1 + rng.integers(0, 50, n).astype(np.int64)
    s = (rng.integers(0, levels, n) / levels).astype(np.float32)
    order = np.lexsort((v, u, -s))
    full = u[order], v[order], s[order]
    first = ranked((u, v, s), count)
    for got, want in zip(first, full, strict=True):
        assert np.array_equal(got, want[:count])
    for got, want in zip(ranked((u, v, s)), full, strict=True):
        assert np.array_equal(got, want)
