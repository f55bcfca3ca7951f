"""Store + graph kept in step: fresh-graph fast path, stale-graph fallbacks, queries."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from photocluster.clustering.graph_file import GRAPH_MAGIC, load_graph
from photocluster.clustering.tiers import cluster
from photocluster.config import Settings
from photocluster.errors import (
    InvalidThresholds,
    LibraryFull,
    ThresholdBelowFloor,
    UnknownImage,
    UnknownUser,
)
from photocluster.library import Library
from tests.helpers.data import grouped_vectors
from tests.helpers.graph_files import write_format_1

Filled = tuple[list[str], np.ndarray]


@pytest.fixture
def filled(library: Library, rng: np.random.Generator) -> Filled:
    ids, vectors, _ = grouped_vectors(rng, 8, 4, 20, dim=32, noise=0.5)
    library.write("u1", "test-model", ids[:20], vectors[:20])
    library.write("u1", "test-model", ids[20:], vectors[20:])
    return ids, vectors


def test_clusters_from_the_graph_equal_on_demand(library: Library, filled: Filled) -> None:
    ids, vectors = filled
    result = library.clusters("u1")
    expected = cluster(ids, vectors, library.tiers("test-model").thresholds)
    assert [t.groups for t in result.tiers] == [t.groups for t in expected]
    assert result.n_images == len(ids) and result.exact


def test_a_stale_graph_is_never_used(
    library: Library, filled: Filled, rng: np.random.Generator
) -> None:
    ids, vectors = filled
    graph_path = library.graphs.path("u1")
    stale = graph_path.read_bytes()
    library.write("u1", "test-model", ["late"], vectors[:1] + 1e-3)  # near-duplicate of ids[0]
    graph_path.write_bytes(stale)  # as if the writer crashed before saving the graph
    fresh_reader = Library.from_settings(library.settings)
    assert fresh_reader.graphs.fresh("u1", edges=False) is None
    groups = fresh_reader.clusters("u1").tiers[-1].groups
    assert any("late" in group and ids[0] in group for group in groups)
    # The first reader rebuilt and saved it: no later request computes every pair.
    other_reader = Library.from_settings(library.settings)
    assert other_reader.graphs.fresh("u1", edges=True) is not None
    assert other_reader.stats("u1").graph_fresh
    fresh_reader.write("u1", "test-model", ["later"], rng.standard_normal((1, 32)))
    assert fresh_reader.graphs.fresh("u1", edges=True) is not None


def test_a_stale_graph_is_rebuilt_once_by_concurrent_readers(
    library: Library, filled: Filled, caplog: pytest.LogCaptureFixture
) -> None:
    graph_path = library.graphs.path("u1")
    stale = graph_path.read_bytes()
    library.write("u1", "test-model", ["late"], filled[1][:1] + 1e-3)
    graph_path.write_bytes(stale)
    readers = [Library.from_settings(library.settings) for _ in range(6)]
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda reader: reader.clusters("u1"), readers))
    assert len({str([t.groups for t in r.tiers]) for r in results}) == 1
    assert sum("rebuilding it" in r.getMessage() for r in caplog.records) == 1


def test_a_missing_or_damaged_graph_falls_back(library: Library, filled: Filled) -> None:
    expected = [t.groups for t in library.clusters("u1").tiers]
    path = library.graphs.path("u1")
    path.write_bytes(b"garbage")
    assert [t.groups for t in Library.from_settings(library.settings).clusters("u1").tiers] == (
        expected
    )
    path.unlink()
    assert [t.groups for t in Library.from_settings(library.settings).clusters("u1").tiers] == (
        expected
    )


def test_thresholds_below_the_floor_are_computed_on_demand(
    library: Library, filled: Filled
) -> None:
    ids, vectors = filled
    result = library.clusters("u1", {"low": 0.2, "medium": 0.4, "high": 0.9})
    expected = cluster(ids, vectors, {"low": 0.2, "medium": 0.4, "high": 0.9})
    assert [t.groups for t in result.tiers] == [t.groups for t in expected]


@pytest.mark.parametrize(
    "thresholds",
    [
        {"low": 1.7},
        {"low": 0.0},
        {"low": -0.1},
        {"low": 0.9, "medium": 0.8},
        {"low": float("nan")},
        {"extra": 0.5},
    ],
)
def test_bad_thresholds_are_refused(
    library: Library, filled: Filled, thresholds: dict[str, float]
) -> None:
    with pytest.raises(InvalidThresholds):
        library.clusters("u1", thresholds)


def test_single_linkage_is_available(library: Library, filled: Filled) -> None:
    ids, vectors = filled
    result = library.clusters("u1", linkage="single")
    expected = cluster(ids, vectors, library.tiers("test-model").thresholds, "single")
    assert [t.groups for t in result.tiers] == [t.groups for t in expected]


def test_average_linkage_is_available_from_the_graph_and_on_demand(
    library: Library, filled: Filled
) -> None:
    ids, vectors = filled
    for thresholds in (library.tiers("test-model").thresholds, {"low": 0.2, "high": 0.9}):
        result = library.clusters("u1", thresholds, linkage="average")
        cut_at = {t.name: t.threshold for t in result.tiers}
        expected = cluster(ids, vectors, cut_at, "average")
        assert [t.groups for t in result.tiers] == [t.groups for t in expected]


def test_a_graph_file_older_than_average_linkage_serves_the_others_and_is_relinked(
    library: Library, filled: Filled, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    path = library.graphs.path("u1")
    saved = load_graph(path)
    assert saved is not None
    expected = {m: library.clusters("u1", linkage=m).tiers for m in ("complete", "average")}
    write_format_1(saved, path)
    reader = Library.from_settings(library.settings)
    assert reader.clusters("u1", linkage="complete").tiers == expected["complete"]
    assert path.read_bytes()[:8] == b"PCGRAPH1"  # complete linkage needs no upgrade
    assert reader.clusters("u1", linkage="average").tiers == expected["average"]
    assert path.read_bytes()[:8] == GRAPH_MAGIC
    assert sum("predates average linkage" in r.getMessage() for r in caplog.records) == 1


def test_a_write_relinks_a_graph_file_older_than_average_linkage(
    library: Library, filled: Filled, rng: np.random.Generator
) -> None:
    ids, vectors = filled
    path = library.graphs.path("u1")
    saved = load_graph(path)
    assert saved is not None
    write_format_1(saved, path)
    writer = Library.from_settings(library.settings)
    extra = rng.standard_normal((1, 32)).astype(np.float32)
    writer.write("u1", "test-model", ["later"], extra)
    assert path.read_bytes()[:8] == GRAPH_MAGIC
    result = Library.from_settings(library.settings).clusters("u1", linkage="average")
    all_vectors = np.vstack([vectors, extra / np.linalg.norm(extra)])
    cut_at = {t.name: t.threshold for t in result.tiers}
    expected = cluster([*ids, "later"], all_vectors, cut_at, "average")
    assert [t.groups for t in result.tiers] == [t.groups for t in expected]


def test_min_size_one_includes_singletons(library: Library, filled: Filled) -> None:
    ids, _ = filled
    tier = library.clusters("u1", min_size=1).tiers[0]
    assert sorted(i for g in tier.groups for i in g) == sorted(ids)


def test_similar_returns_top_k_without_itself(library: Library, filled: Filled) -> None:
    ids, vectors = filled
    neighbours = library.similar("u1", ids[0], k=3)
    assert len(neighbours) == 3 and ids[0] not in [n.image_id for n in neighbours]
    scores = [n.score for n in neighbours]
    assert scores == sorted(scores, reverse=True)
    expected = np.argsort(-(vectors @ vectors[0]))[1:4]
    assert [n.image_id for n in neighbours] == [ids[i] for i in expected]
    with pytest.raises(UnknownImage):
        library.similar("u1", "nope")


def test_pairs_are_paginated_highest_first(library: Library, filled: Filled) -> None:
    _, vectors = filled
    first = library.pairs("u1", 0.6, 1.0, limit=5)
    second = library.pairs("u1", 0.6, 1.0, limit=5, offset=5)
    sims = np.triu(vectors @ vectors.T, 1)
    assert first.total == int((sims >= 0.6).sum())
    scores = [p.score for p in first.pairs + second.pairs]
    assert scores == sorted(scores, reverse=True)
    assert first.next_offset == 5
    below = library.pairs("u1", 0.1, 0.3, limit=1000)  # below the floor: on demand
    assert below.total == int(((sims >= 0.1) & (sims <= 0.3)).sum())


def test_kept_pairs_follow_the_decisions_the_writes_and_a_rebuilt_graph(
    library: Library, filled: Filled, rng: np.random.Generator
) -> None:
    first = library.pairs("u1", 0.6, 1.0, limit=1)
    top = first.pairs[0]
    library.mark_not_similar("u1", [top.a, top.b])
    after = library.pairs("u1", 0.6, 1.0, limit=1000)
    assert after.total == first.total - 1 and (top.a, top.b) not in {
        (p.a, p.b) for p in after.pairs
    }
    library.unmark_not_similar("u1", [top.a, top.b])
    assert library.pairs("u1", 0.6, 1.0, limit=1).total == first.total
    twin = filled[1][:1] + 1e-3 * rng.standard_normal((1, filled[1].shape[1]))
    twin /= np.linalg.norm(twin)
    library.write("u1", "test-model", ["twin"], twin)  # new pairs: the kept ones are stale
    everything = np.vstack([filled[1], twin])
    expected = int((np.triu(everything @ everything.T, 1) >= 0.6).sum())
    assert library.pairs("u1", 0.6, 1.0, limit=1).total == expected
    library.graphs.path("u1").unlink()  # the graph rebuilt for the same store
    assert library.pairs("u1", 0.6, 1.0, limit=1).total == expected


def test_pairs_below_floor_refused_for_large_libraries(
    settings: Settings, rng: np.random.Generator
) -> None:
    library = Library.from_settings(settings.model_copy(update={"on_demand_max_images": 5}))
    library.write("u1", "m", [f"i{i}" for i in range(10)], rng.standard_normal((10, 8)))
    with pytest.raises(InvalidThresholds, match="below the stored graph's floor"):
        library.pairs("u1", 0.1)


def test_cluster_thresholds_below_floor_refused_for_large_libraries(
    settings: Settings, rng: np.random.Generator
) -> None:
    library = Library.from_settings(settings.model_copy(update={"on_demand_max_images": 5}))
    library.write("u1", "m", [f"i{i}" for i in range(10)], rng.standard_normal((10, 8)))
    floor = library.tiers("m").index_floor
    with pytest.raises(ThresholdBelowFloor, match=f"floor {floor}") as refused:
        library.clusters("u1", {"low": floor / 2})
    assert refused.value.floor == floor and refused.value.code == "threshold_below_floor"
    assert library.clusters("u1", {"low": floor}).tiers[0].threshold == floor
    small = Library.from_settings(settings.model_copy(update={"on_demand_max_images": 10}))
    assert small.clusters("u1", {"low": floor / 2}).tiers[0].threshold == floor / 2


def test_delete_updates_the_graph(library: Library, filled: Filled) -> None:
    victim = library.clusters("u1").tiers[0].groups[0][0]
    library.delete("u1", [victim])
    assert victim not in {i for t in library.clusters("u1").tiers for g in t.groups for i in g}
    assert library.stats("u1").graph_fresh


def test_unknown_user(library: Library) -> None:
    with pytest.raises(UnknownUser):
        library.clusters("ghost")


def test_stats(library: Library, filled: Filled) -> None:
    stats = library.stats("u1")
    assert stats.n_images == len(filled[0]) and stats.dim == 32 and stats.graph_fresh


def test_a_write_past_the_largest_library_is_refused_whole(settings: Settings) -> None:
    library = Library.from_settings(settings.model_copy(update={"max_images_per_user": 3}))
    library.write("u1", "test-model", ["a", "b"], np.eye(2, 8))
    with pytest.raises(LibraryFull, match="3 photos"):
        library.write("u1", "test-model", ["c", "d"], np.eye(2, 8)[::-1])
    assert library.stats("u1").n_images == 2  # nothing of the refused batch was stored
    library.write("u1", "test-model", ["a", "b", "c"], np.eye(3, 8))  # two were there
    assert library.stats("u1").n_images == 3
