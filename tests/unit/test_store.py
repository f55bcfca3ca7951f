"""The per-user embeddings file: format, refusals, idempotency, torn tails, compaction."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from photocluster.errors import (
    DimensionMismatch,
    InvalidId,
    InvalidVector,
    ModelMismatch,
    StoreCorrupt,
    UnknownUser,
)
from photocluster.library import Library
from photocluster.store import HEADER_SIZE, STATE_LIVE, Store, record_dtype
from photocluster.store.format import COMMITTED_OFFSET, VERSION_OFFSET


def unit(rng: np.random.Generator, n: int, dim: int = 8) -> np.ndarray:
    v = rng.standard_normal((n, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_round_trip_keeps_ids_vectors_and_order(store: Store, rng: np.random.Generator) -> None:
    vectors = unit(rng, 5)
    store.upsert("u1", "m", ["a", "b", "c", "d", "e"], vectors)
    snap = store.read("u1")
    assert snap.id_list() == ["a", "b", "c", "d", "e"]
    np.testing.assert_allclose(snap.vectors, vectors, atol=1e-7)
    assert snap.model == "m" and snap.dim == 8


def test_load_is_one_structured_read_with_fixed_size_records(
    store: Store, rng: np.random.Generator
) -> None:
    store.upsert("u1", "m", [f"i{i}" for i in range(10)], unit(rng, 10))
    path = store.paths("u1").data
    size = record_dtype(8, "float32").itemsize
    assert path.stat().st_size == HEADER_SIZE + 10 * size
    raw = np.fromfile(path, dtype=record_dtype(8, "float32"), offset=HEADER_SIZE)
    assert (raw["state"] == STATE_LIVE).all()


def test_vectors_are_stored_unit_length(store: Store) -> None:
    store.upsert("u1", "m", ["a"], [[3.0, 4.0]])
    np.testing.assert_allclose(store.read("u1").vectors, [[0.6, 0.8]], atol=1e-7)


def test_second_write_of_same_id_replaces(store: Store, rng: np.random.Generator) -> None:
    first, second = unit(rng, 1), unit(rng, 1)
    store.upsert("u1", "m", ["a"], first)
    change = store.upsert("u1", "m", ["a"], second)
    snap = store.read("u1")
    assert change.replaced == 1
    assert snap.id_list() == ["a"]
    np.testing.assert_allclose(snap.vectors[0], second[0], atol=1e-7)


def test_identical_redelivery_changes_nothing(store: Store, rng: np.random.Generator) -> None:
    vectors = unit(rng, 3)
    store.upsert("u1", "m", ["a", "b", "c"], vectors)
    before = store.paths("u1").data.read_bytes()
    change = store.upsert("u1", "m", ["a", "b", "c"], vectors)
    assert change.unchanged == 3 and change.appended == 0
    assert store.paths("u1").data.read_bytes() == before


def test_duplicate_ids_in_one_call_last_wins(store: Store, rng: np.random.Generator) -> None:
    vectors = unit(rng, 2)
    store.upsert("u1", "m", ["a", "a"], vectors)
    snap = store.read("u1")
    assert snap.id_list() == ["a"]
    np.testing.assert_allclose(snap.vectors[0], vectors[1], atol=1e-7)


def test_delete_tombstones_and_counts_missing(store: Store, rng: np.random.Generator) -> None:
    store.upsert("u1", "m", ["a", "b", "c"], unit(rng, 3))
    change = store.delete("u1", ["b", "zz"])
    assert (change.deleted, change.missing) == (1, 1)
    snap = store.read("u1")
    assert snap.id_list() == ["a", "c"]
    assert snap.n_dead == 2  # the old record and its tombstone


def test_compaction_drops_dead_records_atomically(store: Store, rng: np.random.Generator) -> None:
    store.upsert("u1", "m", [f"i{i}" for i in range(10)], unit(rng, 10))
    store.delete("u1", [f"i{i}" for i in range(0, 10, 2)])
    inode = store.paths("u1").data.stat().st_ino
    store.compact("u1")
    snap = store.read("u1")
    assert snap.id_list() == ["i1", "i3", "i5", "i7", "i9"]
    assert snap.n_dead == 0
    assert store.paths("u1").data.stat().st_ino != inode  # a new file was renamed in
    assert not list(store.paths("u1").data.parent.glob(".*tmp"))


def test_compaction_runs_when_dead_ratio_passes(tmp_path: Path, rng: np.random.Generator) -> None:
    store = Store(tmp_path, fsync=False, compact_ratio=0.3, compact_min_dead=8)
    store.upsert("u1", "m", [f"i{i}" for i in range(10)], unit(rng, 10))
    store.delete("u1", ["i0", "i1", "i2"])
    assert store.read("u1").n_dead == 6  # 3 records and their tombstones: < min 8
    store.delete("u1", ["i3", "i4"])
    assert store.read("u1").n_dead == 0  # 10 dead of 15 > 30%: compacted


def test_generation_increases_with_every_change(store: Store, rng: np.random.Generator) -> None:
    store.upsert("u1", "m", ["a"], unit(rng, 1))
    g1 = store.header("u1").generation
    store.upsert("u1", "m", ["b"], unit(rng, 1))
    g2 = store.header("u1").generation
    store.delete("u1", ["a"])
    g3 = store.header("u1").generation
    assert g1 < g2 < g3


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_both_dtypes_round_trip(tmp_path: Path, rng: np.random.Generator, dtype: str) -> None:
    store = Store(tmp_path, dtype=dtype, fsync=False)  # type: ignore[arg-type]
    vectors = unit(rng, 4)
    store.upsert("u1", "m", list("abcd"), vectors)
    snap = store.read("u1")
    assert snap.header.dtype == dtype
    np.testing.assert_allclose(snap.vectors, vectors, atol=1e-3 if dtype == "float16" else 1e-7)


def test_refuses_wrong_dimension(store: Store, rng: np.random.Generator) -> None:
    store.upsert("u1", "m", ["a"], unit(rng, 1, dim=8))
    with pytest.raises(DimensionMismatch, match="dimension 4, expected 8"):
        store.upsert("u1", "m", ["b"], unit(rng, 1, dim=4))
    assert store.read("u1").id_list() == ["a"]


def test_refuses_other_model(store: Store, rng: np.random.Generator) -> None:
    store.upsert("u1", "model-a", ["a"], unit(rng, 1))
    with pytest.raises(ModelMismatch, match="model-a"):
        store.upsert("u1", "model-b", ["b"], unit(rng, 1))


@pytest.mark.parametrize(
    ("vector", "message"),
    [([[np.nan, 1.0]], "NaN"), ([[np.inf, 1.0]], "NaN or infinity"), ([[0.0, 0.0]], "all zeros")],
)
def test_refuses_non_finite_and_zero_vectors(store: Store, vector: list, message: str) -> None:
    with pytest.raises(InvalidVector, match=message):
        store.upsert("u1", "m", ["a"], vector)
    assert not store.exists("u1")


@pytest.mark.parametrize("user_id", ["../escape", "a/b", "..", "x" * 200, ""])
def test_refuses_unsafe_user_ids_before_any_path(store: Store, user_id: str) -> None:
    with pytest.raises(InvalidId):
        store.upsert(user_id, "m", ["a"], [[1.0, 0.0]])
    assert list(store.root.rglob("*")) == []


def test_refuses_unsafe_image_ids(store: Store) -> None:
    with pytest.raises(InvalidId):
        store.upsert("u1", "m", ["../a"], [[1.0, 0.0]])


def test_refuses_a_file_that_is_not_a_store(store: Store) -> None:
    path = store.paths("u1").data
    path.parent.mkdir(parents=True)
    path.write_bytes(b"GIF89a" + b"\0" * 600)
    with pytest.raises(StoreCorrupt, match="not a photocluster store"):
        store.read("u1")
    with pytest.raises(StoreCorrupt):
        store.upsert("u1", "m", ["a"], [[1.0, 0.0]])


def test_refuses_a_truncated_header(store: Store) -> None:
    path = store.paths("u1").data
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PCSTORE\0" + b"\0" * 10)
    with pytest.raises(StoreCorrupt, match="too short"):
        store.read("u1")


def test_unknown_user(store: Store) -> None:
    with pytest.raises(UnknownUser):
        store.read("nobody")


def test_torn_tail_is_ignored_and_repaired(store: Store, rng: np.random.Generator) -> None:
    store.upsert("u1", "m", ["a", "b"], unit(rng, 2))
    path = store.paths("u1").data
    size = record_dtype(8, "float32").itemsize
    with path.open("ab") as handle:  # a crash mid-append: a record cut short
        handle.write(bytes([STATE_LIVE]) + b"\0" * (size // 2))
    store.cache.clear()
    assert store.read("u1").id_list() == ["a", "b"]
    store.upsert("u1", "m", ["c"], unit(rng, 1))
    assert path.stat().st_size == HEADER_SIZE + 3 * size
    assert store.read("u1").id_list() == ["a", "b", "c"]


def test_zeroed_tail_records_are_ignored(store: Store, rng: np.random.Generator) -> None:
    store.upsert("u1", "m", ["a"], unit(rng, 1))
    path = store.paths("u1").data
    with path.open("ab") as handle:  # a power loss can leave zero-filled blocks
        handle.write(b"\0" * record_dtype(8, "float32").itemsize * 2)
    store.cache.clear()
    assert store.read("u1").id_list() == ["a"]


def append_record(path: Path, image_id: bytes, vector: np.ndarray, commit: bool) -> None:
    """What a writer killed mid-batch leaves: a record appended, committed or not."""
    rdtype = record_dtype(vector.shape[-1], "float32")
    record = np.zeros(1, dtype=rdtype)
    record["state"], record["id"], record["vector"] = STATE_LIVE, image_id, vector
    with path.open("r+b") as handle:
        handle.seek(0, 2)
        handle.write(record.tobytes())
        if commit:
            count = (handle.tell() - HEADER_SIZE) // rdtype.itemsize
            handle.seek(COMMITTED_OFFSET)
            handle.write(struct.pack("<Q", count))


def test_a_batch_whose_writer_died_before_committing_it_is_not_seen(
    store: Store, rng: np.random.Generator
) -> None:
    store.upsert("u1", "m", ["a", "b"], unit(rng, 2))
    path = store.paths("u1").data
    append_record(path, b"c", unit(rng, 1)[0], commit=False)
    append_record(path, b"d", unit(rng, 1)[0], commit=False)
    store.cache.clear()
    assert store.read("u1").id_list() == ["a", "b"]  # neither of the batch's records
    store.upsert("u1", "m", ["e"], unit(rng, 1))  # the next writer cuts them off
    assert store.read("u1").id_list() == ["a", "b", "e"]
    assert path.stat().st_size == HEADER_SIZE + 3 * record_dtype(8, "float32").itemsize


def test_a_version_1_file_is_read_then_upgraded_by_its_next_writer(
    store: Store, rng: np.random.Generator
) -> None:
    store.upsert("u1", "m", ["a", "b"], unit(rng, 2))
    path = store.paths("u1").data
    with path.open("r+b") as handle:  # as format 1 wrote it: no committed count
        handle.seek(VERSION_OFFSET)
        handle.write(struct.pack("<H", 1))
        handle.seek(COMMITTED_OFFSET)
        handle.write(struct.pack("<Q", 0))
    store.cache.clear()
    assert store.header("u1").committed is None
    assert store.read("u1").id_list() == ["a", "b"]
    store.upsert("u1", "m", ["c"], unit(rng, 1))
    header = store.header("u1")
    assert (header.version, header.committed) == (2, 3)
    assert Store(store.root).read("u1").id_list() == ["a", "b", "c"]


def test_temporary_files_of_a_writer_that_died_are_removed_by_the_next(
    library: Library, rng: np.random.Generator
) -> None:
    library.write("u1", "m", ["a"], unit(rng, 1))
    paths = library.store.paths("u1")
    leftovers = [p.with_name(f".{p.name}.tmp") for p in (paths.data, paths.graph, paths.catalog)]
    for leftover in leftovers:
        leftover.write_bytes(b"a compaction killed half way")
    library.write("u1", "m", ["b"], unit(rng, 1))
    assert [p for p in leftovers if p.exists()] == []
    assert library.store.read("u1").id_list() == ["a", "b"]


def test_crash_left_duplicate_resolves_to_last_and_is_repaired(
    store: Store, rng: np.random.Generator
) -> None:
    first, second = unit(rng, 1), unit(rng, 1)
    store.upsert("u1", "m", ["a"], first)
    path = store.paths("u1").data
    rdtype = record_dtype(8, "float32")
    # Appended and committed, but the old record was never marked dead:
    append_record(path, b"a", second[0], commit=True)
    store.cache.clear()
    snap = store.read("u1")
    assert snap.id_list() == ["a"]
    np.testing.assert_allclose(snap.vectors[0], second[0], atol=1e-7)
    store.upsert("u1", "m", ["b"], unit(rng, 1))  # the next writer repairs
    raw = np.fromfile(path, dtype=rdtype, offset=HEADER_SIZE)
    assert (raw["state"] == STATE_LIVE).sum() == 2


def test_files_are_sharded_under_root(store: Store, rng: np.random.Generator) -> None:
    store.upsert("u1", "m", ["a"], unit(rng, 1))
    data = store.paths("u1").data
    assert data.parent.parent == store.root
    assert len(data.parent.name) == 2
    assert list(store.users()) == ["u1"]


def test_reader_never_creates_files(store: Store) -> None:
    with pytest.raises(UnknownUser):
        store.read("u1")
    assert list(store.root.rglob("*")) == []


# --- property test: any sequence of operations equals a dict model -----------------

_IDS = [f"i{i}" for i in range(8)]
_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("upsert"),
            st.lists(st.sampled_from(_IDS), min_size=1, max_size=4),
            st.integers(0, 2**31),
        ),
        st.tuples(
            st.just("delete"), st.lists(st.sampled_from(_IDS), min_size=1, max_size=3), st.just(0)
        ),
        st.tuples(st.just("compact"), st.just([]), st.just(0)),
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=_ops)
def test_random_operations_match_a_dict_model(
    tmp_path_factory: pytest.TempPathFactory, ops: list
) -> None:
    root = tmp_path_factory.mktemp("prop")
    store = Store(root, fsync=False, compact_min_dead=3, compact_ratio=0.25)
    model: dict[str, np.ndarray] = {}
    for op, ids, seed in ops:
        if op == "upsert":
            vectors = unit(np.random.default_rng(seed), len(ids))
            store.upsert("u", "m", ids, vectors)
            for image_id, vector in zip(ids, vectors, strict=True):
                model[image_id] = vector
        elif op == "delete":
            if not store.exists("u"):
                with pytest.raises(UnknownUser):
                    store.delete("u", ids)
                continue
            store.delete("u", ids)
            for image_id in ids:
                model.pop(image_id, None)
        elif store.exists("u"):
            store.compact("u")
        if store.exists("u"):
            fresh = Store(root, fsync=False)  # no cache: read from disk
            snap = fresh.read("u")
            assert sorted(snap.id_list()) == sorted(model)
            for image_id, vector in zip(snap.id_list(), snap.vectors, strict=True):
                np.testing.assert_allclose(vector, model[image_id], atol=1e-6)
    for leftover in root.rglob(".*"):
        raise AssertionError(f"temporary file left behind: {leftover}")
    assert os.listdir(root) is not None


def test_a_delete_batch_is_visible_whole_or_not_at_all(
    store: Store, rng: np.random.Generator
) -> None:
    store.upsert("u1", "m", ["a", "b", "c"], unit(rng, 3))
    path = store.paths("u1").data
    before = path.read_bytes()
    store.delete("u1", ["a", "b"])
    after = path.read_bytes()
    # A writer killed after appending the tombstones, before committing them: the header
    # (committed count) and the in-place marks are as before, the tombstones are there.
    torn = before + after[len(before) :]
    path.write_bytes(torn)
    assert Store(store.root, fsync=False).read("u1").id_list() == ["a", "b", "c"]
    # Killed after the commit, before marking the old records dead: the whole batch shows.
    committed = after[:HEADER_SIZE] + before[HEADER_SIZE:] + after[len(before) :]
    path.write_bytes(committed)
    assert Store(store.root, fsync=False).read("u1").id_list() == ["c"]


def test_a_users_files_and_folders_are_the_services_alone(
    store_root: Path, rng: np.random.Generator
) -> None:
    """Issue 33: store folders were 0755 and files 0644 (anyone on the host could read)."""
    from photocluster.config import Settings

    library = Library.from_settings(Settings(store_root=store_root, model="m", store_fsync=False))
    ids = [f"p{i}" for i in range(3)]
    library.write("u1", "m", ids, rng.standard_normal((3, 8)))
    library.mark_not_similar("u1", ids[:2])
    with library.store.transaction("u1") as tx:
        assert tx.snapshot is not None
        library.records.reindex("u1", tx.snapshot.ids)
    made = [p for p in store_root.rglob("*")]
    assert {p.suffix for p in made} >= {".pcs", ".pcg", ".pci", ".pcd", ".pcl", ".lock"}
    for path in made:
        assert path.stat().st_mode & 0o077 == 0, (path, oct(path.stat().st_mode))
