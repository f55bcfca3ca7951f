"""What a process keeps between requests stays within PHOTOCLUSTER_CACHE_MB."""

from __future__ import annotations

import numpy as np

from photocluster.config import Settings
from photocluster.library import Library
from photocluster.store.memory import MemoryCache


def test_least_recently_used_entries_go_first_and_the_total_stays_bounded() -> None:
    cache = MemoryCache(max_bytes=100)
    cache.put("a", "A", 40)
    cache.put("b", "B", 40)
    assert cache.get("a") == "A"  # now the most recently used
    cache.put("c", "C", 40)
    assert cache.get("b") is None and cache.get("a") == "A" and cache.get("c") == "C"
    assert cache.used_bytes == 80
    cache.put("a", "A2", 10)  # replacing re-weighs
    assert cache.used_bytes == 50 and cache.get("a") == "A2"
    cache.put("huge", "H", 101)  # larger than the budget: served by the caller, not kept
    assert cache.get("huge") is None and cache.used_bytes == 50
    cache.clear()
    assert cache.used_bytes == 0 and cache.get("a") is None


def test_a_library_serving_many_large_users_stays_within_its_budget(
    settings: Settings, rng: np.random.Generator
) -> None:
    library = Library.from_settings(settings.model_copy(update={"cache_mb": 2}))
    n, dim = 400, 256  # 400 KiB of vectors per user, plus graph and records
    for user in range(8):
        ids = [f"img-{i}" for i in range(n)]
        library.write(f"user-{user}", "m", ids, rng.standard_normal((n, dim)))
    for user in range(8):
        library.clusters(f"user-{user}")
        library.similar(f"user-{user}", "img-0", k=5)
        library.images(f"user-{user}")
        assert library.store.memory.used_bytes <= 2 * 2**20
    assert library.store.memory.used_bytes > 2**20  # it does cache: the latest users


def test_a_zero_budget_caches_nothing_and_still_answers(
    settings: Settings, rng: np.random.Generator
) -> None:
    library = Library.from_settings(settings.model_copy(update={"cache_mb": 0}))
    library.write("u", "m", ["a", "b"], rng.standard_normal((2, 16)))
    assert library.clusters("u").n_images == 2 and library.images("u").images
    assert library.store.memory.used_bytes == 0
