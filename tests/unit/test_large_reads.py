"""Reads that never load the whole user (issue 28): group scores kept in the graph, rows
and passes read from the mapped store file, stats from headers; and the fallbacks when the
graph file is older or the store file was compacted since."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from photocluster.clustering.graph import GraphParams, build_graph
from photocluster.clustering.graph_file import load_graph
from photocluster.clustering.similarity import similar
from photocluster.clustering.tiers import cluster_graph
from photocluster.ids import encode_ids
from photocluster.library import Library
from photocluster.store import snapshot as snapshot_module
from photocluster.store import vectors as mapped_vectors
from tests.helpers.data import grouped_vectors
from tests.helpers.graph_files import write_format_2

Filled = tuple[list[str], np.ndarray]
LINKAGES = ("average", "complete", "single")


@pytest.fixture
def filled(library: Library, rng: np.random.Generator) -> Filled:
    ids, vectors, _ = grouped_vectors(rng, 8, 5, 30, dim=32, noise=0.5)
    library.write("u1", "test-model", ids[:30], vectors[:30])
    library.write("u1", "test-model", ids[30:], vectors[30:])
    library.delete("u1", ids[:3])  # dead records between the live ones
    return ids[3:], vectors[3:] / np.linalg.norm(vectors[3:], axis=1, keepdims=True)


@pytest.fixture
def no_load(library: Library) -> Iterator[None]:
    """Any read that loads the whole user fails the test."""

    def refuse(user_id: str) -> None:
        raise AssertionError(f"loaded the whole of {user_id}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(library.store, "read", refuse)
        yield


def lowest_pair(vectors: np.ndarray, rows: list[int]) -> float:
    similarity = vectors[rows] @ vectors[rows].T
    return min(max(float(similarity[np.triu_indices(len(rows), 1)].min()), 0.0), 1.0)


def test_average_linkage_groups_carry_their_lowest_pair_from_the_write(
    rng: np.random.Generator,
) -> None:
    ids, vectors, _ = grouped_vectors(rng, 10, 6, 40, dim=24, noise=0.6)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    graph = build_graph(encode_ids(ids), unit.astype(np.float32), GraphParams(0.2))
    for tier in cluster_graph(graph, {"low": 0.3, "medium": 0.5, "high": 0.7}, "average"):
        assert tier.lowest is not None and not np.isnan(tier.lowest).any()
        for rows, score in zip(tier.rows(), tier.lowest.tolist(), strict=True):
            assert score == pytest.approx(lowest_pair(unit, rows.tolist()), abs=1e-5)


@pytest.mark.parametrize("linkage", LINKAGES)
def test_a_page_of_groups_never_loads_the_user(
    library: Library, filled: Filled, linkage: str
) -> None:
    ids, vectors = filled
    library.mark_not_similar("u1", ids[:2])  # a split group is scored from the mapped rows
    expected = library.clusters_page("u1", linkage=linkage)[1]
    fresh = Library.from_settings(library.settings)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fresh.store, "read", lambda user_id: pytest.fail("loaded the user"))
        pages = fresh.clusters_page("u1", linkage=linkage)[1]
    assert [p.to_dict() for p in pages] == [p.to_dict() for p in expected]
    rows = {name: row for row, name in enumerate(ids)}
    for page in pages:
        for group in page.groups:
            at = [rows[i] for i in group.image_ids]
            assert group.score == pytest.approx(lowest_pair(vectors, at), abs=1e-5)


def test_similar_reads_the_mapped_file_and_equals_brute_force(
    library: Library, filled: Filled, no_load: None
) -> None:
    ids, vectors = filled
    for image_id in (ids[0], ids[17], ids[-1]):
        found = library.similar("u1", image_id, k=7, min_score=0.1)
        expected = similar(encode_ids(ids), vectors.astype(np.float32), image_id, 7, 0.1)
        assert [n.image_id for n in found] == [n.image_id for n in expected]
        assert [n.score for n in found] == pytest.approx([n.score for n in expected], abs=1e-6)


def test_stats_come_from_the_headers(library: Library, filled: Filled) -> None:
    ids, _ = filled
    loaded = library.store.read("u1")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(library.store, "read", lambda user_id: pytest.fail("loaded the user"))
        stats = library.stats("u1")
    assert (stats.n_images, stats.n_records) == (len(ids), loaded.n_records)
    assert stats.n_dead == loaded.n_dead == 6  # 3 deleted records and their 3 tombstones
    graph = load_graph(library.graphs.path("u1"))
    assert graph is not None and stats.graph_fresh and stats.graph_edges == len(graph.edge_u)


def test_after_a_compaction_reads_fall_back_to_the_loaded_user(
    library: Library, filled: Filled
) -> None:
    """The graph's positions are for the file before the compaction (another inode)."""
    ids, vectors = filled
    before = library.clusters_page("u1", linkage="single")[1]
    library.store.compact("u1")
    reader = Library.from_settings(library.settings)
    assert [p.to_dict() for p in reader.clusters_page("u1", linkage="single")[1]] == [
        p.to_dict() for p in before
    ]
    expected = similar(encode_ids(ids), vectors.astype(np.float32), ids[5], 5)
    assert [n.image_id for n in reader.similar("u1", ids[5], k=5)] == [n.image_id for n in expected]


def test_a_graph_file_without_stored_scores_is_served_from_the_vectors(
    library: Library, filled: Filled
) -> None:
    expected = library.clusters_page("u1")[1]
    graph = load_graph(library.graphs.path("u1"))
    assert graph is not None
    write_format_2(graph, library.graphs.path("u1"))
    reader = Library.from_settings(library.settings)
    older = reader.graphs.fresh("u1", edges=False)
    assert older is not None and np.isnan(older.average_low).all() and not len(older.positions)
    pages = reader.clusters_page("u1")[1]
    assert [p.to_dict() for p in pages] == [p.to_dict() for p in expected]


def test_one_pass_over_the_mapped_file_scores_every_live_record(
    library: Library, filled: Filled
) -> None:
    loaded = library.store.read("u1")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mapped_vectors, "BLOCK_RECORDS", 7)  # several blocks, a short last one
        with library.store.mapped("u1") as mapped:
            query = mapped.rows(loaded.positions[4:5])[0]
            found = mapped.similarities(query, loaded.positions)
    assert np.array_equal(query, loaded.vectors[4])
    assert found == pytest.approx(np.clip(loaded.vectors @ loaded.vectors[4], 0, 1), abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(names=st.lists(st.sampled_from(["a", "b", "c", "img-1", "img-10", "x" * 128]), max_size=30))
def test_each_ids_last_record_is_found_by_hashes_as_by_sorting(names: list[str]) -> None:
    ids = encode_ids(names)
    expected = np.zeros(len(ids), dtype=bool)
    if len(ids):
        _, first_from_end = np.unique(ids[::-1], return_index=True)
        expected[len(ids) - 1 - first_from_end] = True
    assert np.array_equal(snapshot_module._last_of_each(ids), expected)
    with pytest.MonkeyPatch.context() as patch:  # every hash the same: collisions, resolved
        patch.setattr(snapshot_module, "_MIX", np.zeros(16, dtype=np.uint64))
        assert np.array_equal(snapshot_module._last_of_each(ids), expected)


def test_a_writer_reads_the_ids_and_leaves_the_vectors_in_the_file(
    library: Library, filled: Filled
) -> None:
    """A write's snapshot maps the file: its memory is the ids, not the vectors."""
    _, vectors = filled
    with library.store.transaction("u1") as tx:
        snapshot = tx.snapshot
        assert snapshot is not None and isinstance(snapshot.rows, mapped_vectors.MappedRows)
        assert snapshot.nbytes == snapshot.ids.nbytes + snapshot.positions.nbytes
        assert np.allclose(snapshot.vectors, vectors, atol=1e-6)
        first = snapshot.rows.dot(snapshot.rows.take(np.array([0, 5])))
        assert first is snapshot.rows.dot(snapshot.rows.take(np.array([0, 5])))  # one pass
        assert np.allclose(first, vectors[[0, 5]] @ vectors.T, atol=1e-5)


@pytest.mark.parametrize("upto", [1, 30, 67])
def test_the_pairs_above_a_floor_are_the_same_from_memory_and_from_the_file(
    library: Library, filled: Filled, upto: int
) -> None:
    _, vectors = filled
    queries = vectors[[3, 40, 66]]
    expected = np.argwhere(queries @ vectors[:upto].T >= 0.2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mapped_vectors, "BLOCK_RECORDS", 16)  # blocks across the dead records
        patch.setattr(mapped_vectors, "ABOVE_BLOCK", 16)
        with library.store.transaction("u1") as tx:
            assert tx.snapshot is not None
            for rows in (tx.snapshot.rows, mapped_vectors.ArrayRows(vectors)):
                query, row, value = rows.above(queries, 0.2, upto)
                found = sorted(zip(query.tolist(), row.tolist(), strict=True))
                assert found == sorted(map(tuple, expected.tolist()))
                assert value == pytest.approx((queries[query] * vectors[row]).sum(1), abs=1e-5)


def test_a_write_takes_the_rows_from_a_fresh_graph_and_passes_over_the_file_otherwise(
    library: Library, filled: Filled, rng: np.random.Generator
) -> None:
    ids, _ = filled
    writer = Library.from_settings(library.settings)  # a new process: nothing cached
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(snapshot_module, "load_index", lambda *a: pytest.fail("passed over"))
        writer.write("u1", "test-model", ["new-1"], rng.standard_normal((1, 32)))
    stale = library.graphs.path("u1").read_bytes()
    writer.write("u1", "test-model", ["new-2"], rng.standard_normal((1, 32)))
    library.graphs.path("u1").write_bytes(stale)  # as if the writer died before the graph
    passes: list[int] = []
    real = snapshot_module.load_index

    def counted(*args: object) -> object:
        passes.append(1)
        return real(*args)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(snapshot_module, "load_index", counted)
        third = Library.from_settings(library.settings)
        third.write("u1", "test-model", ["new-3"], rng.standard_normal((1, 32)))
    assert passes == [1]
    assert set(third.store.read("u1").id_list()) == {*ids, "new-1", "new-2", "new-3"}
